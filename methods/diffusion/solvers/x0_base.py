"""What the x0-space training-free solvers (DDNM, DDNM+, DDRM, DiffPIR) share as methods: the
inpainting hook, the measurement they condition on, their option checks and the timesteps of
their released samplers.

Each solver is one conditioning strategy on the one loop
(:func:`~inpaintbench.methods.diffusion.core.sample`): it corrects ``x0_hat`` in ``update_x0``
and takes its own step to ``x_{t-1}`` in ``after_step`` (the released codes all use the DDIM
form with the fresh-noise share ``eta sqrt(1 - a_prev)``,
:func:`~inpaintbench.methods.diffusion.steps.renoise_step`, not the loop's ``posterior_step``:
the loop's unconditional proposal is computed with ``eta = 0`` and not used). A solver's
method is a thin :class:`X0Solver` subclass: its strategy (``conditioning``), its timesteps and
its options.

Learned variance (ADM checkpoints with ``learn_sigma``): DDNM, DDRM and DiffPIR all drop the
variance channels (``et[:, :3]``; DiffPIR reads only ``pred_xstart``), so the strategies never
read ``Prediction.v``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import check_mask_batch
from inpaintbench.core.method import Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.base import DiffusionMethod
from inpaintbench.methods.diffusion.respacing import TableRespacing, leading_timesteps

__all__ = ["X0Solver", "check_unit_interval"]


def check_unit_interval(name: str, value: float) -> float:
    """``value`` as a float if it is a number in ``[0, 1]``, else :class:`InputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class X0Solver(DiffusionMethod):
    """Base of the x0-space solvers: a known-mask inpainting method on the one loop.

    A subclass passes its options to ``__init__`` (they become its config), sets
    :attr:`schedule` (and, if its sampler has its own timesteps, :meth:`use_timesteps`) and
    returns its strategy from ``conditioning(reference, hole)``. The reference reaches the
    strategy in model space ``[-1, 1]`` with the input's hole values (the strategy measures it
    through :class:`~inpaintbench.methods.diffusion.measurement.InpaintingOperator`, which never
    reads them). The output is composited: the input on known pixels.
    """

    preserves_known: ClassVar[bool] = True
    #: The loop's own step is not used (see the module docstring): eta 0 keeps it cheap.
    eta: float = 0.0
    #: DDNM and DDRM do not clip ``x0_hat``; DiffPIR does (guided-diffusion's ``p_sample``).
    clip_denoised: bool = False

    def __init__(self, **options: Any):
        batch_size = options.get("batch_size")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise InputError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
        super().__init__(**options)
        # DDNM's ``i * skip`` and DDRM's ``range(0, T, skip)`` on every prior (also ADM ones,
        # whose default table is guided-diffusion's spacing).
        self.use_timesteps(leading_timesteps(self.respacing.schedule.num_train_timesteps, self.config["num_steps"]))

    def use_timesteps(self, timesteps: Sequence[int]) -> None:
        """Sample over these training timesteps (ascending; the ``alpha-bar`` precision of the prior)."""
        self.respacing = TableRespacing.like(self.respacing, timesteps)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *, rng: SampleRNG) -> Restoration:
        """Inpaint ``image`` (float32 ``[B, C, H, W]`` in ``[0, 1]``) where ``mask`` (bool
        ``[B, 1, H, W]``, True = hole) says; hole values are never read. Returns the composited
        float32 ``[B, C, H, W]`` in ``[0, 1]`` and ``{"nfe": network evaluations per image}``."""
        self.check_input(image)
        if mask is None:
            raise InputError(f"{self.name} needs the hole mask (a known-mask solver of y = A x)")
        check_mask_batch(mask, image)
        image, mask = image.to(self.device), mask.to(self.device)
        result = self.sample_chain(image, mask, rng=rng)
        return Restoration(torch.where(mask, result.image, image), result.stats)
