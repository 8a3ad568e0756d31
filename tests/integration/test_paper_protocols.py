"""The paper-protocol suites (dps-ffhq, diffpir-ffhq, ddnm-celebahq; issue 20 item 5).

Here there is no FFHQ, no CelebA-HQ and no checkpoint, so each suite must stop before anything
runs: exit 2, one ``error:`` line naming what is missing under the data root, nothing written.
With a fake layout (two tiny images, the mask folders) the line names the checkpoint and where
to get it, or says the file at its path is not a checkpoint. Every method entry's options are
checked by building it on the committed MNIST prior (the suite's ``model``/``adm`` left out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintbench.cli import main
from inpaintbench.core.registry import method_registry
from inpaintbench.harness.suite import load_suite

# suite -> (image folder, mask folders, checkpoint), relative to the data root
LAYOUTS = {
    "dps-ffhq": ("data/samples", [], "models/ffhq_10m.pt"),
    "diffpir-ffhq": ("testsets/ffhq_val", [], "model_zoo/diffusion_ffhq_10m.pt"),
    "ddnm-celebahq": ("datasets/gts/c256",
                      [f"datasets/gt_keep_masks/{m}" for m in ("thick", "thin", "nn2", "ev2li", "genhalf", "ex64")],
                      "pretrained/celeba256_250000.pt"),
}


def _cli(capsys, tmp_path: Path, *argv) -> tuple[int, list[str]]:
    """Run the CLI in-process with its results folder under ``tmp_path``; (status, stderr lines)."""
    out = tmp_path / "results"
    try:
        code = main([*map(str, argv), "--out", str(out), "--no-report", "-q"] if argv[0] == "run"
                    else [*map(str, argv)])
    except SystemExit as exit_:
        code = exit_.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert not out.exists(), "a refused run must write nothing"
    return code, err


def _fake_layout(root: Path, suite: str) -> Path:
    """Two tiny images (and a mask file per mask folder) where ``suite`` reads them."""
    images, mask_dirs, checkpoint = LAYOUTS[suite]
    rng = np.random.default_rng(0)
    (root / images).mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / images / f"{i:06d}.png")
    for folder in mask_dirs:
        (root / folder).mkdir(parents=True)
        known = np.full((16, 16), 255, np.uint8)  # RePaint's files: white = known
        known[:, :8] = 0
        Image.fromarray(known).save(root / folder / "000000.png")
    return root / checkpoint


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize("suite", sorted(LAYOUTS))
def test_empty_data_root_is_one_line_refusal(suite, command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "none"
    code, err = _cli(capsys, tmp_path, command, "--suite", suite, "--data-root", empty)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and str(empty) in err[0], err
    assert "does not exist" in err[0]
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the data root


@pytest.mark.parametrize("suite", sorted(LAYOUTS))
def test_missing_checkpoint_names_it_and_where_to_get_it(suite, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = _fake_layout(tmp_path / "data", suite)
    code, err = _cli(capsys, tmp_path, "run", "--suite", suite, "--data-root", tmp_path / "data")
    assert code == 2
    assert len(err) == 1 and str(checkpoint) in err[0] and "inpaintbench weights" in err[0], err


@pytest.mark.parametrize("suite", ["dps-ffhq"])
def test_a_file_that_is_no_checkpoint_is_one_clear_line(suite, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = _fake_layout(tmp_path / "data", suite)
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"not a checkpoint")
    code, err = _cli(capsys, tmp_path, "plan", "--suite", suite, "--data-root", tmp_path / "data")
    assert code == 2
    assert len(err) == 1 and str(checkpoint) in err[0] and "not a loadable ADM checkpoint" in err[0], err
    assert checkpoint.read_bytes() == b"not a checkpoint"


@pytest.mark.parametrize("suite", sorted(LAYOUTS))
def test_every_method_entry_builds_with_its_options(suite):
    """Each entry's options are valid for its method (built on the MNIST prior instead of the
    checkpoint) and every entry reads its prior from the suite's checkpoint with an ADM preset."""
    registry = method_registry()
    for spec in load_suite(suite).methods:
        assert spec.config["model"] == "{data_root}/" + LAYOUTS[suite][2]
        assert spec.config["adm"] in ("ilvr-ffhq256", "repaint-celeba256")
        options = {k: v for k, v in spec.config.items() if k not in ("model", "adm")}
        method = registry.create(spec.name, **options)
        assert all(method.config[k] == v for k, v in options.items()), spec.label
