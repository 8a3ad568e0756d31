"""Mask families: the protocol, determinism, coverage, RePaint's masks, masks from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp

from inpaintbench.core.errors import InputError
from inpaintbench.core.method import MaskFamily
from inpaintbench.core.masks import (
    STROKE_PRESETS,
    AlternatingLinesMask,
    BoxMask,
    DatasetMasks,
    DiscMask,
    ExpandMask,
    FileMasks,
    HalfMask,
    RandomBoxes,
    StrokeMask,
    SuperResolveMask,
)
from inpaintbench.core.registry import mask_registry

REPAINT_MASKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "repaint-masks"
needs_repaint_masks = pytest.mark.skipif(
    not REPAINT_MASKS.is_dir(), reason=f"RePaint's mask files are not at {REPAINT_MASKS} (../shared/data absent)"
)

SIZES = [(28, 28), (64, 48), (256, 256)]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def hole_fraction(mask: torch.Tensor) -> torch.Tensor:
    """Per-mask hole fraction of a bool ``[n, 1, h, w]`` batch."""
    return mask.float().mean(dim=(1, 2, 3))


def read_repaint(kind: str, name: str = "000000.png") -> torch.Tensor:
    """A RePaint mask file as bool [h, w], True = hole (files: white = known)."""
    return torch.from_numpy(np.asarray(Image.open(REPAINT_MASKS / kind / name).convert("L")) < 128)


@pytest.fixture(scope="module")
def mask_folder(tmp_path_factory) -> Path:
    """Three 32x32 mask files (white = known): left half, top half, no hole at all."""
    folder = tmp_path_factory.mktemp("masks")
    for name, known in (("a.png", np.s_[:, :16]), ("b.png", np.s_[:16, :]), ("c.jpg", np.s_[:, :])):
        pixels = np.zeros((32, 32), np.uint8)
        pixels[known] = 255
        Image.fromarray(pixels).save(folder / name, quality=95)
    return folder


RANDOM_FAMILIES = {
    "box": lambda folder: BoxMask(area_ratio=0.3),
    "random-boxes": lambda folder: RandomBoxes(),
    **{f"strokes-{p}": (lambda folder, p=p: StrokeMask(p)) for p in STROKE_PRESETS},
    "files": lambda folder: FileMasks(folder),
}
FIXED_FAMILIES = {
    "super-resolve": lambda folder: SuperResolveMask(),
    "alternating-lines": lambda folder: AlternatingLinesMask(),
    **{f"half-{side}": (lambda folder, side=side: HalfMask(side)) for side in HalfMask.SIDES},
    "expand": lambda folder: ExpandMask(),
    "disc": lambda folder: DiscMask(),
}
ALL_FAMILIES = {**RANDOM_FAMILIES, **FIXED_FAMILIES}


@pytest.mark.parametrize("name", ALL_FAMILIES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_shape_dtype_and_some_hole(name, size, mask_folder):
    family = ALL_FAMILIES[name](mask_folder)
    assert isinstance(family, MaskFamily)
    h, w = size
    mask = family(3, h, w, generator=gen(0))
    assert mask.dtype == torch.bool and mask.shape == (3, 1, h, w) and mask.device.type == "cpu"
    if name != "files":  # file c.jpg has no hole by construction
        assert (hole_fraction(mask) > 0).all() and (hole_fraction(mask) < 1).all()


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_same_seed_same_masks(name, mask_folder):
    family = ALL_FAMILIES[name](mask_folder)
    assert torch.equal(family(4, 64, 48, generator=gen(7)), family(4, 64, 48, generator=gen(7)))


@pytest.mark.parametrize("name", RANDOM_FAMILIES)
def test_different_seeds_differ(name, mask_folder):
    family = RANDOM_FAMILIES[name](mask_folder)
    assert not torch.equal(family(6, 64, 48, generator=gen(1)), family(6, 64, 48, generator=gen(2)))


def test_masks_within_a_batch_differ():
    masks = StrokeMask("thin")(4, 64, 64, generator=gen(0))
    assert len({m.numpy().tobytes() for m in masks}) == 4


def test_registry_builds_every_generating_family():
    registry = mask_registry()
    for name in registry.names():
        if name in ("files", "dataset"):  # need a folder / are a marker; tested below
            continue
        family = registry.create(name)
        assert family.name == name
        assert family(2, 28, 28, generator=gen(0)).shape == (2, 1, 28, 28)


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("ratio", [0.05, 0.25, 0.6])
def test_box_is_one_rectangle_of_the_asked_area(ratio):
    masks = BoxMask(area_ratio=ratio)(5, 200, 120, generator=gen(3))
    for mask in masks[:, 0]:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert int(mask.sum()) == height * width  # a filled rectangle
        assert abs(height * width / (200 * 120) - ratio) < 0.01


def test_box_positions_cover_the_image():
    corners = BoxMask(area_ratio=0.1)(64, 64, 64, generator=gen(0))[:, 0]
    tops = corners.any(2).float().argmax(1)
    assert tops.min() < 5 and tops.max() > 40  # uniform positions, not always centred


def test_random_boxes_stay_inside_the_margin():
    masks = RandomBoxes(margin=0.1, min_size=0.1, max_size=0.3)(8, 100, 100, generator=gen(0))
    assert not masks[..., :10, :].any() and not masks[..., -10:, :].any()
    assert not masks[..., :, :10].any() and not masks[..., :, -10:].any()


@pytest.mark.parametrize("preset", sorted(STROKE_PRESETS))
def test_strokes_never_exceed_half_the_image(preset):
    fractions = hole_fraction(StrokeMask(preset)(24, 96, 96, generator=gen(5)))
    assert (fractions > 0).all() and (fractions <= 0.5).all()


def test_stroke_presets_are_ordered_by_width():
    # mean hole area of a single short stroke grows with the preset's width
    widths = [StrokeMask(p, min_strokes=1, max_strokes=1, max_segments=1, box_probability=0.0)(64, 128, 128, generator=gen(0))
              for p in ("thin", "medium", "thick")]
    areas = [float(hole_fraction(m).mean()) for m in widths]
    assert areas[0] < areas[1] < areas[2]


def test_stroke_override_changes_the_config():
    family = StrokeMask("thin", max_width=30 / 256)
    assert family.params.max_width == 30 / 256 and family.config == {"preset": "thin", "max_width": 30 / 256}
    assert family.params.min_strokes == STROKE_PRESETS["thin"].min_strokes


@pytest.mark.parametrize(("h", "w"), [(256, 256), (28, 28), (64, 48)])
def test_fixed_family_fractions(h, w):
    assert float(hole_fraction(SuperResolveMask(scale=2)(1, h, w, generator=gen(0)))) == pytest.approx(0.75)
    assert float(hole_fraction(AlternatingLinesMask()(1, h, w, generator=gen(0)))) == pytest.approx(0.5)
    assert float(hole_fraction(HalfMask("top")(1, h, w, generator=gen(0)))) == pytest.approx(0.5)
    radius = 0.5 * min(h, w) / 2
    disc = float(hole_fraction(DiscMask(radius_fraction=0.5)(1, h, w, generator=gen(0))))
    assert disc == pytest.approx(np.pi * radius**2 / (h * w), rel=0.12)


def test_half_sides_are_complementary_on_odd_sizes():
    left, right = (HalfMask(side)(1, 7, 9, generator=gen(0))[0, 0] for side in ("left", "right"))
    assert (left | right).all() and (left & right).sum() == 7  # the middle column is in both
    top = HalfMask("top")(1, 7, 9, generator=gen(0))[0, 0]
    assert top[:4].all() and not top[4:].any()


def test_disc_is_centred_and_symmetric():
    disc = DiscMask(radius_fraction=0.8)(1, 31, 41, generator=gen(0))[0, 0]
    assert disc[15, 20] and not disc[0, 0]
    assert torch.equal(disc, disc.flip(0)) and torch.equal(disc, disc.flip(1))
    assert disc[15, :].sum() == 25  # radius 0.8 * 15.5 = 12.4 px: 12 each side + the centre


def test_expand_default_matches_the_64_of_256_centre():
    hole = ExpandMask()(1, 256, 256, generator=gen(0))[0, 0]
    assert not hole[96:160, 96:160].any() and int((~hole).sum()) == 64 * 64


def test_super_resolve_scale_3_keeps_cell_centres():
    hole = SuperResolveMask(scale=3)(1, 9, 9, generator=gen(0))[0, 0]
    assert (~hole).nonzero().tolist() == [[r, c] for r in (1, 4, 7) for c in (1, 4, 7)]


# --------------------------------------------------------------------------- RePaint's files


@needs_repaint_masks
@pytest.mark.parametrize(
    ("kind", "family"),
    [("nn2", SuperResolveMask(scale=2)), ("ev2li", AlternatingLinesMask()), ("genhalf", HalfMask("right")),
     ("ex64", ExpandMask(known_fraction=0.25))],
    ids=["nn2", "ev2li", "genhalf", "ex64"],
)
def test_reproduces_repaint_fixed_mask_exactly(kind, family):
    reference = read_repaint(kind)
    ours = family(1, 256, 256, generator=gen(0))[0, 0]
    assert torch.equal(ours, reference)


@needs_repaint_masks
@pytest.mark.parametrize(("preset", "kind"), [("repaint-wide", "thick"), ("repaint-narrow", "thin")])
def test_stroke_preset_matches_repaint_hole_statistics(preset, kind):
    files = sorted((REPAINT_MASKS / kind).glob("*.png"))
    assert len(files) == 100
    reference = torch.stack([read_repaint(kind, f.name).float().mean() for f in files])
    # 600 masks: the sampling error of our mean (~0.005) is small against the 15 % tolerance
    ours = hole_fraction(StrokeMask(preset)(600, 256, 256, generator=gen(0)))
    assert float(ours.mean()) == pytest.approx(float(reference.mean()), rel=0.15)
    assert float(ours.std()) == pytest.approx(float(reference.std()), rel=0.15)
    assert float(ours.max()) <= 0.5 and float(reference.max()) <= 0.5  # LaMa's max_tamper_area
    # the whole distribution, not only two moments: a two-sample Kolmogorov-Smirnov test
    assert ks_2samp(reference.numpy(), ours.numpy()).pvalue > 0.05


# --------------------------------------------------------------------------- masks from files


def test_file_masks_polarity_and_resize(mask_folder):
    known_white = FileMasks(mask_folder, polarity="white-known")
    hole_white = FileMasks(mask_folder, polarity="white-hole")
    assert [f.name for f in known_white.files] == ["a.png", "b.png", "c.jpg"]
    g1, g2 = gen(11), gen(11)
    a, b = known_white(12, 8, 8, generator=g1), hole_white(12, 8, 8, generator=g2)
    assert torch.equal(a, ~b)  # same files chosen, opposite polarity
    expected = {  # after nearest resize 32 -> 8, file by file (True = hole)
        "a": torch.zeros(8, 8, dtype=torch.bool).index_fill_(1, torch.arange(4, 8), True),
        "b": torch.zeros(8, 8, dtype=torch.bool).index_fill_(0, torch.arange(4, 8), True),
        "c": torch.zeros(8, 8, dtype=torch.bool),
    }
    seen = set()
    for mask in a[:, 0]:
        match = [k for k, v in expected.items() if torch.equal(mask, v)]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == {"a", "b", "c"}  # 12 draws over 3 files


def test_file_masks_binarise_at_half(tmp_path):
    Image.fromarray(np.array([[0, 127], [128, 255]], np.uint8)).save(tmp_path / "grey.png")
    mask = FileMasks(tmp_path, polarity="white-hole")(1, 2, 2, generator=gen(0))[0, 0]
    assert mask.tolist() == [[False, False], [True, True]]


def test_file_masks_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        FileMasks(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match=r"no image files"):
        FileMasks(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    family = FileMasks(tmp_path)
    with pytest.raises(InputError, match="cannot read image file .*broken.png"):
        family(1, 8, 8, generator=gen(0))
    with pytest.raises(InputError, match="polarity"):
        FileMasks(tmp_path, polarity="black-hole")


@needs_repaint_masks
def test_file_masks_read_repaint_files_exactly():
    family = FileMasks(REPAINT_MASKS / "genhalf", polarity="white-known")
    assert torch.equal(family(1, 256, 256, generator=gen(0))[0, 0], read_repaint("genhalf"))


# --------------------------------------------------------------------------- errors


def test_dataset_masks_refuse_to_generate():
    with pytest.raises(InputError, match="only works with a paired dataset"):
        DatasetMasks()(1, 8, 8, generator=gen(0))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BoxMask(area_ratio=0), "area_ratio"),
        (lambda: BoxMask(area_ratio=1.5), "area_ratio"),
        (lambda: StrokeMask("fat"), "unknown stroke preset 'fat'"),
        (lambda: StrokeMask("thin", brush=3), r"unknown StrokeMask parameter\(s\) \['brush'\]"),
        (lambda: StrokeMask("thin", min_strokes=5, max_strokes=2), "min_strokes"),
        (lambda: RandomBoxes(min_boxes=3, max_boxes=1), "min_boxes"),
        (lambda: SuperResolveMask(scale=1), "scale"),
        (lambda: HalfMask("middle"), "side"),
        (lambda: ExpandMask(known_fraction=1.0), "known_fraction"),
        (lambda: DiscMask(radius_fraction=-0.1), "radius_fraction"),
    ],
)
def test_bad_config_is_an_input_error(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_impossible_stroke_cap_is_an_input_error():
    family = StrokeMask("thick", min_width=0.5, max_width=0.6, box_probability=0.0, max_hole_fraction=0.01)
    with pytest.raises(InputError, match="more than max_hole_fraction=0.01"):
        family(1, 32, 32, generator=gen(0))


def test_bad_request_is_an_input_error():
    family = BoxMask()
    with pytest.raises(InputError, match="n must be a positive int"):
        family(0, 8, 8, generator=gen(0))
    with pytest.raises(InputError, match="w must be a positive int"):
        family(1, 8, 8.0, generator=gen(0))
    with pytest.raises(InputError, match="explicit torch.Generator"):
        family(1, 8, 8, generator=None)


def test_file_masks_matched_to_samples_follow_the_sample_id(tmp_path):
    """RePaint's protocol: image 000001 gets mask 000001, a single-file folder serves all."""
    from inpaintbench.core.conditions import MaskCondition

    for i, frac in enumerate((0.25, 0.5)):
        known = np.full((8, 8), 255, np.uint8)
        known[: int(8 * frac)] = 0  # black = hole (white-known files)
        Image.fromarray(known).save(tmp_path / f"{i:06d}.png")
    cond = MaskCondition("files", "wide", {"folder": str(tmp_path), "match": "sample"})
    task = cond.task_for(["c256/000001", "c256/000000"], (2, 3, 8, 8), seed=0, dataset_masks=None)
    assert task.mask.float().mean(dim=(1, 2, 3)).tolist() == [0.5, 0.25]
    with pytest.raises(InputError, match="000007"):
        cond.task_for(["c256/000007"], (1, 3, 8, 8), seed=0, dataset_masks=None)
