"""Super-resolution as inpainting: the degradation, zero insertion's grid phase, the bicubic
baseline against OpenCV, and the contract of every registered super-resolution method."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.method import Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.baselines.bicubic import BicubicUpscale, bicubic_upscale
from inpaintbench.methods.wrappers.super_resolution import (
    TASK,
    BicubicILVRUpscale,
    InpaintingUpscale,
    zero_insert,
)
from inpaintbench.core.registry import mask_registry, method_registry
from inpaintbench.core.tasks import SuperResolution, downscale

SR_METHODS = [n for n in method_registry().names() if method_registry().entry(n).group == "super-resolution"]



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rng(n: int = 2, seed: int = 0) -> SampleRNG:
    return SampleRNG([gen(seed + i) for i in range(n)])


def test_downscale_is_the_cell_mean():
    hr = torch.tensor([[0.0, 0.2, 0.4, 0.4], [0.2, 0.2, 0.4, 0.8],
                       [1.0, 1.0, 0.0, 0.0], [1.0, 0.6, 0.0, 0.4]]).reshape(1, 1, 4, 4)
    torch.testing.assert_close(downscale(hr, 2), torch.tensor([[[[0.15, 0.5], [0.9, 0.1]]]]))


def test_downscale_rejects_sizes_not_divisible():
    with pytest.raises(InputError, match="not divisible by the super-resolution scale 4"):
        downscale(torch.zeros(1, 1, 28, 30), 4)
    with pytest.raises(InputError, match="scale must be an int >= 2"):
        downscale(torch.zeros(1, 1, 28, 28), 1)


@pytest.mark.parametrize("scale", [2, 4])
def test_zero_insertion_phase_is_the_super_resolve_mask(scale):
    low = torch.rand(2, 3, 7, 5, generator=gen()) * 0.9 + 0.05  # no exact zeros
    image, hole = zero_insert(low, scale)
    family = mask_registry().create("super-resolve", scale=scale)
    expected = family(2, 7 * scale, 5 * scale, generator=gen())
    assert torch.equal(hole, expected)
    assert torch.equal(image != 0, (~hole).expand_as(image))
    # pixel (i, j) of the low-res image sits in cell (i, j), at the family's known offset
    offset = scale // 2
    assert torch.equal(image[..., offset::scale, offset::scale], low)


def test_bicubic_matches_opencv_inter_cubic():
    """PyTorch's align_corners=False bicubic and OpenCV's INTER_CUBIC share Keys' a=-0.75
    kernel, half-pixel centres and replicated borders."""
    low = torch.rand(2, 1, 7, 7, generator=gen())
    ours = bicubic_upscale(low, 4)
    reference = np.stack([cv2.resize(img[0].numpy(), (28, 28), interpolation=cv2.INTER_CUBIC) for img in low])
    expected = torch.from_numpy(reference).unsqueeze(1).clamp(0, 1)
    torch.testing.assert_close(ours, expected, atol=2e-6, rtol=0)
    method = BicubicUpscale()
    assert torch.equal(method.upscale(low, 4, rng=rng()), ours)


def test_sr_methods_declare_their_task_and_refuse_inpainting():
    from inpaintbench.core.tasks import Inpainting

    method = BicubicUpscale()
    assert method.tasks == (TASK,) == ("super-resolution",)
    with pytest.raises(InputError, match="declares no inpainting hook"):  # the base class's declared hook
        method.inpaint(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8, dtype=torch.bool), rng=rng(1))
    with pytest.raises(InputError, match="solves"):
        method.restore(Inpainting(torch.zeros(1, 1, 8, 8, dtype=torch.bool)).observe(torch.zeros(1, 1, 8, 8)), rng(1))


def test_inpainting_upscale_keeps_the_inserted_pixels_and_uses_the_inner_method():
    low = torch.rand(2, 1, 7, 7, generator=gen())
    method = InpaintingUpscale(inpainter="pde-heat")
    out = method.upscale(low, 4, rng=rng())
    out = out.image if isinstance(out, Restoration) else out
    assert out.shape == (2, 1, 28, 28)
    assert torch.equal(out[..., 2::4, 2::4], low)
    # heat diffusion from the grid is a smooth interpolant: far closer to bicubic than zeros are
    bicubic = bicubic_upscale(low, 4)
    assert (out - bicubic).abs().mean() < 0.5 * (zero_insert(low, 4)[0] - bicubic).abs().mean()


def test_inpainting_upscale_refuses_blind_or_sr_inner_methods():
    with pytest.raises(InputError, match="super-resolution method, not an inpainter"):
        InpaintingUpscale(inpainter="sr-bicubic")


def test_bicubic_ilvr_imposes_the_reference_cell_means():
    """ILVR with down_n = scale: the output's 2x2 means equal the bicubic reference's (where
    the final clip to [0, 1] does not interfere)."""
    from inpaintbench.methods.diffusion.ddpm import build_scheduler, build_unet
    from inpaintbench.methods.training.init import seeded_init_
    from inpaintbench.methods.diffusion.lowpass import lowpass

    unet = build_unet(16, 1, (8, 8), 1, (False, False), False, 8)
    seeded_init_(unet, 0)
    method = BicubicILVRUpscale(num_steps=4, prior=(unet.eval(), build_scheduler()))
    low = torch.rand(2, 1, 8, 8, generator=gen()) * 0.5 + 0.25
    result = method.upscale(low, 2, rng=rng())
    out = result.image
    assert out.shape == (2, 1, 16, 16) and result.stats == {"nfe": 4.0}
    inside = lowpass(((out > 0) & (out < 1)).float(), 2) == 1
    reference = bicubic_upscale(low, 2)
    torch.testing.assert_close(lowpass(out, 2)[inside], lowpass(reference, 2)[inside], atol=1e-5, rtol=0)
    assert inside.any()
    assert torch.equal(out, method.upscale(low, 2, rng=rng()).image)
    # the scale comes from the call: the same method at x4 imposes 4x4 means
    low4 = torch.rand(2, 1, 4, 4, generator=gen()) * 0.5 + 0.25
    out4 = method.upscale(low4, 4, rng=rng()).image
    inside4 = lowpass(((out4 > 0) & (out4 < 1)).float(), 4) == 1
    torch.testing.assert_close(lowpass(out4, 4)[inside4], lowpass(bicubic_upscale(low4, 4), 4)[inside4],
                               atol=1e-5, rtol=0)


def test_bicubic_ilvr_is_batch_invariant():
    from inpaintbench.methods.diffusion.ddpm import build_scheduler, build_unet
    from inpaintbench.methods.training.init import seeded_init_

    unet = build_unet(16, 1, (8, 8), 1, (False, False), False, 8)
    seeded_init_(unet, 0)
    method = BicubicILVRUpscale(num_steps=4, prior=(unet.eval(), build_scheduler()))
    low = torch.rand(3, 1, 8, 8, generator=gen()) * 0.5 + 0.25
    batched = method.upscale(low, 2, rng=rng(3)).image
    for i in range(3):
        single = method.upscale(low[i:i + 1], 2, rng=SampleRNG([gen(i)])).image
        torch.testing.assert_close(batched[i:i + 1], single, atol=1e-4, rtol=0)


def test_config_records_the_inner_method_not_a_scale():
    method = method_registry().create("sr-inpaint-telea")
    assert method.config == {"inpainter": "telea", "inpainter_config": {}}
    assert "scale" not in method.config


def test_wrapper_reports_inner_effective_config_and_weight_files():
    from inpaintbench.methods.diffusion.ddpm import MNIST_WEIGHTS

    if not (MNIST_WEIGHTS / "config.json").exists():
        pytest.skip("committed MNIST prior absent")
    method = method_registry().create("sr-inpaint-repaint", inpainter_config={"num_steps": 4})
    inner = method.effective_config()["inpainter_effective"]
    # the inner's registry defaults (jump_length 5, jump_n_sample 2) and the override
    assert inner["num_steps"] == 4 and inner["jump_length"] == 5 and inner["jump_n_sample"] == 2
    assert method.weight_files() == [str(MNIST_WEIGHTS)]
    assert method_registry().create("sr-bicubic-ilvr", num_steps=4).weight_files() == [str(MNIST_WEIGHTS)]


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("name", SR_METHODS)
def test_registered_sr_method_contract(name, scale, digits):
    """Every registered super-resolution method, at every scale from the call: HR-sized output
    in [0, 1], float32, finite, same generators -> same output, and no inpainting task."""
    entry = method_registry().entry(name)
    try:
        method = method_registry().create(name, **entry.tiny)
    except MethodUnavailable as err:
        pytest.skip(f"{name} unavailable here: {err}")
    assert method.tasks == (TASK,)
    task = SuperResolution(scale, tuple(digits[:2].shape))
    observation = task.observe(digits[:2])
    out = method.restore(observation, SampleRNG.for_samples("test", sample_ids=["a", "b"]))
    assert out.image.shape == digits[:2].shape and out.image.dtype == torch.float32
    assert torch.isfinite(out.image).all() and out.image.min() >= 0 and out.image.max() <= 1
    again = method.restore(observation, SampleRNG.for_samples("test", sample_ids=["a", "b"]))
    assert torch.equal(out.image, again.image) and out.stats == again.stats
    assert "inpainting" not in method.tasks
