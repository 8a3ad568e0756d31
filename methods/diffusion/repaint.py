"""RePaint (Lugmayr et al., "RePaint: Inpainting using Denoising Diffusion Probabilistic
Models", CVPR 2022): inpainting with an unconditional DDPM prior.

Every reverse step samples the unknown region from the model and the known region from the
forward process applied to the input, ``q(x_{t-1} | x_0)`` (paper, Alg. 1 and Eq. 8); the
resampling schedule repeatedly jumps ``j`` steps back to the noisier level (Sec. 4.2) so the
two regions harmonise.

Time runs over ``t_T`` respaced indices ``i = t_T - 1, ..., 0``; index ``i`` is the training
timestep ``i * (T // t_T)`` (the spacing of diffusers' ``RePaintScheduler``, so both give the
same numbers for the same noise; the paper's code spaces indices over ``[0, T - 1]``).

Where diffusers' ``RePaintScheduler`` / ``RePaintPipeline`` (0.42) differ from the paper and
from this module (``tests/test_repaint.py`` pins the first two):

* its timestep list is our list of states read as *evaluation* timesteps, so every jump
  starts one level lower than in the paper's code, and the last jump re-noises the finished
  ``x_0`` to level 0 and denoises it again (same NFE, a different chain);
* ``undo_step`` noises with ``betas[t .. t + T // t_T - 1]`` while the state sits at
  ``t - T // t_T``: the re-noised level only equals the level the model is then told when
  ``t_T = T`` or the betas are constant;
* its ``eta`` defaults to 0 (DDIM in the holes); the paper samples DDPM-style (``eta = 1``,
  our default);
* it draws one noise tensor per step for both regions, as we do: the regions are disjoint
  pixel sets, so this matches the paper's two independent draws.

With ``eta = 1`` the hole update is DDIM's form of the DDPM posterior; it equals the paper's
``p_sample`` (posterior mean from the clipped ``x_0``) whenever ``x_0`` is not clipped.

RePaint is a configuration of the diffusion core (:mod:`inpaintbench.methods.diffusion.core`)
through :class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`: the resampling schedule
:func:`~inpaintbench.methods.diffusion.schedules.repaint_schedule`, the replacement strategy
(:class:`~inpaintbench.methods.diffusion.conditioning.Replacement`) and, for ``strength < 1``,
an SDEdit start. ``ddpm-paste`` is the same class with ``jump_n_sample = 1``.

RePaint's released code (``chain="official"``). The core's default order and RePaint's released
``p_sample_loop_progressive`` (``inpa_inj_sched_prev=True``,
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
   996``); an ADM ``model=`` with ``adm=`` gets
   :class:`~inpaintbench.methods.diffusion.respacing.SpacedRespacing`, which matches it.
5. **draw order** per reverse step: ``z`` of the step, then (from the second model call on)
   the fresh noise of the known region; one draw per forward jump; the start noise first.

``chain="official"`` (the strategy
:class:`~inpaintbench.methods.diffusion.conditioning.ReplacementBeforeCall`) reproduces the
code's chain exactly (``tests/test_adm.py`` replays the same draws through both); the
arithmetic of every move is the core's (:mod:`~inpaintbench.methods.diffusion.steps`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import check_mask_batch
from inpaintbench.methods.diffusion.base import DiffusionMethod
from inpaintbench.methods.diffusion.conditioning import Conditioning, Replacement, ReplacementBeforeCall
from inpaintbench.methods.diffusion.schedules import repaint_schedule, schedule_nfe, sdedit_schedule

__all__ = ["RePaint", "repaint_schedule", "schedule_nfe"]


class RePaint(DiffusionMethod):
    """RePaint inpainting with an unconditional DDPM prior.

    Args:
        weights, num_steps, model, adm, prior: those of
            :class:`~inpaintbench.methods.diffusion.base.DiffusionMethod` (``num_steps`` is
            ``t_T``).
        jump_length: ``j``, indices jumped back per resampling.
        jump_n_sample: ``r``, visits of each jump point (1 = no resampling, DDPM + paste).
        eta: 1.0 = DDPM ancestral sampling in the holes (the paper); 0.0 = DDIM.
        paste_known: True (RePaint): the re-noised known pixels are pasted at every reverse
            step and the input's known pixels over the output (``preserves_known``). False:
            no pasting at all, plain SDEdit / img2img from the noised zero-filled input, whose
            known pixels then drift with ``strength`` (the preservation study measures it).
        strength: in ``(0, 1]``; < 1 starts SDEdit-style from the zero-filled input noised to
            index ``round(strength * t_T) - 1`` instead of from pure noise.
        batch_size: images per chain (None: the whole batch at once); chunks draw from their
            own images' generators, so the output does not depend on it.
        clip_denoised: clip predicted ``x_0`` to ``[-1, 1]``.
        chain: ``"core"`` (default): the core's loop; ``"official"``: RePaint's released code's
            order of injection and draws (see the module docstring; needs ``paste_known``,
            ``strength = 1``, ``eta = 1``). ``adm`` and ``chain`` enter the config only when
            given, so existing results keep their config hash.

    The :class:`~inpaintbench.core.method.Restoration` carries ``{"nfe": network evaluations per image}``.
    """

    input_label = "this RePaint prior"

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        num_steps: int = 25,
        jump_length: int = 5,
        jump_n_sample: int = 2,
        eta: float = 1.0,
        paste_known: bool = True,
        strength: float = 1.0,
        batch_size: int | None = None,
        clip_denoised: bool = True,
        model: str | os.PathLike | None = None,
        adm: str | os.PathLike | None = None,
        chain: str = "core",
        prior: tuple[Any, Any] | None = None,
    ):
        if not 0.0 < strength <= 1.0:
            raise InputError(f"strength must lie in (0, 1], got {strength}")
        if not 0.0 <= eta <= 1.0:
            raise InputError(f"eta must lie in [0, 1], got {eta}")
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch_size must be >= 1 or None, got {batch_size}")
        if chain == "official" and not (paste_known and strength == 1.0 and eta == 1.0):
            raise InputError("chain='official' is RePaint's own loop: it needs paste_known=True, strength=1, eta=1")
        super().__init__(num_steps=num_steps, weights=weights, model=model, adm=adm, chain=chain, prior=prior,
                         jump_length=jump_length, jump_n_sample=jump_n_sample, eta=eta, paste_known=paste_known,
                         strength=strength, batch_size=batch_size, clip_denoised=clip_denoised)
        self.schedule = sdedit_schedule(repaint_schedule(num_steps, jump_length, jump_n_sample), num_steps, strength)
        self.start_index = self.schedule[0]
        self.preserves_known = paste_known
        self.eta, self.clip_denoised, self.sdedit_start = eta, clip_denoised, strength < 1.0

    def conditioning(self, reference: torch.Tensor, hole: torch.Tensor | None, **options: Any) -> Conditioning | None:
        """Replacement of the known region (RePaint's released order with ``chain="official"``);
        None with ``paste_known=False`` (nothing conditions the chain: SDEdit from the noised input)."""
        if not self.config["paste_known"]:
            return None
        return ReplacementBeforeCall(reference, hole) if self.chain == "official" else Replacement(reference, hole)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, rng: SampleRNG) -> Restoration:
        """Inpaint ``image`` (float32 ``[B, C, H, W]`` in ``[0, 1]``, holes zero-filled) where
        ``mask`` (bool ``[B, 1, H, W]``, True = hole) says.

        Returns:
            :class:`Restoration` with float32 ``[B, C, H, W]`` in ``[0, 1]`` (the input on known
            pixels when ``paste_known``) and ``{"nfe": ...}``. All noise comes from ``rng``
            (one generator per image).
        """
        self.check_input(image)
        check_mask_batch(mask, image)
        image, mask = image.to(self.device), mask.to(self.device)
        result = self.sample_chain(image, mask, rng=rng)
        if self.config["paste_known"]:
            return Restoration(torch.where(mask, result.image, image), result.stats)
        return result
