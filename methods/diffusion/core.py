"""The one sampling loop every DDPM-based method of the suite is a configuration of.

diffusers keeps the arithmetic of a step in a scheduler and the loop in a pipeline; the
diffusion core does the same, once, in modules by role:

* :mod:`~inpaintbench.methods.diffusion.denoiser`: the network interface ``(x_t, t) -> (eps, v)``
  and model space;
* :mod:`~inpaintbench.methods.diffusion.respacing`: which training timestep and ``alpha-bar``
  each respaced index stands for (the core's ``i * (T // t_T)`` and guided-diffusion's table);
* :mod:`~inpaintbench.methods.diffusion.schedules`: the walk over respaced indices (plain
  descent, RePaint's resampling, an SDEdit start);
* :mod:`~inpaintbench.methods.diffusion.steps`: forward noising, forward jump, reverse step
  (``predict_x0`` then ``posterior_step``);
* :mod:`~inpaintbench.methods.diffusion.conditioning`: the strategies the loop calls in every
  reverse step (replacement, ILVR's low-pass refinement, RePaint's released order);
* this module: the loop :func:`sample` that walks a schedule with those moves and calls the
  strategy's hooks.

Model space is ``[-1, 1]`` throughout; the methods convert at their edges. Every random draw
goes through a :class:`~inpaintbench.core.seeding.SampleRNG` (one generator per image), so a sample's
noise never depends on the batch it is in.

References: DDPM (Ho et al. 2020), DDIM (Song et al. 2021), IDDPM (Nichol & Dhariwal 2021),
RePaint (Lugmayr et al. 2022), ILVR (Choi et al. 2021), SDEdit (Meng et al. 2022).
"""

from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple, Sequence

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.conditioning import Conditioning, Step
from inpaintbench.methods.diffusion.denoiser import Denoiser, DenoiserOutput, UNet2DDenoiser
from inpaintbench.methods.diffusion.respacing import NoiseSchedule, Respacing
from inpaintbench.methods.diffusion.schedules import repaint_schedule, schedule_nfe
from inpaintbench.methods.diffusion.steps import posterior_step, predict_x0, q_sample

# Names callers outside the diffusion family use as ``core.X`` (benchmarks/gpu/check.py).
__all__ = ["NoiseSchedule", "Respacing", "SampleResult", "StepRecord", "UNet2DDenoiser",
           "repaint_schedule", "sample", "schedule_nfe"]

class StepRecord(NamedTuple):
    """What :func:`sample` passes to its optional ``callback`` after each reverse step
    (for inspection in tests; NFE is returned by the loop itself).

    Attributes:
        cur, nxt: respaced indices of the step (``nxt < cur``).
        timestep: the training timestep the denoiser was called with.
        proposal: ``x'_{nxt}``, the unconditioned reverse step.
        target: what the strategy imposed (its ``after_step``); None when nothing was.
        sample: ``x_{nxt}`` after conditioning.
    """

    cur: int
    nxt: int
    timestep: int
    proposal: torch.Tensor
    target: torch.Tensor | None
    sample: torch.Tensor


class SampleResult(NamedTuple):
    """``sample``: ``[B, C, H, W]`` model space, not clipped; ``nfe``: network evaluations per image."""

    sample: torch.Tensor
    nfe: int


@torch.no_grad()
def sample(denoiser: Denoiser | Callable[[torch.Tensor, torch.Tensor], DenoiserOutput],
           respacing: Respacing, schedule: Sequence[int], rng: SampleRNG, *,
           shape: Sequence[int] | None = None, start: torch.Tensor | None = None,
           guidance: Conditioning | None = None, eta: float = 1.0, clip_denoised: bool = True,
           callback: Callable[[StepRecord], None] | None = None) -> SampleResult:
    """The one sampler loop: walk ``schedule`` with reverse steps (downward moves) and forward
    jumps (upward moves: the strategy's ``jump``, by default
    :func:`~inpaintbench.methods.diffusion.steps.forward_jump`), calling the conditioning
    strategy's hooks in every reverse step.

    Args:
        denoiser: ``(x_t, t) -> DenoiserOutput``.
        respacing: the respacing table of the schedule's indices.
        schedule: respaced indices, first the start level, last ``-1``
            (:mod:`~inpaintbench.methods.diffusion.schedules`).
        rng: one generator per image; draws, each ``rng.randn_like(x)``, in this order: the
            start (pure noise, or the noise of ``start``), then per reverse step ``z`` (always,
            even on the last step) followed by the strategy's own draws; per forward jump one draw.
        shape: ``[B, C, H, W]`` of pure-noise starts (default: the strategy's ``shape``).
        start: ``[B, C, H, W]`` model-space image noised to ``schedule[0]`` by
            :func:`~inpaintbench.methods.diffusion.steps.q_sample` as the start state (SDEdit);
            None: pure noise.
        guidance: the conditioning strategy
            (:class:`~inpaintbench.methods.diffusion.conditioning.Conditioning`); None: unconditional.
        eta: DDIM eta of the reverse step (1 = DDPM ancestral sampling).
        clip_denoised: clip ``x0_hat`` to ``[-1, 1]`` in every step.
        callback: called with a :class:`StepRecord` after each reverse step.

    Returns:
        :class:`SampleResult` ``(x_0, nfe)``.
    """
    if start is not None:
        device = start.device
        x = q_sample(start, respacing.alpha_bar(schedule[0], device), rng.randn_like(start))
    else:
        if shape is None:
            shape = None if guidance is None else guidance.shape
            if shape is None:
                raise InputError("sample() needs shape, start or a reference strategy to know the image shape")
        x = rng.randn(*shape[1:])
        if x.shape[0] != shape[0]:
            raise InputError(f"batch of {shape[0]} images but {len(rng)} per-sample generators")
    device = x.device
    strategy = guidance if guidance is not None else Conditioning()
    # Gradient-based strategies (DPS, PiGDM) differentiate through the denoiser.
    grad_mode = torch.enable_grad if strategy.needs_grad else contextlib.nullcontext
    nfe = 0
    for cur, nxt in zip(schedule[:-1], schedule[1:]):
        a_cur, a_nxt = respacing.alpha_bar(cur, device), respacing.alpha_bar(nxt, device)
        if nxt > cur:
            x = strategy.jump(x, a_cur, a_nxt, rng.randn_like(x))
            continue
        z = rng.randn_like(x)  # drawn before the model call: the call draws nothing, so the order is free
        t = respacing.timestep(cur)
        step = Step(cur, nxt, t, a_cur, a_nxt, z, rng, nfe)
        x = strategy.before_model(x, step)
        with grad_mode():
            if strategy.needs_grad:
                x = x.detach().requires_grad_(True)
            out = denoiser(x, torch.full((x.shape[0],), t, device=device, dtype=torch.long))
            nfe += 1
            pred = strategy.update_x0(x, predict_x0(x, out, a_cur, clip_denoised=clip_denoised), step)
            proposal = posterior_step(x, pred, a_cur, a_nxt, z, eta=eta)
            x, target = strategy.after_step(x, pred, proposal, step)
        if strategy.needs_grad:
            x, proposal = x.detach(), proposal.detach()
        if callback is not None:
            callback(StepRecord(cur, nxt, t, proposal, target, x))
    return SampleResult(x, nfe)
