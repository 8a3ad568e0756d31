"""Conditioning strategies: the small objects the one sampling loop
(:func:`~inpaintbench.methods.diffusion.core.sample`) calls at fixed points of every reverse
step, instead of branching on string modes.

One reverse step ``x_t -> x_{t-1}`` of the loop, with the strategy's three hooks::

    z       = rng.randn_like(x_t)                          # the step's own draw
    x_t     = strategy.before_model(x_t, step)             # e.g. RePaint's released order
    out     = denoiser(x_t, t)
    pred    = predict_x0(x_t, out, a_t)                    # Prediction(x0_hat, eps, v)
    pred    = strategy.update_x0(x_t, pred, step)          # x0-space solvers (DDNM, DDRM, DiffPIR...)
    x'      = posterior_step(x_t, pred, a_t, a_prev, z)    # the unconditional proposal
    x, tgt  = strategy.after_step(x_t, pred, x', step)     # replacement, ILVR, DPS-style corrections

and a forward jump of a resampling schedule (RePaint's, DDNM's time-travel) is
``strategy.jump(x, a_from, a_to, noise)`` (default: the forward process,
:func:`~inpaintbench.methods.diffusion.steps.forward_jump`).

:class:`Step` carries the step's levels (``alpha-bar`` of both ends), its training timestep,
its draw ``z``, the per-image generators (for any further draw, taken in a fixed order) and
the number of network calls so far. A strategy with ``needs_grad = True`` gets ``x_t`` with
``requires_grad`` and ``pred`` still attached to the denoiser's graph in ``update_x0`` and
``after_step`` (DPS, PiGDM: ``torch.autograd.grad`` of a measurement loss through the network);
the loop detaches the result.

The strategies of the suite:

* :class:`Replacement`: the known region (or the whole image when there is no mask) is
  replaced by the reference noised to the new level (RePaint Eq. 8, ddpm-paste; ILVR with
  ``N = 1``), sharing the step's draw ``z``;
* :class:`ReplacementBeforeCall`: RePaint's released code order (known region injected before
  each model call, fresh draw);
* :class:`LowPassRefinement`: ILVR (Choi et al. 2021, Alg. 1): only ``phi_N`` of the target is
  imposed, with a fresh draw for the reference.

A blind method with a predicted mask gives these strategies its predicted hole: where the
hole comes from is the method's business, not the loop's.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.methods.diffusion.lowpass import LowPassFilter
from inpaintbench.methods.diffusion.steps import Prediction, forward_jump, q_sample

__all__ = ["Conditioning", "LowPassRefinement", "Replacement", "ReplacementBeforeCall", "Step"]


@dataclass(frozen=True)
class Step:
    """What a strategy knows about the reverse step it is called in.

    Attributes:
        cur, nxt: respaced indices of the step (``nxt < cur``; ``nxt = -1`` is the last step, to ``x_0``).
        timestep: the training timestep the denoiser is called with.
        alpha_bar: 0-dim ``alpha-bar`` of ``cur`` (``a_t``).
        alpha_bar_prev: 0-dim ``alpha-bar`` of ``nxt`` (``a_{t-1}``; 1 on the last step).
        noise: ``z``, the step's own ``N(0, I)`` draw, ``[B, C, H, W]`` (the proposal's noise).
        rng: the per-image generators; a strategy's further draws (``rng.randn_like``) come
            after ``z`` in the order the strategy takes them.
        calls: network evaluations before this step's (0 on the chain's first step).
    """

    cur: int
    nxt: int
    timestep: int
    alpha_bar: torch.Tensor
    alpha_bar_prev: torch.Tensor
    noise: torch.Tensor
    rng: Any
    calls: int


class Conditioning:
    """A conditioning strategy; the base does nothing (the loop is then unconditional).

    Override any of the three hooks (see the module docstring for where the loop calls them).
    All tensors are model space ``[B, C, H, W]``.

    Attributes:
        needs_grad: the loop runs the denoiser with gradients and hands ``update_x0`` /
            ``after_step`` an ``x_t`` that requires grad.
        shape: ``[B, C, H, W]`` of the images it conditions (the loop's default start shape),
            or None.
    """

    needs_grad: ClassVar[bool] = False
    shape: torch.Size | None = None

    def before_model(self, x_t: torch.Tensor, step: Step) -> torch.Tensor:
        """The state the denoiser is called on (default: ``x_t`` unchanged)."""
        return x_t

    def update_x0(self, x_t: torch.Tensor, pred: Prediction, step: Step) -> Prediction:
        """The prediction the reverse step uses (default: the network's). An x0-space solver
        returns a corrected ``x0_hat`` (and keeps ``eps``, or re-derives it with
        :func:`~inpaintbench.methods.diffusion.steps.eps_from_x0`)."""
        return pred

    def after_step(self, x_t: torch.Tensor, pred: Prediction, proposal: torch.Tensor,
                   step: Step) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x_{t-1}, target)`` from the unconditional ``proposal``; ``target`` is what was
        imposed (for inspection, :class:`~inpaintbench.methods.diffusion.core.StepRecord`), None
        when nothing was. Default: ``(proposal, None)``."""
        return proposal, None

    def jump(self, x: torch.Tensor, alpha_bar_from: torch.Tensor, alpha_bar_to: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
        """The state after one upward move of the schedule (``alpha_bar_to < alpha_bar_from``)
        with its draw ``noise``. Default: the forward process ``q(x_to | x_from)``
        (:func:`~inpaintbench.methods.diffusion.steps.forward_jump`; RePaint Alg. 1 line 13)."""
        return forward_jump(x, alpha_bar_from, alpha_bar_to, noise)


@dataclass(eq=False)
class _ReferenceConditioning(Conditioning):
    """A strategy conditioned on a reference image ``y`` with an optional hole mask.

    Attributes:
        reference: ``y``, ``[B, C, H, W]`` model space (values in holes are never used).
        hole: bool ``[B, 1, H, W]``, True = unknown pixel of ``y`` (known or predicted mask);
            None: the whole reference conditions (blind ILVR, super-resolution).
        stop: steps from respaced index ``cur >= stop`` are conditioned; the last ``stop``
            steps run unconditioned (ILVR's ``range_t``).
    """

    reference: torch.Tensor
    hole: torch.Tensor | None = None
    _: KW_ONLY
    stop: int = 0

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.reference.shape

    def active(self, step: Step) -> bool:
        """Whether ``step`` is conditioned (``cur >= stop``)."""
        return step.cur >= self.stop

    def target(self, proposal: torch.Tensor, noised: torch.Tensor) -> torch.Tensor:
        """The proposal in the holes, the noised reference elsewhere."""
        return noised if self.hole is None else torch.where(self.hole, proposal, noised)


@dataclass(eq=False)
class _AfterStepReference(_ReferenceConditioning):
    """Reference strategies acting after each reverse step (the paper order of RePaint and ILVR).

    Attributes:
        at_current_level: False (the papers): ``y`` is noised to the level the step lands on
            (``y_{t-1}``; ``y`` itself on the last step); True (ILVR's released code): to the
            level the step starts from (``q_sample(ref_img, t)``).
    """

    at_current_level: bool = False

    def noised_reference(self, step: Step, draw) -> torch.Tensor:
        """``y`` noised to this strategy's level; ``draw()`` gives the noise, called only when used."""
        if step.nxt < 0 and not self.at_current_level:
            return self.reference
        level = step.alpha_bar if self.at_current_level else step.alpha_bar_prev
        return q_sample(self.reference, level, draw())


@dataclass(eq=False)
class Replacement(_AfterStepReference):
    """Replacement of the known region after each reverse step (RePaint Eq. 8, ddpm-paste, and
    ILVR with ``N = 1``): ``x_{t-1} = where(hole, x'_{t-1}, y_{t-1})``.

    The reference's noise is the step's own draw ``z``: the two regions are disjoint pixel
    sets, so they stay independent, as RePaint's two draws (diffusers' ``RePaintScheduler``
    does the same). Without a hole mask the result is ``y_{t-1}`` itself.
    """

    def after_step(self, x_t, pred, proposal, step):
        """``(target, target)`` on conditioned steps, ``(proposal, None)`` otherwise."""
        if not self.active(step):
            return proposal, None
        target = self.target(proposal, self.noised_reference(step, lambda: step.noise))
        return target, target


@dataclass(eq=False)
class LowPassRefinement(_AfterStepReference):
    """ILVR's refinement (Choi et al. 2021, Alg. 1): ``target = where(hole, x', y_{t-1})`` and
    ``x_{t-1} = phi_N(target) + x' - phi_N(x')``: only the target's low frequencies are imposed.

    The reference gets a fresh draw (one per conditioned step that noises it, after ``z``): a
    cell of ``phi_N`` mixes both regions, so sharing ``z`` would correlate the proposal's and
    the reference's noise. With ``N = 1`` use :class:`Replacement` (the same update, ``z`` shared).

    Attributes:
        phi: the filter ``phi_N`` (:class:`~inpaintbench.methods.diffusion.lowpass.LowPassFilter`);
            its ``N`` must divide the reference's size.
    """

    phi: LowPassFilter = field(kw_only=True)

    def __post_init__(self) -> None:
        self.phi.check_size(self.reference.shape[-2:])

    def after_step(self, x_t, pred, proposal, step):
        """``(phi(target) + proposal - phi(proposal), target)`` on conditioned steps."""
        if not self.active(step):
            return proposal, None
        target = self.target(proposal, self.noised_reference(step, lambda: step.rng.randn_like(x_t)))
        if self.phi.down_n == 1:
            return target, target
        return self.phi(target) + (proposal - self.phi(proposal)), target


@dataclass(eq=False)
class ReplacementBeforeCall(_ReferenceConditioning):
    """RePaint's released order (``p_sample_loop_progressive`` with ``inpa_inj_sched_prev``):
    just before each model call but the chain's first, the known region is replaced by ``y``
    noised to the *current* level with a fresh draw; the step's result is left as the model
    made it (the jumped known pixels are overwritten at the next call, and the final sample's
    known pixels are the model's: the harness composites the input back).

    ``hole`` is required (bool ``[B, 1, H, W]``).
    """

    def __post_init__(self) -> None:
        if self.hole is None:
            raise InputError("RePaint's released order (ReplacementBeforeCall) needs a hole mask")

    def before_model(self, x_t, step):
        """``where(hole, x_t, q_sample(y, a_t, fresh draw))`` from the second model call on."""
        if step.calls == 0 or not self.active(step):
            return x_t
        return torch.where(self.hole, x_t, q_sample(self.reference, step.alpha_bar, step.rng.randn_like(x_t)))
