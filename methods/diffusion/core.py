"""The one diffusion core every DDPM-based method of the suite is a configuration of.

diffusers keeps the arithmetic of a step in a scheduler and the loop in a pipeline; this
module does the same, once:

* **the denoiser** (:class:`Denoiser`, :class:`UNet2DDenoiser`): a network returning the noise
  estimate ``eps`` and, for learned-variance models (Improved DDPM, ADM ``learn_sigma``), the
  variance interpolation ``v``;
* **the training schedule** (:class:`NoiseSchedule`): ``betas`` and ``alphas_cumprod`` of the
  model's ``T`` training steps, built from a diffusers ``DDPMScheduler`` (or its config);
* **the respacing table** (:class:`Respacing`): respaced index ``i`` in ``[0, t_T)`` is the
  training timestep ``i * (T // t_T)`` (diffusers' ``"leading"`` spacing and its
  ``RePaintScheduler``), index ``-1`` is the clean image ``x_0``;
* **one reverse step** (:func:`reverse_step`), **one forward jump** (:func:`forward_jump`) and
  **one forward noising** (:func:`q_sample`);
* **the loop** (:func:`sample`) that walks a schedule of respaced indices (plain descent,
  :func:`plain_schedule`, or RePaint's resampling schedule, :func:`repaint_schedule`), optionally
  from an SDEdit start (:func:`sdedit_schedule`), and applies the conditioning hook
  :class:`Guidance` after every reverse step: replacement of the known region by the noised
  reference (``down_n = 1``: RePaint, ddpm-paste) or ILVR's low-pass refinement
  (``down_n > 1``), on a known or a predicted hole mask, or on the whole image (blind ILVR,
  super-resolution).

Model space is ``[-1, 1]`` throughout; the methods convert at their edges. Every random draw
goes through a :class:`~inpaintbench.core.seeding.SampleRNG` (one generator per image), so a sample's
noise never depends on the batch it is in.

References (equation numbers as cited below):

* DDPM: Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
* DDIM: Song, Meng, Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
* IDDPM: Nichol, Dhariwal, "Improved Denoising Diffusion Probabilistic Models", ICML 2021.
* RePaint: Lugmayr et al., CVPR 2022. ILVR: Choi et al., ICCV 2021. SDEdit: Meng et al., ICLR 2022.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol, Sequence, runtime_checkable

import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import check_image_batch
from inpaintbench.methods import resolve_weights

# ---------------------------------------------------------------------------- the denoiser


class DenoiserOutput(NamedTuple):
    """What a denoiser returns for ``x_t``.

    Attributes:
        eps: ``[B, C, H, W]``, the predicted noise of ``x_t`` (model space).
        v: ``[B, C, H, W]`` in ``[-1, 1]`` (nominally), the learned-variance interpolation of
            IDDPM Eq. 15 as guided-diffusion outputs it (``frac = (v + 1) / 2`` between
            ``log beta_t`` and ``log beta~_t``); None for fixed-variance models.
    """

    eps: torch.Tensor
    v: torch.Tensor | None = None


@runtime_checkable
class Denoiser(Protocol):
    """A network ``(x_t, t) -> DenoiserOutput``.

    ``x_t``: float32 ``[B, C, H, W]`` in model space; ``t``: long ``[B]`` training timesteps in
    ``[0, T)``. ``learn_sigma`` says whether ``v`` is returned; ``in_channels`` and
    ``sample_size`` (``(H, W)``) describe the images it models.
    """

    learn_sigma: bool
    in_channels: int
    sample_size: tuple[int, int]

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> DenoiserOutput: ...


class UNet2DDenoiser:
    """Adapter for a diffusers ``UNet2DModel`` predicting epsilon.

    Args:
        unet: the network (called as ``unet(x, t).sample``).
        learn_sigma: the network outputs ``2 C`` channels, ``eps`` then ``v`` (guided-diffusion's
            layout); False (the MNIST prior): ``C`` channels, ``eps`` only, fixed variance.
    """

    def __init__(self, unet: torch.nn.Module, *, learn_sigma: bool = False):
        self.unet = unet
        self.learn_sigma = learn_sigma
        config = unet.config
        out_channels = int(getattr(config, "out_channels", config.in_channels))
        self.in_channels = int(config.in_channels)
        expected = 2 * self.in_channels if learn_sigma else self.in_channels
        if out_channels != expected:
            raise InputError(f"learn_sigma={learn_sigma} needs a UNet with {expected} output channels, "
                             f"this one has {out_channels}")
        size = config.sample_size
        self.sample_size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> DenoiserOutput:
        """``x``: ``[B, C, H, W]`` model space; ``t``: long ``[B]``. Returns eps (and v)."""
        out = self.unet(x, t).sample
        if not self.learn_sigma:
            return DenoiserOutput(out)
        eps, v = out.split(self.in_channels, dim=1)
        return DenoiserOutput(eps, v)

    def to(self, device: torch.device | str) -> "UNet2DDenoiser":
        """Move the network to ``device``; returns ``self``."""
        self.unet.to(device)
        return self

    @property
    def device(self) -> torch.device:
        """The device of the network's parameters."""
        return next(self.unet.parameters()).device


# ---------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class NoiseSchedule:
    """The model's training noise schedule.

    Attributes:
        betas: float32 ``[T]``, the forward-process variances ``beta_t`` (DDPM Eq. 2).
        alphas_cumprod: float32 ``[T]``, ``alpha-bar_t = prod_{s <= t} (1 - beta_s)`` (DDPM Eq. 4).
    """

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor

    @classmethod
    def from_scheduler(cls, scheduler: Any) -> "NoiseSchedule":
        """From a diffusers scheduler instance (``DDPMScheduler``, ``RePaintScheduler``: anything
        with ``betas`` and ``alphas_cumprod``); the tensors are taken as diffusers computed them
        (float32), so the numbers agree with diffusers' own steps."""
        return cls(scheduler.betas.detach().to(torch.float32).cpu(),
                   scheduler.alphas_cumprod.detach().to(torch.float32).cpu())

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "NoiseSchedule":
        """From a ``DDPMScheduler`` config (``scheduler_config.json`` as a dict)."""
        from diffusers import DDPMScheduler

        return cls.from_scheduler(DDPMScheduler.from_config(config))

    @property
    def num_train_timesteps(self) -> int:
        """``T``."""
        return int(self.alphas_cumprod.shape[0])


class Respacing:
    """The respacing table: ``t_T`` respaced indices over the ``T`` training steps.

    Index ``i`` in ``[0, t_T)`` is training timestep ``i * (T // t_T)``; index ``-1`` is
    ``x_0`` (``alpha-bar = 1``). A reverse step between consecutive kept indices uses the
    respaced ``beta'_t = 1 - alpha-bar_t / alpha-bar_prev`` (IDDPM Sec. 4), as diffusers'
    ``DDPMScheduler.step`` with ``"leading"`` spacing does.

    Args:
        schedule: the model's :class:`NoiseSchedule`.
        num_steps: ``t_T``, an int in ``[1, T]``.
    """

    def __init__(self, schedule: NoiseSchedule, num_steps: int):
        total = schedule.num_train_timesteps
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= total:
            raise InputError(f"num_steps must be an int in [1, {total}], got {num_steps!r}")
        self.schedule = schedule
        self.num_steps = num_steps
        self.stride = total // num_steps

    def timestep(self, index: int) -> int:
        """Training timestep of respaced ``index`` (``>= 0``)."""
        return index * self.stride

    def alpha_bar(self, index: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """0-dim float32 ``alpha-bar`` of respaced ``index``; 1 for ``index = -1`` (``x_0``)."""
        if index < 0:
            return torch.ones((), device=device)
        return self.schedule.alphas_cumprod[index * self.stride].to(device)


def plain_schedule(num_steps: int) -> list[int]:
    """Plain descent ``[t_T - 1, ..., 0, -1]``: one reverse step per respaced index."""
    return list(range(num_steps - 1, -2, -1))


def repaint_schedule(t_T: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """The resampling schedule of RePaint (Lugmayr et al. 2022, Sec. 4.2 and Alg. 1).

    Starting at respaced index ``t_T - 1`` the chain walks down one index at a time; on
    reaching a multiple of ``jump_length`` below ``t_T - jump_length`` it jumps back up
    ``jump_length`` indices (one forward-diffusion step each) and walks down again, and this
    is done ``jump_n_sample - 1`` times per such point (the paper's ``j`` and ``r``;
    ``r = 1`` is :func:`plain_schedule`, no resampling).

    Args:
        t_T: number of respaced diffusion steps (>= 1).
        jump_length: ``j`` (>= 1).
        jump_n_sample: ``r`` (>= 1).

    Returns:
        The visited indices, first the start state ``t_T - 1``, last ``-1`` (the clean image).
        A step from ``a`` to ``b < a`` is one network evaluation (denoising), a step to
        ``b > a`` is forward noising. The number of denoising steps is
        ``t_T + (r - 1) * j * len(range(0, t_T - j, j))``.

    >>> repaint_schedule(4, 2, 2)
    [3, 2, 1, 0, 1, 2, 1, 0, -1]
    """
    if t_T < 1 or jump_length < 1 or jump_n_sample < 1:
        raise InputError(
            f"t_T, jump_length and jump_n_sample must be >= 1, got {t_T}, {jump_length}, {jump_n_sample}"
        )
    jumps = {point: jump_n_sample - 1 for point in range(0, t_T - jump_length, jump_length)}
    t = t_T - 1
    visited = [t]
    while t >= 0:
        t -= 1
        visited.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                visited.append(t)
    return visited


def sdedit_schedule(schedule: Sequence[int], num_steps: int, strength: float) -> list[int]:
    """SDEdit start (Meng et al. 2022): the suffix of ``schedule`` from respaced index
    ``max(round(strength * t_T) - 1, 0)``; the loop then starts from the input noised to that
    index instead of pure noise.

    Args:
        schedule: a schedule over ``num_steps`` indices (:func:`repaint_schedule`...).
        num_steps: ``t_T``.
        strength: in ``(0, 1]``; 1 returns ``schedule`` unchanged.
    """
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength must lie in (0, 1], got {strength}")
    if strength == 1.0:
        return list(schedule)
    start = max(round(strength * num_steps) - 1, 0)
    return list(schedule[list(schedule).index(start):])


def schedule_nfe(schedule: Sequence[int]) -> int:
    """Network evaluations of a schedule (its downward steps)."""
    return sum(1 for a, b in zip(schedule[:-1], schedule[1:]) if b < a)


# ---------------------------------------------------------------------------- the three moves


def q_sample(x0: torch.Tensor, alpha_bar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Forward noising ``q(x_t | x_0) = N(sqrt(a) x_0, (1 - a) I)``, ``a = alpha-bar_t`` (DDPM Eq. 4).

    Args:
        x0: ``[B, C, H, W]`` model space.
        alpha_bar: 0-dim (or broadcastable) ``alpha-bar_t`` in ``(0, 1]``.
        noise: ``N(0, I)`` draws shaped like ``x0``.
    """
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def forward_jump(x_a: torch.Tensor, alpha_bar_a: torch.Tensor, alpha_bar_b: torch.Tensor,
                 noise: torch.Tensor) -> torch.Tensor:
    """Forward jump ``q(x_b | x_a)`` for ``b > a``: the forward process composed over the
    training steps between them, ``N(sqrt(a_b / a_a) x_a, (1 - a_b / a_a) I)`` (RePaint Alg. 1
    line 13; it is :func:`q_sample` with the ratio of the two ``alpha-bar``).

    Args:
        x_a: ``[B, C, H, W]``, the state at level ``a`` (``alpha_bar_a = 1`` for ``x_0``).
        alpha_bar_a, alpha_bar_b: 0-dim ``alpha-bar`` of the two levels (``b`` noisier).
        noise: ``N(0, I)`` draws shaped like ``x_a``.
    """
    return q_sample(x_a, alpha_bar_b / alpha_bar_a, noise)


def reverse_step(x_t: torch.Tensor, out: DenoiserOutput, alpha_bar_t: torch.Tensor,
                 alpha_bar_prev: torch.Tensor, noise: torch.Tensor | None, *, eta: float = 1.0,
                 clip_denoised: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One reverse step ``x_t -> x_prev`` between two respaced levels.

    ``x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)`` (DDPM Eq. 15, DDIM Eq. 9), optionally
    clipped to ``[-1, 1]``. With ``beta'_t = 1 - a_t / a_prev`` and the posterior variance
    ``beta~_t = (1 - a_prev) / (1 - a_t) beta'_t`` (DDPM Eq. 7):

    * fixed variance (``out.v`` is None, or ``eta < 1``): DDIM's generalised step (DDIM
      Eq. 12 and 16) with ``sigma = eta sqrt(beta~_t)``:
      ``x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma z``.
      ``eta = 1`` is DDPM's ancestral step with the fixed-small variance; its mean equals the
      posterior mean of DDPM Eq. 7 whenever ``x0_hat`` is not clipped (it keeps the network's
      ``eps`` as diffusers' ``RePaintScheduler`` does; diffusers' ``DDPMScheduler`` uses the
      posterior mean of the clipped ``x0_hat`` instead). ``eta = 0`` is deterministic DDIM.
    * learned variance (``out.v`` given and ``eta = 1``): the posterior mean of DDPM Eq. 7
      from the clipped ``x0_hat`` and ``log Sigma = frac log beta'_t + (1 - frac) log beta~_t``
      with ``frac = (v + 1) / 2`` (IDDPM Eq. 15, guided-diffusion's convention).

    Args:
        x_t: ``[B, C, H, W]`` model space.
        out: the denoiser's output at ``x_t``.
        alpha_bar_t, alpha_bar_prev: 0-dim ``alpha-bar`` of the current and the next (less
            noisy) level; ``alpha_bar_prev = 1`` is the last step (to ``x_0``: no noise).
        noise: ``z ~ N(0, I)`` shaped like ``x_t`` (ignored on the last step); None: no noise.
        eta: DDIM's eta in ``[0, 1]``.
        clip_denoised: clip ``x0_hat`` to ``[-1, 1]``.

    Returns:
        ``(x_prev, x0_hat)``, both ``[B, C, H, W]``.
    """
    a_t, a_prev = alpha_bar_t, alpha_bar_prev
    eps = out.eps
    x0_hat = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    if clip_denoised:
        x0_hat = x0_hat.clamp(-1, 1)
    last = bool(a_prev >= 1)
    beta = 1 - a_t / a_prev
    posterior_var = (1 - a_prev) / (1 - a_t) * beta
    if out.v is not None and eta == 1.0:
        # DDPM Eq. 7: mu~ = sqrt(a_prev) beta' / (1 - a_t) x0 + sqrt(1 - beta') (1 - a_prev) / (1 - a_t) x_t
        mean = (a_prev.sqrt() * beta / (1 - a_t)) * x0_hat + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)) * x_t
        if last or noise is None:  # beta~ = 0 at the last step: log would be -inf, and no noise is added
            return mean, x0_hat
        frac = (out.v + 1) / 2
        log_var = frac * beta.log() + (1 - frac) * posterior_var.log()
        return mean + (0.5 * log_var).exp() * noise, x0_hat
    sigma = eta * posterior_var.sqrt()
    x_prev = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp_min(0).sqrt() * eps
    if not last and eta > 0 and noise is not None:
        x_prev = x_prev + sigma * noise
    return x_prev, x0_hat


# ---------------------------------------------------------------------------- conditioning


def check_down_n(down_n: int, size: tuple[int, int] | torch.Size | None = None) -> None:
    """Raise :class:`InputError` unless ``down_n`` is a power of two (1, 2, 4, ...) dividing
    both sides of ``size`` (``(H, W)``) when given (ILVR's factors; MNIST's 28 allows 1, 2, 4)."""
    if isinstance(down_n, bool) or not isinstance(down_n, int) or down_n < 1 or down_n & (down_n - 1):
        raise InputError(f"down_n must be a power of two (1, 2, 4, ...), got {down_n!r}")
    if size is not None and (size[0] % down_n or size[1] % down_n):
        raise InputError(f"down_n={down_n} must divide the image size {tuple(size)} "
                         "(phi_N averages N x N cells)")


def lowpass(x: torch.Tensor, down_n: int) -> torch.Tensor:
    """ILVR's low-pass filter ``phi_N``: ``N x N`` cell means, upsampled back by repetition.

    The paper uses a bicubic resizer; the cell mean makes ``phi_N`` the orthogonal projection
    onto ``N x N`` block-constant images, so ``phi_N(phi_N(x)) = phi_N(x)`` and the ILVR update
    gives ``phi_N(x_{t-1}) = phi_N(y_{t-1})`` exactly, which is what ILVR's argument needs.

    Args:
        x: ``[B, C, H, W]`` with ``H`` and ``W`` divisible by ``down_n``.
        down_n: ``N``; 1 returns ``x`` itself.

    Returns:
        ``[B, C, H, W]``, constant on each ``N x N`` cell.
    """
    check_down_n(down_n, x.shape[-2:])
    if down_n == 1:
        return x
    return F.interpolate(F.avg_pool2d(x, down_n), scale_factor=down_n, mode="nearest")


def ilvr_update(proposal: torch.Tensor, reference: torch.Tensor, down_n: int, kind: str = "mean") -> torch.Tensor:
    """ILVR's refinement (Choi et al. 2021, Alg. 1 line 6): ``phi_N(reference) + proposal - phi_N(proposal)``.

    Args:
        proposal: the unconditional sample ``x'_{t-1}``, ``[B, C, H, W]`` (model space).
        reference: the noised target ``y_{t-1}``, same shape.
        down_n: ``N`` of :func:`lowpass`.
        kind: ``"mean"``: :func:`lowpass` (cell means); ``"bicubic"``: the paper code's bicubic
            down-then-up resize (:func:`inpaintbench.methods.diffusion.bicubic.lowpass_bicubic`).

    Returns:
        ``x_{t-1}``, same shape. With ``down_n = 1`` it is ``reference`` exactly: replacement.
    """
    if down_n == 1:
        return reference
    if kind == "bicubic":
        from inpaintbench.methods.diffusion.bicubic import lowpass_bicubic as phi
    elif kind == "mean":
        phi = lowpass
    else:
        raise InputError(f"lowpass must be 'mean' or 'bicubic', got {kind!r}")
    return phi(reference, down_n) + (proposal - phi(proposal, down_n))


@dataclass
class Guidance:
    """The conditioning hook applied after every reverse step ``x_t -> x'_{t-1}``.

    ``y_{t-1} ~ q(y_{t-1} | y)`` (the reference noised to the new level; ``y`` itself at the
    last step) is combined with the proposal in the holes, ``target = where(hole, x', y_{t-1})``,
    and ``x_{t-1} = phi_N(target) + x' - phi_N(x')`` (:func:`ilvr_update`).

    * ``down_n = 1``: ``x_{t-1} = target``: the known region is *replaced* by the noised
      input (RePaint Eq. 8, ddpm-paste). The reference's noise is then the step's own draw
      ``z``: the two regions are disjoint pixel sets, so they stay independent, as RePaint's
      two draws (this is also what diffusers' ``RePaintScheduler`` does).
    * ``down_n > 1``: ILVR: only the ``N x N`` cell means of the target are imposed; the
      reference gets a fresh draw (a cell mixes both regions, so sharing ``z`` would correlate
      the proposal's and the reference's noise).

    Attributes:
        reference: ``y``, ``[B, C, H, W]`` model space (values in holes are never used when a
            hole mask is given).
        hole: bool ``[B, 1, H, W]``, True = unknown pixel of ``y`` (known or predicted mask);
            None: the whole reference conditions (blind ILVR, super-resolution).
        down_n: ``N`` of ``phi_N``.
        stop: steps from respaced index ``cur >= stop`` are conditioned; the last ``stop``
            steps run unconditioned (ILVR's ``range_t``).
        lowpass: ``phi_N`` of :func:`ilvr_update`: ``"mean"`` (cell means) or ``"bicubic"``
            (ILVR's released code).
        reference_level: ``"next"``: ``y`` is noised to the level the step lands on (``y_{t-1}``,
            ILVR Alg. 1; ``y`` itself on the last step); ``"current"``: to the level the step
            starts from, as ILVR's released code does (``q_sample(ref_img, t)``).
        timing: ``"after"`` (the paper, diffusers): condition each reverse step's result, as
            above. ``"before"`` (RePaint's released ``p_sample_loop_progressive``, needs a hole
            mask and ``down_n = 1``): replace the known region by ``y`` noised to the *current*
            level, with a fresh draw, just before each model call but the chain's first; the
            jumped known pixels are thus overwritten and the final sample is left as the model
            made it (the harness composites the input back).
    """

    reference: torch.Tensor
    hole: torch.Tensor | None = None
    down_n: int = 1
    stop: int = 0
    lowpass: str = "mean"
    reference_level: str = "next"
    timing: str = "after"

    def __post_init__(self) -> None:
        check_down_n(self.down_n, self.reference.shape[-2:])
        if self.lowpass not in ("mean", "bicubic"):
            raise InputError(f"lowpass must be 'mean' or 'bicubic', got {self.lowpass!r}")
        if self.reference_level not in ("next", "current"):
            raise InputError(f"reference_level must be 'next' or 'current', got {self.reference_level!r}")
        if self.timing not in ("after", "before"):
            raise InputError(f"timing must be 'after' or 'before', got {self.timing!r}")
        if self.timing == "before" and (self.hole is None or self.down_n != 1):
            raise InputError("timing='before' (RePaint's released order) needs a hole mask and down_n = 1")


class StepRecord(NamedTuple):
    """What :func:`sample` passes to its optional ``callback`` after each reverse step
    (for inspection in tests; NFE is returned by the loop itself).

    Attributes:
        cur, nxt: respaced indices of the step (``nxt < cur``).
        timestep: the training timestep the denoiser was called with.
        proposal: ``x'_{nxt}``, the unconditioned reverse step.
        target: the conditioning target (see :class:`Guidance`); None when unconditioned.
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
           guidance: Guidance | None = None, eta: float = 1.0, clip_denoised: bool = True,
           callback: Callable[[StepRecord], None] | None = None) -> SampleResult:
    """The one sampler loop: walk ``schedule`` with :func:`reverse_step` (downward moves) and
    :func:`forward_jump` (upward moves), conditioning each reverse step with ``guidance``.

    Args:
        denoiser: ``(x_t, t) -> DenoiserOutput``.
        respacing: the respacing table of the schedule's indices.
        schedule: respaced indices, first the start level, last ``-1`` (:func:`plain_schedule`,
            :func:`repaint_schedule`, possibly cut by :func:`sdedit_schedule`).
        rng: one generator per image; draws, each ``rng.randn_like(x)``, in this order: the
            start (pure noise, or the noise of ``start``), then per reverse step ``z`` (always,
            even on the last step) and, for ``down_n > 1`` guidance landing on ``nxt >= 0``,
            the reference's noise; per forward jump one draw.
        shape: ``[B, C, H, W]`` of pure-noise starts (default: the reference's shape).
        start: ``[B, C, H, W]`` model-space image noised to ``schedule[0]`` by :func:`q_sample`
            as the start state (SDEdit); None: pure noise.
        guidance: the conditioning hook; None: unconditional.
        eta: DDIM eta of :func:`reverse_step` (1 = DDPM ancestral sampling).
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
            if guidance is None:
                raise InputError("sample() needs shape, start or guidance to know the image shape")
            shape = guidance.reference.shape
        x = rng.randn(*shape[1:])
        if x.shape[0] != shape[0]:
            raise InputError(f"batch of {shape[0]} images but {len(rng)} per-sample generators")
    device = x.device
    nfe = 0
    for cur, nxt in zip(schedule[:-1], schedule[1:]):
        a_cur, a_nxt = respacing.alpha_bar(cur, device), respacing.alpha_bar(nxt, device)
        if nxt > cur:
            x = forward_jump(x, a_cur, a_nxt, rng.randn_like(x))
            continue
        z = rng.randn_like(x)  # drawn before the model call: the call draws nothing, so the order is free
        if guidance is not None and guidance.timing == "before" and nfe > 0 and cur >= guidance.stop:
            x = torch.where(guidance.hole, x, q_sample(guidance.reference, a_cur, rng.randn_like(x)))
        t = respacing.timestep(cur)
        out = denoiser(x, torch.full((x.shape[0],), t, device=device, dtype=torch.long))
        nfe += 1
        proposal, _ = reverse_step(x, out, a_cur, a_nxt, z, eta=eta, clip_denoised=clip_denoised)
        target = None
        if guidance is not None and guidance.timing == "after" and cur >= guidance.stop:
            y = guidance.reference
            if nxt < 0 and guidance.reference_level == "next":
                noised = y
            else:
                level = a_cur if guidance.reference_level == "current" else a_nxt
                noised = q_sample(y, level, z if guidance.down_n == 1 else rng.randn_like(x))
            target = noised if guidance.hole is None else torch.where(guidance.hole, proposal, noised)
            x = ilvr_update(proposal, target, guidance.down_n, guidance.lowpass)
        else:
            x = proposal
        if callback is not None:
            callback(StepRecord(cur, nxt, t, proposal, target, x))
    return SampleResult(x, nfe)


# ---------------------------------------------------------------------------- a loaded prior


class DiffusionPrior:
    """A denoiser with its training schedule and where it was read from.

    Args:
        denoiser: the network adapter.
        schedule: its training :class:`NoiseSchedule`.
        files: the weight folders it was read from (``Method.loaded_files``).
    """

    def __init__(self, denoiser: UNet2DDenoiser, schedule: NoiseSchedule, files: Sequence[str] = ()):
        self.denoiser, self.schedule, self.files = denoiser, schedule, list(files)

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None, *, learn_sigma: bool = False) -> "DiffusionPrior":
        """Load a diffusers ``UNet2DModel`` folder or hub id (None: the committed MNIST prior)
        with :func:`inpaintbench.methods.diffusion.ddpm.load_ddpm`.

        Raises:
            MethodUnavailable: the weights are missing (the message says how to create them).
        """
        from inpaintbench.methods.diffusion.ddpm import MNIST_WEIGHTS, load_ddpm

        source = resolve_weights(weights, MNIST_WEIGHTS)
        unet, scheduler = load_ddpm(source)
        folder = Path(source).expanduser()
        files = [str(folder)] if folder.is_dir() else []  # hub ids: the cache path is not known here
        return cls(UNet2DDenoiser(unet, learn_sigma=learn_sigma), NoiseSchedule.from_scheduler(scheduler), files)

    @classmethod
    def from_pair(cls, unet: torch.nn.Module, scheduler: Any, *, learn_sigma: bool = False) -> "DiffusionPrior":
        """From an already loaded ``(UNet2DModel, DDPMScheduler)`` pair (tests, shared models)."""
        unet.eval().requires_grad_(False)
        return cls(UNet2DDenoiser(unet, learn_sigma=learn_sigma), NoiseSchedule.from_scheduler(scheduler))

    @property
    def device(self) -> torch.device:
        """The network's device."""
        return self.denoiser.device

    def to(self, device: torch.device | str) -> "DiffusionPrior":
        """Move the network to ``device``; returns ``self``."""
        self.denoiser.to(device)
        return self

    def check_input(self, image: torch.Tensor, who: str = "this DDPM prior") -> None:
        """Raise :class:`InputError` unless ``image`` is a valid float32 ``[B, C, H, W]`` batch in
        ``[0, 1]`` of the size and channels the prior models."""
        check_image_batch(image)
        c, (h, w) = self.denoiser.in_channels, self.denoiser.sample_size
        if image.shape[1] != c or tuple(image.shape[-2:]) != (h, w):
            raise InputError(f"{who} models {c}x{h}x{w} images (shape [B, {c}, {h}, {w}]), got "
                             f"{list(image.shape)}; pass weights= of a prior trained at that size")

