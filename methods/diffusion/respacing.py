"""Respacing tables: which training timestep and which ``alpha-bar`` each respaced index of a
sampler stands for.

* :class:`NoiseSchedule`: the model's training ``betas`` / ``alphas_cumprod`` (``T`` steps);
* :class:`Respacing`: the core's table, index ``i`` in ``[0, t_T)`` is training timestep
  ``i * (T // t_T)`` (diffusers' ``"leading"`` spacing and its ``RePaintScheduler``), index
  ``-1`` is the clean image ``x_0``;
* :class:`TableRespacing`: any ascending list of training timesteps (the x0-space solvers'
  released samplers: DDNM's and DDRM's ``i * (T // t_T)`` on every prior, DiffPIR's
  ``quad`` / ``uniform`` sequences), over the ``alpha-bar`` table of another respacing;
* :func:`beta_schedule`, :func:`space_timesteps`, :class:`SpacedRespacing`: guided-diffusion's
  named beta schedules and ``SpacedDiffusion``'s table (``0, 4, ..., 999`` for 250 of 1000
  steps), used for ADM checkpoints so the network sees the training timesteps the official
  samplers give it.

References: DDPM (Ho et al. 2020) Eq. 2 and 4; IDDPM (Nichol & Dhariwal 2021) Sec. 4 and Eq. 17.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from inpaintbench.core.errors import InputError

__all__ = ["NoiseSchedule", "Respacing", "SpacedRespacing", "TableRespacing", "beta_schedule", "leading_timesteps",
           "space_timesteps"]


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


def beta_schedule(name: str, steps: int) -> torch.Tensor:
    """guided-diffusion's named beta schedules, float64 ``[steps]``.

    ``"linear"``: DDPM's ``beta`` from ``1e-4`` to ``0.02`` (both scaled by ``1000 / steps`` so
    any ``T`` spans the same range); ``"cosine"``: IDDPM Eq. 17 with ``s = 0.008``, each beta
    clipped at 0.999.
    """
    if name == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
    if name == "cosine":
        def f(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - f((i + 1) / steps) / f(i / steps), 0.999) for i in range(steps)],
                            dtype=torch.float64)
    raise InputError(f"unknown noise_schedule {name!r} (linear, cosine)")


def space_timesteps(num_timesteps: int, section_counts: str | int | Sequence[int]) -> list[int]:
    """The training timesteps a respaced guided-diffusion model keeps, ascending.

    ``section_counts`` ``"250"`` (or ``[250]``): the ``T`` steps split into one section of
    which ``250`` evenly spaced steps are kept, ``round(i * (T - 1) / 249)`` (both ends
    included: ``0, 4, 8, ..., 999`` for ``T = 1000``; Python rounds halves to even, as the
    official code does). A list ``"10,15,20"`` splits ``T`` into equal sections (the first
    ``T % n`` one step longer) with that many steps each; ``"ddimN"``: the integer stride giving
    exactly ``N`` steps from 0.

    Raises:
        InputError: a section asks for more steps than it has, or no stride gives ``ddimN``.
    """
    if isinstance(section_counts, int):
        counts = [section_counts]
    elif isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            wanted = int(section_counts[4:])
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == wanted:
                    return list(range(0, num_timesteps, stride))
            raise InputError(f"no integer stride gives {wanted} of {num_timesteps} steps")
        counts = [int(c) for c in section_counts.split(",")]
    else:
        counts = [int(c) for c in section_counts]
    per, extra = divmod(num_timesteps, len(counts))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(counts):
        size = per + (1 if i < extra else 0)
        if size < count:
            raise InputError(f"cannot take {count} steps from a section of {size}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        kept.extend(start + round(j * stride) for j in range(count))
        start += size
    return sorted(set(kept))


class SpacedRespacing(Respacing):
    """guided-diffusion's respacing (``SpacedDiffusion``): respaced index ``i`` is the ``i``-th
    kept training timestep of :func:`space_timesteps`, and the network is called with that
    *training* timestep (``rescale_timesteps=False``: the official ``_WrappedModel`` maps the
    index through ``timestep_map``).

    The core's :class:`Respacing` keeps ``i * (T // t_T)``
    instead (diffusers' ``"leading"`` spacing, ``0, 4, ..., 996`` for ``t_T = 250``; this one
    gives ``0, 4, ..., 999``). ``alpha_bar`` is returned as a float64 0-dim tensor computed
    from float64 betas, as guided-diffusion computes its coefficients in float64 numpy: the
    core's steps then form their coefficients in float64 and multiply them into float32
    images, like ``_extract_into_tensor`` (CPU and CUDA; not MPS, which has no float64).

    Args:
        betas: float64 ``[T]`` training betas (:func:`beta_schedule`).
        section_counts: ``t_T`` as an int, or guided-diffusion's ``timestep_respacing`` string.
    """

    def __init__(self, betas: torch.Tensor, section_counts: int | str):
        betas = betas.to(torch.float64)
        self.alphas_cumprod64 = torch.cumprod(1 - betas, dim=0)
        schedule = NoiseSchedule(betas.float(), self.alphas_cumprod64.float())
        kept = space_timesteps(len(betas), section_counts)
        super().__init__(schedule, len(kept))
        self.kept = kept
        self.section_counts = section_counts

    def timestep(self, index: int) -> int:
        """The training timestep of respaced ``index`` (``>= 0``)."""
        return self.kept[index]

    def alpha_bar(self, index: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """0-dim float64 ``alpha-bar`` of respaced ``index``; 1 for ``index = -1`` (``x_0``)."""
        if index < 0:
            return torch.ones((), dtype=torch.float64, device=device)
        return self.alphas_cumprod64[self.kept[index]].to(device)


def leading_timesteps(num_train_timesteps: int, num_steps: int) -> list[int]:
    """``[i * (T // t_T) for i < t_T]``: the core's spacing (:class:`Respacing`), which is also
    DDNM's (``skip = T // T_sampling``) and DDRM's (``range(0, T, skip)`` when ``t_T`` divides ``T``)."""
    stride = num_train_timesteps // num_steps
    return [i * stride for i in range(num_steps)]


class TableRespacing(Respacing):
    """Respaced index ``i`` is training timestep ``timesteps[i]``, a strictly ascending list in
    ``[0, T)``; ``alpha-bar`` values come from the table of the respacing it is built from
    (:meth:`like`): float32 for the core's :class:`Respacing`, float64 for guided-diffusion's
    :class:`SpacedRespacing`, so a solver's own timesteps keep the precision of its prior.

    Args:
        schedule: the model's :class:`NoiseSchedule`.
        timesteps: the kept training timesteps, ascending.
        alphas_cumprod: ``[T]`` table ``alpha_bar`` reads (default: ``schedule.alphas_cumprod``).

    Raises:
        InputError: ``timesteps`` empty, not strictly ascending or outside ``[0, T)``.
    """

    def __init__(self, schedule: NoiseSchedule, timesteps: Sequence[int], alphas_cumprod: torch.Tensor | None = None):
        kept = [int(t) for t in timesteps]
        total = schedule.num_train_timesteps
        if not kept or any(b <= a for a, b in zip(kept, kept[1:])) or kept[0] < 0 or kept[-1] >= total:
            raise InputError(f"timesteps must be strictly ascending in [0, {total}), got {kept[:4]}...{kept[-2:]} "
                             f"({len(kept)} steps)")
        super().__init__(schedule, len(kept))
        self.kept = kept
        self.table = schedule.alphas_cumprod if alphas_cumprod is None else alphas_cumprod

    @classmethod
    def like(cls, respacing: Respacing, timesteps: Sequence[int]) -> "TableRespacing":
        """``timesteps`` over ``respacing``'s prior, with its ``alpha-bar`` precision."""
        table = getattr(respacing, "alphas_cumprod64", None)
        return cls(respacing.schedule, timesteps, table)

    def timestep(self, index: int) -> int:
        """The training timestep of respaced ``index`` (``>= 0``)."""
        return self.kept[index]

    def alpha_bar(self, index: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """0-dim ``alpha-bar`` of respaced ``index`` in the table's dtype; 1 for ``index = -1``."""
        if index < 0:
            return torch.ones((), dtype=self.table.dtype, device=device)
        return self.table[self.kept[index]].to(device)
