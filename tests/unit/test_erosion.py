"""IterativeErosion: ring-by-ring filling around any known-mask method."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Method
from inpaintbench.core.images import apply_mask
from inpaintbench.methods.wrappers.erosion import AUTO_SIDE_PX, IterativeErosion, auto_step_px, erosion_ring
from inpaintbench.core.registry import method_registry
from inpaintbench.core.method import Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.seeding import make_generator


def _rng(seed: int, n: int = 4) -> SampleRNG:
    """Per-sample generators for a batch of ``n`` images."""
    return SampleRNG.for_samples(seed, sample_ids=[str(i) for i in range(n)])


class CallStamp(Method):
    """Fills every hole pixel with ``0.1 * k`` on its ``k``-th call; records what it was given."""

    preserves_known = True

    def __init__(self, nfe: float | None = None):
        super().__init__(nfe=nfe)
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.inputs_had_zero_holes = True
        self.nfe = nfe

    def inpaint(self, image, mask, *, rng):
        self.calls += 1
        self.batch_sizes.append(image.shape[0])
        self.inputs_had_zero_holes &= bool((image[mask.expand_as(image)] == 0).all())
        out = torch.where(mask, torch.full_like(image, 0.1 * self.calls), image)
        return Restoration(out, {} if self.nfe is None else {"nfe": self.nfe})


class NoisyFill(Method):
    """A random inner method: holes get uniform noise from the generator."""

    deterministic = False

    def inpaint(self, image, mask, *, rng):
        return torch.where(mask, rng.rand(*image.shape[1:]), image)


def _square_hole(size: int = 28, top: int = 9, side: int = 10) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    mask[..., top:top + side, top:top + side] = True
    return mask


def _image(n: int = 1, c: int = 1, size: int = 28) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25


def test_ring_is_the_hole_boundary_in_chessboard_distance():
    hole = _square_hole(side=6)
    ring = erosion_ring(hole, 1)
    expected = hole.clone()
    expected[..., 10:14, 10:14] = False  # the 4x4 interior stays
    assert torch.equal(ring, expected)
    assert torch.equal(erosion_ring(hole, 3), hole)
    # Pixels beyond the image border are not known: a hole touching it erodes from inside only.
    half = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    half[..., :, 3:] = True
    ring = erosion_ring(half, 1)
    assert ring[..., :, 3].all() and not ring[..., :, 4:].any()


@pytest.mark.parametrize(("side", "step_px"), [(10, 1), (9, 1), (1, 1), (10, 2), (7, 3), (12, 6)])
def test_square_hole_takes_ceil_side_over_twice_step_calls(side, step_px):
    inner = CallStamp()
    method = IterativeErosion(inner, step_px=step_px)
    mask = _square_hole(side=side)
    result = method.inpaint(apply_mask(_image(), mask), mask, rng=_rng(0, 1))
    expected = math.ceil(side / (2 * step_px))
    assert inner.calls == expected
    assert result.stats == {"inner_calls": [float(expected)], "step_px": float(step_px)}
    assert inner.inputs_had_zero_holes


@pytest.mark.parametrize("step_px", [1, 2, 3])
def test_each_pixel_is_filled_at_the_iteration_of_its_distance_to_known(step_px):
    """Pixel value 0.1 * k marks the call that filled it; it must be ceil(d / step_px) with
    d the chessboard distance to the nearest known pixel (scipy's reference transform)."""
    mask = torch.zeros(1, 1, 28, 28, dtype=torch.bool)
    mask[..., 3:20, 5:25] = True
    mask[..., 10:27, 12:17] = True  # an irregular, non-convex hole
    image = _image()
    out = IterativeErosion(CallStamp(), step_px=step_px).inpaint(apply_mask(image, mask), mask,
                                                                 rng=_rng(0, 1)).image
    distance = ndimage.distance_transform_cdt(mask[0, 0].numpy(), metric="chessboard")
    expected_call = np.ceil(distance / step_px)
    hole = mask[0, 0].numpy()
    np.testing.assert_allclose(out[0, 0].numpy()[hole], 0.1 * expected_call[hole], atol=1e-6)
    assert torch.equal(out[~mask.expand_as(out)], image[~mask.expand_as(image)])


def test_half_mask_erodes_from_one_side_only():
    inner = CallStamp()
    mask = torch.zeros(2, 1, 28, 28, dtype=torch.bool)
    mask[..., 14:] = True
    IterativeErosion(inner, step_px=2).inpaint(apply_mask(_image(2), mask), mask, rng=_rng(0, 2))
    assert inner.calls == 7


def test_batch_images_finish_at_their_own_iteration_and_stay_fixed():
    inner = CallStamp(nfe=3.0)
    mask = torch.zeros(3, 1, 28, 28, dtype=torch.bool)
    mask[0, :, 4:14, 4:14] = True    # side 10 -> 5 calls
    mask[1, :, 10:14, 10:14] = True  # side 4  -> 2 calls
    # image 2 has no hole: never passed to the inner method
    image = _image(3, 3)
    method = IterativeErosion(inner, step_px=1)
    result = method.inpaint(apply_mask(image, mask), mask, rng=_rng(0, 3))
    out = result.image
    assert result.stats == {"inner_calls": [5.0, 2.0, 0.0], "step_px": 1.0, "nfe": [15.0, 6.0, 0.0]}
    assert inner.batch_sizes == [2, 2, 1, 1, 1]
    # Image 1 finished at call 2: its centre holds 0.2, untouched by calls 3-5.
    assert torch.allclose(out[1, :, 12, 12], torch.tensor(0.2))
    assert torch.equal(out[2], image[2])


def test_whole_image_hole_and_empty_mask():
    inner = CallStamp()
    method = IterativeErosion(inner)
    everything = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    out = method.inpaint(torch.zeros(1, 1, 8, 8), everything, rng=_rng(0, 1)).image
    assert inner.calls == 1 and torch.allclose(out, torch.full_like(out, 0.1))
    nothing = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    image = _image(size=8)
    result = method.inpaint(image, nothing, rng=_rng(0, 1))
    assert torch.equal(result.image, image) and result.stats["inner_calls"] == [0.0]


def test_around_a_registered_baseline_by_name(digits, box_mask):
    method = IterativeErosion("mean-fill", step_px=2)
    assert method.config == {"inner": "mean-fill", "step_px": 2, "inner_config": {}}
    masked = apply_mask(digits, box_mask)
    result = method.inpaint(masked, box_mask, rng=_rng(0))
    out = result.image
    known = ~box_mask.expand_as(digits)
    assert torch.equal(out[known], digits[known])
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert result.stats["inner_calls"] == [3.0] * 4  # 12 px box, 2 px per call
    # Unlike one mean fill, rings take the colour of their own surroundings: not constant.
    assert out[box_mask.expand_as(out)].unique().numel() > 4


def test_registered_erosion_methods(digits, box_mask):
    method = method_registry().create("telea-erode")
    assert method.config["inner"] == "telea" and method.preserves_known
    result = method.inpaint(apply_mask(digits, box_mask), box_mask, rng=_rng(0))
    assert result.image.shape == digits.shape and result.stats["inner_calls"] == [6.0] * 4


def test_deterministic_given_the_generator_with_a_random_inner():
    mask = _square_hole(side=8).expand(2, 1, 28, 28).clone()
    method = IterativeErosion(NoisyFill())
    assert method.deterministic is False
    masked = apply_mask(_image(2), mask)
    a = method.inpaint(masked, mask, rng=_rng(1, 2)).image
    b = method.inpaint(masked, mask, rng=_rng(1, 2)).image
    c = method.inpaint(masked, mask, rng=_rng(2, 2)).image
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_configuration_is_refused():
    for bad in (0, 1.5, True, "8px"):
        with pytest.raises(InputError, match="step_px"):
            IterativeErosion(CallStamp(), step_px=bad)
    with pytest.raises(InputError, match="auto_side_px only applies"):
        IterativeErosion(CallStamp(), step_px=2, auto_side_px=16)
    with pytest.raises(InputError, match="auto_side_px must be"):
        IterativeErosion(CallStamp(), step_px="auto", auto_side_px=0)
    with pytest.raises(InputError, match="inner_config"):
        IterativeErosion(CallStamp(), inner_config={"nfe": 1.0})

    class Blind(Method):
        blind = True

    with pytest.raises(InputError, match="blind"):
        IterativeErosion(Blind())
    with pytest.raises(InputError, match="mask"):
        IterativeErosion(CallStamp()).inpaint(_image(), None, rng=_rng(0))


@pytest.mark.parametrize(("side", "step"), [(1, 1), (28, 1), (32, 1), (47, 1), (48, 2), (64, 2), (80, 3), (240, 8),
                                            (256, 8), (271, 8), (272, 9), (512, 16)])
def test_auto_step_is_the_short_side_over_32_rounded_half_up(side, step):
    assert auto_step_px(side, side) == step
    assert auto_step_px(side, 4 * side) == step  # the short side decides
    assert auto_step_px(side, side, auto_side_px=16) == max(1, (side + 8) // 16)


def test_auto_step_keeps_one_pixel_rings_at_28_px_and_records_its_rule():
    """At the committed results' sizes "auto" is step 1: the same calls and bit-identical output."""
    mask = torch.zeros(2, 1, 28, 28, dtype=torch.bool)
    mask[0, :, 3:20, 5:25] = True
    mask[1, :, 14:] = True
    masked = apply_mask(_image(2, 3), mask)
    auto = IterativeErosion("telea", step_px="auto")
    assert auto.config == {"inner": "telea", "step_px": "auto", "inner_config": {}, "auto_side_px": AUTO_SIDE_PX}
    assert IterativeErosion("telea", step_px=1).config == {"inner": "telea", "step_px": 1, "inner_config": {}}
    ours, one = (m.inpaint(masked, mask, rng=_rng(0, 2)) for m in (auto, IterativeErosion("telea", step_px=1)))
    assert torch.equal(ours.image, one.image) and ours.stats == one.stats
    assert ours.stats["step_px"] == 1.0


def test_auto_step_scales_the_ring_with_the_image():
    """At 64 px "auto" is a 2 px ring: a 10 px square takes ceil(10 / 4) = 3 calls, not 5, and
    every pixel is filled at the call of its chessboard distance over 2."""
    inner = CallStamp()
    mask = _square_hole(size=64, top=20, side=10)
    result = IterativeErosion(inner, step_px="auto").inpaint(apply_mask(_image(size=64), mask), mask, rng=_rng(0, 1))
    assert inner.calls == 3 and result.stats == {"inner_calls": [3.0], "step_px": 2.0}
    distance = ndimage.distance_transform_cdt(mask[0, 0].numpy(), metric="chessboard")
    hole = mask[0, 0].numpy()
    np.testing.assert_allclose(result.image[0, 0].numpy()[hole], 0.1 * np.ceil(distance / 2)[hole], atol=1e-6)
    fine = IterativeErosion(CallStamp(), step_px="auto", auto_side_px=64)  # 64 px per ring pixel: 1 px
    assert fine.inpaint(apply_mask(_image(size=64), mask), mask, rng=_rng(0, 1)).stats["step_px"] == 1.0


@pytest.mark.parametrize("name", ["lama-ffc-erode", "telea-erode"])
def test_registry_entries_use_the_auto_step(name):
    entry = method_registry().entry(name)
    assert entry.defaults["step_px"] == "auto"
    assert "inner calls" in entry.summary
