"""RePaint's chain in the order of the authors' code, built from the diffusion core's moves.

The core's loop (:func:`inpaintbench.methods.diffusion.core.sample`, used by the ``repaint``
method) and RePaint's released ``p_sample_loop_progressive`` (``inpa_inj_sched_prev=True``,
``inpa_inj_sched_prev_cumnoise=False``, the setting of every paper config) sample the same
distribution but differ in how they use their noise:

1. **where the known region is injected.** The core replaces the known region *after* each
   reverse step, with the input noised to the level it lands on, reusing the step's own draw
   ``z`` (the regions are disjoint pixel sets). RePaint's code replaces it *before* each model
   call, with the input noised to the current level by a *fresh* draw, and not before the
   chain's first call (pure noise enters the network).
2. **after a forward jump** the core keeps the jumped known region (it is the re-noised
   input, already at the right level); RePaint's code overwrites it with a fresh noising of
   the input at the next model call (point 1), so the jumped known pixels are never used.
3. **the last step**: the core pastes the clean input into the known region of ``x_0``;
   RePaint's code returns the raw model sample (its known pixels are the model's; the
   harness composites the input back in both cases).
4. **respacing**: RePaint's configs use guided-diffusion's ``space_timesteps`` (``0, 4, ...,
   999`` for 250 of 1000 steps), the core's default table is ``i * (T // t_T)`` (``0, ...,
   996``); give :class:`~inpaintbench.methods.diffusion.adm.SpacedRespacing` here to match.
5. **draw order** per reverse step: ``z`` of the step, then (from the second model call on)
   the fresh noise of the known region; one draw per forward jump; the start noise first.

:func:`sample_code_order` reproduces the code's chain exactly (``tests/test_adm.py`` replays
the same draws through both); the arithmetic of every move is the core's
(:func:`~inpaintbench.methods.diffusion.core.reverse_step`,
:func:`~inpaintbench.methods.diffusion.core.forward_jump`,
:func:`~inpaintbench.methods.diffusion.core.q_sample`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from inpaintbench.api import InputError, SampleRNG
from inpaintbench.methods.diffusion.core import (
    DenoiserOutput,
    Respacing,
    SampleResult,
    forward_jump,
    q_sample,
    reverse_step,
)

__all__ = ["sample_code_order"]


@torch.no_grad()
def sample_code_order(denoiser: Callable[[torch.Tensor, torch.Tensor], DenoiserOutput], respacing: Respacing,
                      schedule: Sequence[int], rng: SampleRNG, *, reference: torch.Tensor, hole: torch.Tensor,
                      clip_denoised: bool = True) -> SampleResult:
    """RePaint's chain as its released code runs it (see the module docstring for how it
    differs from the core's :func:`~inpaintbench.methods.diffusion.core.sample`).

    Args:
        denoiser: ``(x_t, t) -> DenoiserOutput`` (training timesteps ``t``).
        respacing: the respacing table (``SpacedRespacing`` for guided-diffusion's spacing).
        schedule: respaced indices, first ``t_T - 1``, last ``-1``
            (:func:`~inpaintbench.methods.diffusion.core.repaint_schedule`).
        rng: per-image generators; draws in RePaint's order: start noise; per reverse step
            ``z``, then (not on the first) the known region's noise; per forward jump one.
        reference: ``y``, ``[B, C, H, W]`` model space (hole values unused).
        hole: bool ``[B, 1, H, W]``, True = unknown.
        clip_denoised: clip ``x0_hat`` to ``[-1, 1]``.

    Returns:
        :class:`~inpaintbench.methods.diffusion.core.SampleResult`: the raw ``x_0`` (not
        composited: the known pixels are the model's) and the NFE.
    """
    if hole.dtype != torch.bool or hole.shape[1] != 1 or hole.shape[0] != reference.shape[0]:
        raise InputError(f"hole must be bool [B, 1, H, W] matching reference {list(reference.shape)}, got "
                         f"{hole.dtype} {list(hole.shape)}")
    x = rng.randn(*reference.shape[1:]).to(reference.device)
    device = x.device
    nfe = 0
    for cur, nxt in zip(schedule[:-1], schedule[1:]):
        a_cur, a_nxt = respacing.alpha_bar(cur, device), respacing.alpha_bar(nxt, device)
        if nxt > cur:
            x = forward_jump(x, a_cur, a_nxt, rng.randn_like(x))
            continue
        z = rng.randn_like(x)
        if nfe > 0:  # the code injects before every model call but the first
            x = torch.where(hole, x, q_sample(reference, a_cur, rng.randn_like(x)))
        t = respacing.timestep(cur)
        out = denoiser(x, torch.full((x.shape[0],), t, device=device, dtype=torch.long))
        nfe += 1
        x, _ = reverse_step(x, out, a_cur, a_nxt, z, clip_denoised=clip_denoised)
    return SampleResult(x, nfe)
