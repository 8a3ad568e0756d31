"""ILVR: the low-pass filter, the update rule, the core loop's per-step invariants under ILVR
guidance, the core's step against diffusers' DDPMScheduler (the step ILVR used before), NFE,
per-sample randomness, ``ilvr`` with N = 1 = ``ddpm-paste``, and the blind contract, on a tiny
randomly initialised diffusers UNet."""

from __future__ import annotations

import pytest
import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.method import Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask
from inpaintbench.methods.diffusion import core
from inpaintbench.methods.diffusion.core import StepRecord
from inpaintbench.methods.diffusion.denoiser import DenoiserOutput
from inpaintbench.methods.diffusion.ilvr import BlindILVR, ILVRInpaint, PredictedMaskILVR, ilvr_conditioning
from inpaintbench.methods.diffusion.lowpass import LowPassFilter, check_down_n, ilvr_update, lowpass
from inpaintbench.methods.diffusion.prior import DiffusionPrior
from inpaintbench.methods.diffusion.respacing import Respacing
from inpaintbench.methods.diffusion.schedules import plain_schedule
from inpaintbench.methods.diffusion.steps import reverse_step

SIZE = 16



@pytest.fixture(scope="module")
def prior():
    """A tiny random epsilon-UNet (16x16x1) and the project's 1000-step scheduler. Its samples
    are noise-like: only the conditioning mechanics are tested here."""
    from inpaintbench.methods.diffusion.ddpm import build_scheduler, build_unet
    from inpaintbench.methods.training.init import seeded_init_

    unet = build_unet(SIZE, 1, (8, 8), 1, (False, False), False, 8)
    seeded_init_(unet, 0)
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


def rng(n: int = 2, seed: int = 0) -> SampleRNG:
    """Per-sample generators ``seed, seed + 1, ...``."""
    return SampleRNG([gen(seed + i) for i in range(n)])


def ilvr_chain(prior, reference, *, hole=None, down_n=1, range_t=0, num_steps=6, seed=0, callback=None):
    """The core's loop with ILVR's strategy on the plain schedule (what every ILVR method runs)."""
    loaded = DiffusionPrior.from_pair(*prior)
    respacing = Respacing(loaded.schedule, num_steps)
    guidance = ilvr_conditioning(reference, hole, LowPassFilter(down_n), range_t)
    return core.sample(loaded.denoiser, respacing, plain_schedule(num_steps), rng(reference.shape[0], seed),
                       guidance=guidance, callback=callback)


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


# ---------------------------------------------------------------- the core loop under ILVR guidance


def test_known_mask_ilvr_with_n1_holds_known_pixels_at_every_step(prior, image, hole):
    """down_n=1, range_t=0: every x_{t-1} equals the noised reference on known pixels exactly,
    the holes carry the proposal, and x_0 equals the reference on known pixels."""
    reference = image * 2 - 1
    steps: list[StepRecord] = []
    x0, nfe = ilvr_chain(prior, reference, hole=hole, down_n=1, num_steps=6, callback=steps.append)
    known = ~hole.expand_as(reference)
    assert len(steps) == nfe == 6
    for step in steps:
        assert torch.equal(step.sample[known], step.target[known])
        assert torch.equal(step.sample[~known], step.proposal[~known])
    # Noise shrinks along the chain: the targets approach the clean reference.
    errors = [float((s.target - reference)[known].abs().mean()) for s in steps]
    assert errors[0] > errors[-2] > 0 and errors[-1] == 0
    assert torch.equal(x0[known], reference[known])


def test_known_mask_ilvr_with_low_pass_imposes_cell_means(prior, image, hole):
    steps: list[StepRecord] = []
    ilvr_chain(prior, image * 2 - 1, hole=hole, down_n=4, num_steps=5, callback=steps.append)
    for step in steps:
        torch.testing.assert_close(lowpass(step.sample, 4), lowpass(step.target, 4), atol=1e-5, rtol=0)
        # the target is the proposal inside the holes
        assert torch.equal(step.target[hole.expand_as(image)], step.proposal[hole.expand_as(image)])


def test_range_t_leaves_the_last_steps_unconditioned(prior, image):
    steps: list[StepRecord] = []
    ilvr_chain(prior, image * 2 - 1, down_n=2, range_t=3, num_steps=8, callback=steps.append)
    assert [s.target is None for s in steps] == [False] * 5 + [True] * 3
    for s in steps[5:]:
        assert torch.equal(s.sample, s.proposal)
    # leading spacing: index i is timestep i * (T // num_steps), as DDPMScheduler.set_timesteps
    assert [s.timestep for s in steps] == [i * (1000 // 8) for i in range(7, -1, -1)]


def test_range_t_out_of_bounds_is_an_input_error(prior):
    with pytest.raises(InputError, match="range_t"):
        ILVRInpaint(num_steps=4, range_t=5, prior=prior)


def test_core_step_is_diffusers_ddpm_step_where_nothing_is_clipped(prior):
    """Oracle for the step ILVR runs: with respacing, fixed-small variance and the same noise,
    the core's reverse step (eta = 1) equals diffusers' DDPMScheduler.step (the step of the first
    ILVR version) on every pixel whose x0_hat is not clipped; where it is clipped the core keeps
    the network's eps (DDIM form, as diffusers' RePaintScheduler) and the two differ."""
    import copy

    unet, scheduler = prior
    respaced = copy.deepcopy(scheduler)
    respaced.set_timesteps(10)
    loaded = DiffusionPrior.from_pair(unet, scheduler)
    respacing = Respacing(loaded.schedule, 10)
    assert respaced.timesteps.tolist() == [respacing.timestep(i) for i in range(9, -1, -1)]
    x = torch.randn(2, 1, SIZE, SIZE, generator=gen(3))
    saw_clipping = False
    for index in (9, 5, 1, 0):
        t = respacing.timestep(index)
        with torch.no_grad():
            eps = unet(x, torch.full((2,), t)).sample
        a_t, a_prev = respacing.alpha_bar(index), respacing.alpha_bar(index - 1)
        noise = torch.randn(x.shape, generator=gen(index))  # what diffusers draws from gen(index)
        theirs = respaced.step(eps, t, x, generator=gen(index))
        ours, x0_hat = reverse_step(x, DenoiserOutput(eps), a_t, a_prev, noise)
        torch.testing.assert_close(x0_hat, theirs.pred_original_sample, atol=1e-5, rtol=0)
        unclipped = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).abs() <= 1
        torch.testing.assert_close(ours[unclipped], theirs.prev_sample[unclipped], atol=1e-5, rtol=0)
        if index > 0 and (~unclipped).any():  # (the last step returns the clipped x0_hat in both)
            saw_clipping = True
            assert not torch.allclose(ours[~unclipped], theirs.prev_sample[~unclipped], atol=1e-5)
        x = ours
    assert saw_clipping


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
    result = method.inpaint(apply_mask(image, hole), mask, rng=rng())
    assert isinstance(result, Restoration)
    assert counting.calls == 7
    assert result.stats == {"nfe": 7.0}


def test_known_mask_method_keeps_known_pixels_and_is_seeded(prior, image, hole):
    method = ILVRInpaint(num_steps=5, down_n=2, prior=prior)
    masked = apply_mask(image, hole)
    out = method.inpaint(masked, hole, rng=rng(seed=3)).image
    known = ~hole.expand_as(image)
    assert torch.equal(out[known], image[known])
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out, method.inpaint(masked, hole, rng=rng(seed=3)).image)
    assert not torch.equal(out, method.inpaint(masked, hole, rng=rng(seed=4)).image)


@pytest.mark.parametrize("down_n", [1, 2])
def test_batch_of_n_equals_n_single_calls(prior, image, hole, down_n):
    """Per-sample randomness: image i of a batch equals image i alone with generator i, up to
    the batched UNet's float rounding."""
    method = ILVRInpaint(num_steps=6, down_n=down_n, prior=prior)
    masked = apply_mask(image, hole)
    batched = method.inpaint(masked, hole, rng=rng()).image
    for i in range(2):
        single = method.inpaint(masked[i:i + 1], hole[i:i + 1], rng=SampleRNG([gen(i)])).image
        torch.testing.assert_close(batched[i:i + 1], single, atol=1e-4, rtol=0)


class ZeroUNet(torch.nn.Module):
    """A UNet stub predicting eps = 0: the output is a fixed function of the draws."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        from types import SimpleNamespace

        return SimpleNamespace(sample=torch.zeros_like(x))


@pytest.mark.parametrize("cls", [ILVRInpaint, BlindILVR])
def test_noise_of_a_sample_is_bitwise_independent_of_its_batch(cls, prior, image, hole):
    method = cls(num_steps=6, down_n=2, prior=(ZeroUNet(prior[0].config), prior[1]))
    masked = apply_mask(image, hole)
    mask = None if method.blind else hole
    batched = method.inpaint(masked, mask, rng=rng()).image
    for i in range(2):
        single = method.inpaint(masked[i:i + 1], None if mask is None else mask[i:i + 1],
                                rng=SampleRNG([gen(i)])).image
        assert torch.equal(batched[i:i + 1], single)


def test_ilvr_with_n1_is_ddpm_paste(prior, image, hole, tmp_path):
    """No method twice: ``ilvr`` with down_n = 1 and ``ddpm-paste`` (RePaint, r = 1) with the
    same steps run the same core code (replacement guidance, one shared draw per step) and give
    the same output, bit for bit, from the same per-sample generators."""
    from inpaintbench.methods.diffusion.repaint import RePaint

    unet, scheduler = prior
    unet.save_pretrained(tmp_path, safe_serialization=True)
    scheduler.save_pretrained(tmp_path)
    masked = apply_mask(image, hole)
    ilvr = ILVRInpaint(num_steps=5, down_n=1, weights=tmp_path).inpaint(masked, hole, rng=rng(seed=7))
    paste = RePaint(weights=tmp_path, num_steps=5, jump_n_sample=1).inpaint(masked, hole, rng=rng(seed=7))
    assert ilvr.stats == paste.stats == {"nfe": 5.0}
    assert torch.equal(ilvr.image, paste.image)
    # with N > 1 the algorithm differs (only cell means of the known region are imposed)
    other = ILVRInpaint(num_steps=5, down_n=2, weights=tmp_path).inpaint(masked, hole, rng=rng(seed=7))
    assert not torch.equal(other.image, paste.image)


def test_ilvr_registry_default_is_a_low_pass():
    from inpaintbench.core.registry import method_registry

    entry = method_registry().entry("ilvr")
    assert entry.defaults["down_n"] > 1 and 28 % entry.defaults["down_n"] == 0
    assert "ddpm-paste" in entry.summary


def test_known_mask_method_needs_the_mask(prior, image):
    with pytest.raises(InputError, match="needs the hole mask"):
        ILVRInpaint(num_steps=2, prior=prior).inpaint(image, None, rng=rng())


def test_wrong_image_size_is_an_input_error(prior, hole):
    with pytest.raises(InputError, match="models 1x16x16 images"):
        ILVRInpaint(num_steps=2, prior=prior).inpaint(torch.zeros(2, 1, 8, 8), hole[..., :8, :8], rng=rng())


def test_config_holds_the_sweep_parameters(prior):
    method = ILVRInpaint(num_steps=9, down_n=4, range_t=2, prior=prior)
    assert method.config == {"num_steps": 9, "down_n": 4, "range_t": 2, "weights": None}


def test_missing_weights_raise_method_unavailable_naming_the_file(tmp_path):
    missing = tmp_path / "no-such-ddpm"
    with pytest.raises(MethodUnavailable, match="no-such-ddpm"):
        ILVRInpaint(weights=str(missing))


def test_loaded_files_name_the_prior_and_the_predictor():
    from inpaintbench.methods.diffusion.ddpm import MNIST_WEIGHTS
    from inpaintbench.methods.feedforward.mask_predictor import MNIST_WEIGHTS as PREDICTOR

    if not (MNIST_WEIGHTS / "config.json").exists() or not PREDICTOR.exists():
        pytest.skip("committed MNIST weights absent")
    assert ILVRInpaint(num_steps=2).weight_files() == [str(MNIST_WEIGHTS)]
    assert PredictedMaskILVR(num_steps=2).weight_files() == [str(MNIST_WEIGHTS), str(PREDICTOR)]


# ---------------------------------------------------------------- blind methods


def test_blind_ilvr_refuses_a_mask_and_runs_without(prior, image, hole):
    method = BlindILVR(num_steps=4, prior=prior)
    assert method.blind and not method.preserves_known
    masked = apply_mask(image, hole)
    with pytest.raises(InputError, match="blind"):
        method.inpaint(masked, hole, rng=rng())
    out = method.inpaint(masked, None, rng=rng()).image
    assert out.shape == image.shape and torch.equal(out, method.inpaint(masked, rng=rng()).image)


def test_blind_ilvr_follows_the_corrupted_image_cell_means(prior, image, hole):
    """The whole corrupted image is the reference: at the last step phi_N of the output equals
    phi_N of the zero-filled input (up to the final clip), holes included."""
    method = BlindILVR(num_steps=4, down_n=2, prior=prior)
    masked = apply_mask(image, hole)
    out = method.inpaint(masked, None, rng=rng()).image
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
        blind.inpaint(masked, hole, rng=rng())
    result = blind.inpaint(masked, None, rng=rng(seed=5))
    assert torch.equal(predictor.seen[-1], masked)  # the predictor sees only the corrupted image
    assert torch.equal(blind.last_predicted_mask, hole)
    expected = ILVRInpaint(num_steps=5, down_n=2, prior=prior).inpaint(masked, hole, rng=rng(seed=5))
    assert torch.equal(result.image, expected.image)
    assert result.stats == {"nfe": 5.0, "predictor_calls": 1.0}


def test_predicted_mask_ilvr_keeps_pixels_predicted_known(prior, image, hole):
    wrong = torch.zeros_like(hole)
    wrong[:, :, :4] = True  # a prediction unrelated to the true holes
    method = PredictedMaskILVR(num_steps=3, prior=prior, predictor=FixedPredictor(wrong))
    masked = apply_mask(image, hole)
    out = method.inpaint(masked, rng=rng()).image
    keep = ~wrong.expand_as(image)
    assert torch.equal(out[keep], masked[keep])
    assert not torch.equal(out[~keep], masked[~keep])


def test_ilvr_methods_are_registered():
    from inpaintbench.core.registry import method_registry

    registry = method_registry()
    assert registry.entry("ilvr").resolve() is ILVRInpaint
    assert registry.entry("ilvr-blind").resolve() is BlindILVR
    assert registry.entry("ilvr-predicted-mask").resolve() is PredictedMaskILVR
