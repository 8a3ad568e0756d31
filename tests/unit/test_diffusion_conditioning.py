"""The conditioning-strategy interface of the diffusion core's loop: a no-op strategy is the
unconditional loop, an x0-space update (DDNM-style) and a gradient through the denoiser
(DPS-style) plug in as strategies, phi_N is validated once, and the DiffusionMethod config
rule keeps new options out of existing configs."""

from __future__ import annotations

import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.conditioning import Conditioning, ReplacementBeforeCall
from inpaintbench.methods.diffusion.core import sample
from inpaintbench.methods.diffusion.ddpm_network import build_scheduler, build_unet
from inpaintbench.methods.diffusion.denoiser import DenoiserOutput
from inpaintbench.methods.diffusion.ilvr import ILVRInpaint
from inpaintbench.methods.diffusion.lowpass import LowPassFilter
from inpaintbench.methods.diffusion.prior import DiffusionPrior
from inpaintbench.methods.diffusion.respacing import NoiseSchedule, Respacing
from inpaintbench.methods.diffusion.schedules import plain_schedule, repaint_schedule
from inpaintbench.methods.diffusion.steps import Prediction, forward_jump, reverse_step
from inpaintbench.methods.training.init import seeded_init_

SIZE = 8


@pytest.fixture(scope="module")
def pair():
    unet = build_unet(SIZE, 1, (8, 8), 1, (False, False), False, 8)
    seeded_init_(unet, 0)
    return unet.eval(), build_scheduler(100)


def rng(n: int = 2, seed: int = 0) -> SampleRNG:
    return SampleRNG([torch.Generator().manual_seed(seed + i) for i in range(n)])


def reference_and_hole():
    y = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * 2 - 1
    hole = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    hole[..., 2:6, 1:5] = True
    return y, hole


def test_the_base_strategy_is_the_unconditional_loop(pair):
    """guidance=None and the no-op base strategy both equal a hand-written walk of the schedule
    with the three moves (same draws: start, z per reverse step, one per jump)."""
    prior = DiffusionPrior.from_pair(*pair)
    table = Respacing(prior.schedule, 10)
    schedule = repaint_schedule(10, 2, 2)
    generators = rng()
    x = generators.randn(1, SIZE, SIZE)
    with torch.no_grad():
        for cur, nxt in zip(schedule[:-1], schedule[1:]):
            a, b = table.alpha_bar(cur), table.alpha_bar(nxt)
            if nxt > cur:
                x = forward_jump(x, a, b, generators.randn_like(x))
                continue
            z = generators.randn_like(x)
            out = prior.denoiser(x, torch.full((2,), table.timestep(cur), dtype=torch.long))
            x, _ = reverse_step(x, out, a, b, z)
    plain = sample(prior.denoiser, table, schedule, rng(), shape=(2, 1, SIZE, SIZE)).sample
    hooked = sample(prior.denoiser, table, schedule, rng(), shape=(2, 1, SIZE, SIZE), guidance=Conditioning()).sample
    assert torch.equal(plain, x) and torch.equal(hooked, x)


class ProjectKnownX0(Conditioning):
    """DDNM's update for inpainting (A = keep the known pixels): x0_hat <- A^+ y + (I - A^+ A) x0_hat."""

    def __init__(self, y, hole, table):
        self.y, self.hole, self.table, self.seen = y, hole, table, []

    def update_x0(self, x_t, pred, step):
        self.seen.append((step.cur, step.nxt))
        # the step's alphas are those of the respacing table (what an x0-space solver needs)
        assert torch.equal(step.alpha_bar, self.table.alpha_bar(step.cur))
        assert torch.equal(step.alpha_bar_prev, self.table.alpha_bar(step.nxt))
        return Prediction(torch.where(self.hole, pred.x0_hat, self.y), pred.eps, pred.v)


def test_an_x0_space_strategy_steers_the_step(pair):
    """With DDIM (eta = 0) the last step returns x0_hat itself, so an x0-space projection onto the
    known pixels must show up exactly in the output."""
    prior = DiffusionPrior.from_pair(*pair)
    table = Respacing(prior.schedule, 6)
    y, hole = reference_and_hole()
    strategy = ProjectKnownX0(y, hole, table)
    out = sample(prior.denoiser, table, plain_schedule(6), rng(), shape=y.shape, guidance=strategy, eta=0.0).sample
    assert strategy.seen == [(5, 4), (4, 3), (3, 2), (2, 1), (1, 0), (0, -1)]
    assert torch.equal(torch.where(hole, 0, out), torch.where(hole, 0, y))
    free = sample(prior.denoiser, table, plain_schedule(6), rng(), shape=y.shape, eta=0.0).sample
    assert (torch.where(hole, 0, free) - torch.where(hole, 0, y)).abs().max() > 0.1


class LinearDenoiser:
    """eps = c x: x0_hat = (x - sqrt(1 - a) c x) / sqrt(a), so d(sum x0_hat)/dx is known."""

    learn_sigma, in_channels, sample_size = False, 1, (SIZE, SIZE)

    def __init__(self, c: float):
        self.c = torch.tensor(c, requires_grad=False)

    def __call__(self, x, t):
        return DenoiserOutput(self.c * x)


class GradientStep(Conditioning):
    """A DPS-shaped strategy: differentiate a loss of x0_hat through the denoiser w.r.t. x_t."""

    needs_grad = True

    def __init__(self):
        self.grads = []

    def after_step(self, x_t, pred, proposal, step):
        (grad,) = torch.autograd.grad(pred.x0_hat.sum(), x_t)
        self.grads.append((step.alpha_bar, grad))
        return proposal - 0.01 * grad, None


def test_a_gradient_strategy_differentiates_through_the_denoiser():
    schedule = NoiseSchedule.from_scheduler(build_scheduler(100))
    table = Respacing(schedule, 5)
    strategy = GradientStep()
    c = 0.3
    out = sample(LinearDenoiser(c), table, plain_schedule(5), rng(), shape=(2, 1, SIZE, SIZE), guidance=strategy,
                 clip_denoised=False)
    assert len(strategy.grads) == 5 and not out.sample.requires_grad
    for a, grad in strategy.grads:
        expected = (1 - (1 - a).sqrt() * c) / a.sqrt()
        torch.testing.assert_close(grad, torch.full_like(grad, float(expected)), atol=1e-5, rtol=1e-5)


def test_phi_is_validated_once_before_any_weights_load(tmp_path):
    with pytest.raises(InputError, match="power of two"):
        LowPassFilter(3)
    with pytest.raises(InputError, match="lowpass must be 'mean' or 'bicubic'"):
        LowPassFilter(2, "gaussian")
    missing = tmp_path / "no-prior"  # would raise MethodUnavailable if loading came first
    with pytest.raises(InputError, match="lowpass"):
        ILVRInpaint(weights=missing, lowpass="gaussian")
    with pytest.raises(InputError, match="down_n"):
        ILVRInpaint(weights=missing, down_n=6)
    with pytest.raises(InputError, match="must divide the image size"):
        LowPassFilter(4).check_size((SIZE, 6))
    with pytest.raises(InputError, match="hole mask"):
        ReplacementBeforeCall(torch.zeros(1, 1, SIZE, SIZE))


def test_new_options_enter_the_config_only_off_default(pair):
    """The config rule of DiffusionMethod: options added after results existed (adm, chain,
    lowpass) are absent at their defaults, so those results keep their config hash."""
    plain = ILVRInpaint(prior=pair, num_steps=3, lowpass="mean", chain="core")
    assert plain.config == {"weights": None, "num_steps": 3, "down_n": 2, "range_t": 0}
    tuned = ILVRInpaint(prior=pair, num_steps=3, lowpass="bicubic", chain="official")
    assert tuned.config == {**plain.config, "lowpass": "bicubic", "chain": "official"}
    with pytest.raises(InputError, match="chain must be 'core' or 'official'"):
        ILVRInpaint(prior=pair, num_steps=3, chain="paper")
