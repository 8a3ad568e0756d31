"""ILVR: the low-pass filter, the update rule, the sampler's per-step invariants, NFE,
determinism and the blind contract, on a tiny randomly initialised diffusers UNet."""

from __future__ import annotations

import pytest
import torch

from inpaintbench.api import InputError, MethodUnavailable, apply_mask
from inpaintbench.methods.diffusion.ilvr import (
    BlindILVR,
    ILVRInpaint,
    ILVRStep,
    PredictedMaskILVR,
    check_down_n,
    ilvr_sample,
    ilvr_update,
    lowpass,
)

SIZE = 16



@pytest.fixture(scope="module")
def prior():
    """A tiny random epsilon-UNet (16x16x1) and the project's 1000-step scheduler. Its samples
    are noise-like: only the conditioning mechanics are tested here."""
    from inpaintbench.methods.diffusion.ddpm import build_scheduler, build_unet, init_weights_

    unet = build_unet(SIZE, 1, (8, 8), 1, (False, False), False, 8)
    init_weights_(unet, 0)
    return unet.eval(), build_scheduler()


@pytest.fixture
def image() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(2, 1, SIZE, SIZE, generator=gen)


@pytest.fixture
def hole() -> torch.Tensor:
    mask = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    mask[:, :, 3:11, 5:13] = True
    mask[1, :, 0, :] = True
    return mask


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- phi_N


@pytest.mark.parametrize("down_n", [1, 2, 4, 8])
def test_lowpass_keeps_constants_and_is_idempotent(down_n):
    x = torch.rand(2, 3, 16, 16, generator=gen())
    constant = torch.full((1, 1, 16, 16), 0.37)
    torch.testing.assert_close(lowpass(constant, down_n), constant)
    torch.testing.assert_close(lowpass(lowpass(x, down_n), down_n), lowpass(x, down_n))


def test_lowpass_is_cell_mean():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    expected = torch.tensor([[2.5, 2.5, 4.5, 4.5], [2.5, 2.5, 4.5, 4.5],
                             [10.5, 10.5, 12.5, 12.5], [10.5, 10.5, 12.5, 12.5]])
    torch.testing.assert_close(lowpass(x, 2)[0, 0], expected)
    assert lowpass(x, 1) is x


@pytest.mark.parametrize("bad", [0, 3, 6, -2, 2.0, True])
def test_down_n_must_be_a_power_of_two(bad):
    with pytest.raises(InputError, match="power of two"):
        check_down_n(bad)


def test_down_n_must_divide_the_image():
    with pytest.raises(InputError, match="must divide the image size"):
        lowpass(torch.zeros(1, 1, 28, 28), 8)


def test_ilvr_update_imposes_reference_low_frequencies_keeps_proposal_high_ones():
    proposal, reference = torch.randn(2, 2, 1, 16, 16, generator=gen())
    out = ilvr_update(proposal, reference, 4)
    torch.testing.assert_close(lowpass(out, 4), lowpass(reference, 4))
    torch.testing.assert_close(out - lowpass(out, 4), proposal - lowpass(proposal, 4))
    assert torch.equal(ilvr_update(proposal, reference, 1), reference)


# ---------------------------------------------------------------- the sampler


def test_known_mask_ilvr_with_n1_holds_known_pixels_at_every_step(prior, image, hole):
    """down_n=1, range_t=0: every x_{t-1} equals the noised reference on known pixels exactly,
    the holes carry the proposal, and x_0 equals the reference on known pixels."""
    unet, scheduler = prior
    reference = image * 2 - 1
    steps: list[ILVRStep] = []
    x0 = ilvr_sample(unet, scheduler, reference, hole=hole, down_n=1, range_t=0, num_steps=6,
                     generator=gen(), callback=steps.append)
    known = ~hole.expand_as(reference)
    assert len(steps) == 6
    for step in steps:
        assert torch.equal(step.sample[known], step.reference[known])
        assert torch.equal(step.sample[~known], step.proposal[~known])
    # Noise shrinks along the chain: the targets approach the clean reference.
    errors = [float((s.reference - reference)[known].abs().mean()) for s in steps]
    assert errors[0] > errors[-2] > 0 and errors[-1] == 0
    assert torch.equal(x0[known], reference[known])


def test_known_mask_ilvr_with_low_pass_imposes_cell_means(prior, image, hole):
    unet, scheduler = prior
    steps: list[ILVRStep] = []
    ilvr_sample(unet, scheduler, image * 2 - 1, hole=hole, down_n=4, num_steps=5, generator=gen(),
                callback=steps.append)
    for step in steps:
        torch.testing.assert_close(lowpass(step.sample, 4), lowpass(step.reference, 4), atol=1e-5, rtol=0)
        # the target is the proposal inside the holes
        assert torch.equal(step.reference[hole.expand_as(image)], step.proposal[hole.expand_as(image)])


def test_range_t_leaves_the_last_steps_unconditioned(prior, image):
    unet, scheduler = prior
    steps: list[ILVRStep] = []
    ilvr_sample(unet, scheduler, image * 2 - 1, down_n=2, range_t=3, num_steps=8, generator=gen(),
                callback=steps.append)
    assert [s.reference is None for s in steps] == [False] * 5 + [True] * 3
    for s in steps[5:]:
        assert torch.equal(s.sample, s.proposal)
    assert [s.timestep for s in steps] == sorted((s.timestep for s in steps), reverse=True)


def test_range_t_out_of_bounds_is_an_input_error(prior, image):
    with pytest.raises(InputError, match="range_t"):
        ilvr_sample(*prior, image, range_t=9, num_steps=8, generator=gen())
    with pytest.raises(InputError, match="range_t"):
        ILVRInpaint(num_steps=4, range_t=5, prior=prior)


def test_sampler_leaves_the_scheduler_unchanged(prior, image):
    unet, scheduler = prior
    before = scheduler.timesteps.clone()
    ilvr_sample(unet, scheduler, image, num_steps=3, generator=gen())
    assert torch.equal(scheduler.timesteps, before)


# ---------------------------------------------------------------- the methods


class CountingUNet(torch.nn.Module):
    """Wraps a UNet and counts forward calls (the NFE ground truth)."""

    def __init__(self, unet):
        super().__init__()
        self.unet, self.calls = unet, 0
        self.config = unet.config

    def forward(self, x, t):
        self.calls += 1
        return self.unet(x, t)


@pytest.mark.parametrize("cls", [ILVRInpaint, BlindILVR])
def test_nfe_counts_network_evaluations(cls, prior, image, hole):
    counting = CountingUNet(prior[0])
    method = cls(num_steps=7, range_t=2, prior=(counting, prior[1]))
    mask = None if method.blind else hole
    method.inpaint(apply_mask(image, hole), mask, generator=gen())
    assert counting.calls == 7
    assert method.call_stats() == {"nfe": 7.0}


def test_known_mask_method_keeps_known_pixels_and_is_seeded(prior, image, hole):
    method = ILVRInpaint(num_steps=5, down_n=2, prior=prior)
    masked = apply_mask(image, hole)
    out = method.inpaint(masked, hole, generator=gen(3))
    known = ~hole.expand_as(image)
    assert torch.equal(out[known], image[known])
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out, method.inpaint(masked, hole, generator=gen(3)))
    assert not torch.equal(out, method.inpaint(masked, hole, generator=gen(4)))


def test_known_mask_method_needs_the_mask(prior, image):
    with pytest.raises(InputError, match="needs the hole mask"):
        ILVRInpaint(num_steps=2, prior=prior).inpaint(image, None, generator=gen())


def test_wrong_image_size_is_an_input_error(prior, hole):
    with pytest.raises(InputError, match="models 1x16x16 images"):
        ILVRInpaint(num_steps=2, prior=prior).inpaint(torch.zeros(2, 1, 8, 8), hole[..., :8, :8], generator=gen())


def test_config_holds_the_sweep_parameters(prior):
    method = ILVRInpaint(num_steps=9, down_n=4, range_t=2, prior=prior)
    assert method.config == {"num_steps": 9, "down_n": 4, "range_t": 2, "weights": None}


def test_missing_weights_raise_method_unavailable_naming_the_file(tmp_path):
    missing = tmp_path / "no-such-ddpm"
    with pytest.raises(MethodUnavailable, match="no-such-ddpm"):
        ILVRInpaint(weights=str(missing))


# ---------------------------------------------------------------- blind methods


def test_blind_ilvr_refuses_a_mask_and_runs_without(prior, image, hole):
    method = BlindILVR(num_steps=4, prior=prior)
    assert method.blind and not method.preserves_known
    masked = apply_mask(image, hole)
    with pytest.raises(InputError, match="blind"):
        method.inpaint(masked, hole, generator=gen())
    out = method.inpaint(masked, None, generator=gen())
    assert out.shape == image.shape and torch.equal(out, method.inpaint(masked, generator=gen()))


def test_blind_ilvr_follows_the_corrupted_image_cell_means(prior, image, hole):
    """The whole corrupted image is the reference: at the last step phi_N of the output equals
    phi_N of the zero-filled input (up to the final clip), holes included."""
    method = BlindILVR(num_steps=4, down_n=2, prior=prior)
    masked = apply_mask(image, hole)
    out = method.inpaint(masked, None, generator=gen())
    inside = (out > 0) & (out < 1)  # the final clip to [0, 1] breaks the identity elsewhere
    cells_ok = lowpass(inside.float(), 2) == 1
    torch.testing.assert_close(lowpass(out, 2)[cells_ok], lowpass(masked, 2)[cells_ok], atol=1e-5, rtol=0)
    assert cells_ok.any()


class FixedPredictor:
    """Stands in for a trained MaskPredictor: predicts a given mask."""

    def __init__(self, mask):
        self.mask, self.seen = mask, []

    def to(self, device):
        return self

    def predict(self, corrupted):
        self.seen.append(corrupted.clone())
        return self.mask


def test_predicted_mask_ilvr_equals_known_mask_ilvr_given_the_true_mask(prior, image, hole):
    masked = apply_mask(image, hole)
    predictor = FixedPredictor(hole)
    blind = PredictedMaskILVR(num_steps=5, down_n=2, prior=prior, predictor=predictor)
    assert blind.blind
    with pytest.raises(InputError, match="blind"):
        blind.inpaint(masked, hole, generator=gen())
    out = blind.inpaint(masked, None, generator=gen(5))
    assert torch.equal(predictor.seen[-1], masked)  # the predictor sees only the corrupted image
    assert torch.equal(blind.last_predicted_mask, hole)
    expected = ILVRInpaint(num_steps=5, down_n=2, prior=prior).inpaint(masked, hole, generator=gen(5))
    assert torch.equal(out, expected)
    assert blind.call_stats() == {"nfe": 5.0, "predictor_calls": 1.0}


def test_predicted_mask_ilvr_keeps_pixels_predicted_known(prior, image, hole):
    wrong = torch.zeros_like(hole)
    wrong[:, :, :4] = True  # a prediction unrelated to the true holes
    method = PredictedMaskILVR(num_steps=3, prior=prior, predictor=FixedPredictor(wrong))
    masked = apply_mask(image, hole)
    out = method.inpaint(masked, generator=gen())
    keep = ~wrong.expand_as(image)
    assert torch.equal(out[keep], masked[keep])
    assert not torch.equal(out[~keep], masked[~keep])


def test_ilvr_methods_are_registered():
    from inpaintbench.registry import method_registry

    registry = method_registry()
    assert registry.entry("ilvr").resolve() is ILVRInpaint
    assert registry.entry("ilvr-blind").resolve() is BlindILVR
    assert registry.entry("ilvr-predicted-mask").resolve() is PredictedMaskILVR
