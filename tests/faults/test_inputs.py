"""Fault battery (issue 14), careless input files: 16-bit images (item 3), images without holes
(item 4), labels that look like paths (item 7), LPIPS weights that are not there (item 12).

The command-line cases of the same items are rows of ``cases.toml``.
"""

from __future__ import annotations

import inspect

import numpy as np


# ----------------------------------------------------------------------------- 3. 16-bit images

def test_03_16_bit_grey_png_reads_as_50_percent_not_99(ctx):
    from inpaintbench.core.image_files import image_to_tensor, open_image

    path = ctx.save_png(ctx.tmp / "grey16.png", np.full((16, 16), 32768, dtype=np.uint16))
    for mode in ("L", "RGB"):
        value = float(image_to_tensor(open_image(path, mode)).mean())
        assert abs(value - 0.5) < 0.01, (mode, value)


def test_03_16_bit_rgb_and_rgba_pngs_read_as_50_percent(ctx):
    import cv2

    from inpaintbench.core.image_files import image_to_tensor, open_image

    for channels in (3, 4):
        path = ctx.tmp / f"grey16_{channels}.png"
        cv2.imwrite(str(path), np.full((8, 8, channels), 32768, dtype=np.uint16))  # 48- / 64-bit PNG
        for mode in ("L", "RGB"):
            value = float(image_to_tensor(open_image(path, mode)).mean())
            assert abs(value - 0.5) < 0.01, (channels, mode, value)


def test_03_16_bit_images_through_the_folder_dataset(ctx):
    from inpaintbench.datasets.folder import ImageFolder

    ramp = (np.linspace(0, 65535, 28 * 28).reshape(28, 28)).astype(np.uint16)
    ctx.save_png(ctx.tmp / "imgs" / "ramp.png", ramp)
    grey = {"channels": 1} if "channels" in inspect.signature(ImageFolder).parameters else {"grayscale": True}
    image = ImageFolder(ctx.tmp / "imgs", size=None, **grey)[0].image
    assert abs(float(image.mean()) - 0.5) < 0.01 and float(image.min()) < 0.01


def test_03_16_bit_mask_file_keeps_its_holes(ctx):
    from inpaintbench.core.image_files import read_mask_file

    array = np.zeros((16, 16), dtype=np.uint16)
    array[:, 8:] = 65535  # right half white = known
    path = ctx.save_png(ctx.tmp / "mask16.png", array)
    hole = read_mask_file(path, 16, 16, "white-known")
    assert float(hole.float().mean()) == 0.5 and bool(hole[:, :8].all())


# ----------------------------------------------------------------------------- 4. masks without holes

def test_04_images_without_holes_are_skipped_and_kept_out_of_the_means(ctx, setups):
    setups.paired(ctx, [0.7, 1.0, 0.7])  # image 1: all white = all known
    root = ctx.tmp / "paired"
    code, _, err = ctx.cli("run", "--datasets", "paired", "--data-root", root, "--masks", "dataset",
                           "--methods", "zero-fill", "--n-images", 3, "--device", "cpu", "--out", ctx.out,
                           "--report-dir", ctx.tmp / "rep", "-q")
    assert code == 0, err
    skipped = ctx.samples("skipped")
    assert [r["sample_id"] for r in skipped] == ["1"] and skipped[0]["hole_fraction"] == 0.0
    assert "no hole" in (skipped[0].get("note") or "")
    assert len(ctx.samples("ok")) == 2 and not ctx.samples("error")
    assert any("no hole" in w for w in ctx.warnings(err)), err
    board = (ctx.tmp / "rep" / "LEADERBOARD.md").read_text()
    assert "exact)" not in board  # the all-known image is not counted as "+1 exact"
    # a rerun does not retry it
    code, out, err = ctx.cli("run", "--datasets", "paired", "--data-root", root, "--masks", "dataset",
                             "--methods", "zero-fill", "--n-images", 3, "--device", "cpu", "--out", ctx.out,
                             "--no-report", "-q")
    assert code == 0 and len(ctx.samples("skipped")) == 1, err


# ----------------------------------------------------------------------------- 7. labels are not paths

def test_07_slashes_in_a_method_label_stay_under_out(ctx):
    code, _, err = ctx.run_suite_file(ctx.suite(method_options='label = "x/../../../../escaped"'))
    assert code == 0, err
    outside = [p for p in ctx.tmp.rglob("*") if "escaped" in p.name and ctx.out not in p.parents]
    assert not outside and list(ctx.out.rglob("*escaped*.npz"))


def test_07_artifact_paths_never_leave_the_root(ctx):
    from inpaintbench.store.artifacts import example_path, heatmap_path, safe_name

    root = ctx.tmp / "root"
    for label in ("..", ".", "", "../..", "a/../../b", "\x00", ".hidden", "~"):
        for path in (example_path(root, label, label, label), heatmap_path(root, label, label, label)):
            assert root.resolve() in path.resolve().parents, (label, path)
        assert safe_name(label) not in ("", ".", "..")


# ----------------------------------------------------------------------------- 12. LPIPS weights

def test_12_automatic_lpips_fallback_continues_loudly(ctx):
    code, _, err = ctx.run()
    assert code == 0, err
    assert any("LPIPS" in w and "not reported" in w for w in ctx.warnings(err)), err
    run = next(r for r in ctx.records() if r["kind"] == "run")
    assert run["lpips"]["available"] is False
