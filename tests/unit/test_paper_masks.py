"""The mask families of DPS's and DiffPIR's protocols: ``fixed-box`` and ``random-pixels``.

Checked against what DPS's ``mask_generator`` (``util/img_utils.py``; DiffPIR's copy in
``../shared/reference/diffpir/utils/utils_inpaint.py``) does at 256x256: a 128x128 box whose
corner is ``np.random.randint(16, 112)`` per axis, and ``int(256 * 256 * p)`` distinct missing
pixels; plus the suite's rules: True = hole, deterministic per (seed, label, sample id), the same
mask whatever batch a sample lands in.
"""

from __future__ import annotations

import pytest
import torch

from inpaintbench.core.conditions import MaskCondition
from inpaintbench.core.errors import InputError
from inpaintbench.core.masks import FixedBoxMask, RandomPixelMask
from inpaintbench.core.registry import mask_registry


def _corners(mask: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """``(top, bottom, left, right)`` (inclusive) of the hole of each ``[n, 1, h, w]`` mask."""
    out = []
    for m in mask[:, 0]:
        rows, cols = torch.nonzero(m, as_tuple=True)
        out.append((rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()))
    return out


def test_fixed_box_is_dps_box_at_256():
    masks = FixedBoxMask()(400, 256, 256, generator=torch.Generator().manual_seed(0))
    assert masks.dtype == torch.bool and masks.shape == (400, 1, 256, 256)
    assert (masks.sum(dim=(1, 2, 3)) == 128 * 128).all()  # one solid 128x128 box each
    corners = _corners(masks)
    tops = {c[0] for c in corners}
    lefts = {c[2] for c in corners}
    assert all(c[1] - c[0] == 127 and c[3] - c[2] == 127 for c in corners)
    # DPS: np.random.randint(16, 256 - 16 - 128) -> 16..111, both ends reachable
    assert min(tops) == 16 and max(tops) == 111 and min(lefts) == 16 and max(lefts) == 111


def test_fixed_box_scales_with_the_image_and_fits_small_ones():
    masks = FixedBoxMask(size=0.5, margin=0.0625)(50, 32, 32, generator=torch.Generator().manual_seed(1))
    assert (masks.sum(dim=(1, 2, 3)) == 16 * 16).all()
    assert all(2 <= c[0] <= 13 and 2 <= c[2] <= 13 for c in _corners(masks))
    whole = FixedBoxMask(size=1.0, margin=0.25)(2, 8, 8, generator=torch.Generator().manual_seed(0))
    assert whole.all()  # no room inside the margin: the box still lies on the image


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.92, 1.0])
def test_random_pixels_exact_count(fraction):
    masks = RandomPixelMask(fraction=fraction)(3, 256, 256, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (3, 1, 256, 256) and masks.dtype == torch.bool
    assert (masks.sum(dim=(1, 2, 3)) == int(256 * 256 * fraction)).all()


def test_random_pixels_fraction_range_per_mask():
    masks = RandomPixelMask(fraction=0.3, max_fraction=0.7)(200, 64, 64, generator=torch.Generator().manual_seed(0))
    fractions = masks.float().mean(dim=(1, 2, 3))
    assert fractions.min() >= 0.3 - 1 / 4096 and fractions.max() <= 0.7
    assert fractions.max() - fractions.min() > 0.3  # drawn per mask, not one value for all
    assert masks[0].logical_xor(masks[1]).any()  # positions differ between masks


@pytest.mark.parametrize("name, config", [("fixed-box", {}), ("random-pixels", {"fraction": 0.3, "max_fraction": 0.7})])
def test_masks_depend_on_seed_and_sample_id_only(name, config):
    """The runner's per-sample generator: same (seed, label, id) -> same mask, in any batch."""
    condition = MaskCondition(name, "m", config)
    alone = condition.task_for(["s/b"], (1, 3, 64, 64), 0, None).mask
    batched = condition.task_for(["s/a", "s/b", "s/c"], (3, 3, 64, 64), 0, None).mask
    assert torch.equal(alone[0], batched[1])
    assert not torch.equal(batched[0], batched[1])
    other_seed = condition.task_for(["s/b"], (1, 3, 64, 64), 1, None).mask
    assert not torch.equal(alone, other_seed)


def test_registered_with_dps_defaults():
    registry = mask_registry()
    assert registry.create("fixed-box").config == {"size": 0.5, "margin": 0.0625}
    assert registry.create("random-pixels").config == {"fraction": 0.5}
    # the range key enters the config (and the condition's hash) only when given
    assert registry.create("random-pixels", fraction=0.3, max_fraction=0.7).config == {"fraction": 0.3, "max_fraction": 0.7}


@pytest.mark.parametrize("make", [
    lambda: FixedBoxMask(size=0.0), lambda: FixedBoxMask(size=1.5), lambda: FixedBoxMask(margin=1.0),
    lambda: RandomPixelMask(fraction=-0.1), lambda: RandomPixelMask(fraction=0.7, max_fraction=0.3),
    lambda: RandomPixelMask(fraction=0.5, max_fraction=1.2),
])
def test_bad_settings_are_input_errors(make):
    with pytest.raises(InputError):
        make()
