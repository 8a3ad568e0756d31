"""What the gradient-based training-free solvers (DPS, PiGDM, RED-diff) share on top of
:class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`: option checks, the inpainting
hook (the measurement ``y = A x`` of :mod:`~inpaintbench.methods.diffusion.measurement`, the
core's loop with the solver's strategy, the known pixels pasted back) and the counters
``nfe`` (network evaluations per image) and ``vjp`` (vector-Jacobian products through the
denoiser per image), counted apart because a VJP costs about two network evaluations of time
and keeps the network's activations in memory.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import check_mask_batch
from inpaintbench.core.method import Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.base import DiffusionMethod
from inpaintbench.methods.diffusion.conditioning import Conditioning
from inpaintbench.methods.diffusion.schedules import plain_schedule

__all__ = ["INITS", "MeasurementSolver", "check_choice", "check_flag", "check_number"]

#: Values of the ``init=`` option: ``"noise"`` (``x_T ~ N(0, I)``, the DPS paper) or ``"pinv"``
#: (``A^+ y`` noised to the first level, the start of RED-diff's code for its PiGDM and DPS).
INITS = ("noise", "pinv")


def check_number(name: str, value: Any, *, low: float, high: float = float("inf"),
                 low_open: bool = False) -> float:
    """``value`` as a float if it is a real number in ``[low, high]`` (``(low, high]`` with
    ``low_open``), else :class:`InputError` naming ``name``."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high and value != float("inf")
    if not ok:
        bracket = "(" if low_open else "["
        top = "inf)" if high == float("inf") else f"{high}]"
        raise InputError(f"{name} must be a finite number in {bracket}{low}, {top}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else :class:`InputError` naming ``name``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool, else :class:`InputError` naming ``name``."""
    if not isinstance(value, bool):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return value


class MeasurementSolver(DiffusionMethod):
    """A training-free solver of inpainting as the linear inverse problem ``y = A x``.

    The subclass sets its options through ``super().__init__`` (all enter the config), sets
    :attr:`eta`, :attr:`clip_denoised`, :attr:`sdedit_start` and returns its strategy from
    :meth:`make_strategy`. The schedule is the plain descent over ``num_steps`` respaced
    levels (one network evaluation each).

    Args:
        num_steps: respaced reverse steps (= NFE per image).
        batch_size: images per chain (memory of the VJP grows with it); None: the whole batch.
        **options: those of :class:`DiffusionMethod` (``weights``/``model``, ``adm``, ``prior``)
            and of the subclass.
    """

    preserves_known: ClassVar[bool] = True
    input_label = "this solver's prior"

    def __init__(self, *, num_steps: int, batch_size: int | None = None, **options: Any):
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise InputError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
        super().__init__(num_steps=num_steps, batch_size=batch_size, **options)
        self.schedule = plain_schedule(num_steps)
        #: The strategy of the last chunk sampled (its ``vjps`` counter gives the stats).
        self.last_strategy: Conditioning | None = None

    def make_strategy(self, reference: torch.Tensor, hole: torch.Tensor) -> Conditioning:
        """The solver's strategy for one chunk: ``reference`` ``A^+ y`` in model space
        ``[B, C, H, W]`` (0 in the holes), ``hole`` bool ``[B, 1, H, W]``."""
        raise NotImplementedError

    def conditioning(self, reference: torch.Tensor, hole: torch.Tensor | None, **options: Any) -> Conditioning:
        """:meth:`make_strategy`, remembered in :attr:`last_strategy`."""
        assert hole is not None  # inpaint() always passes the mask
        self.last_strategy = self.make_strategy(reference, hole)
        return self.last_strategy

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *, rng: SampleRNG) -> Restoration:
        """Inpaint ``image`` (float32 ``[B, C, H, W]`` in ``[0, 1]``, holes zero-filled) where
        ``mask`` (bool ``[B, 1, H, W]``, True = hole) says.

        The chain sees ``A^+ y``: the known pixels, and model-space 0 (0.5 in ``[0, 1]``) in the
        holes, so nothing of the holes' values is read. Returns a :class:`Restoration`:
        float32 ``[B, C, H, W]`` in ``[0, 1]`` equal to ``image`` on known pixels, and
        ``{"nfe": network evaluations per image, "vjp": VJPs through the denoiser per image}``.
        """
        self.check_input(image)
        if mask is None:
            raise InputError(f"{self.name} needs the hole mask (it is not a blind method)")
        check_mask_batch(mask, image)
        image, mask = image.to(self.device), mask.to(self.device)
        pinv = image.masked_fill(mask, 0.5)  # model space 0 in the holes: A^+ y
        result = self.sample_chain(pinv, mask, rng=rng)
        vjps = float(getattr(self.last_strategy, "vjps", 0))
        return Restoration(torch.where(mask, result.image, image), {**result.stats, "vjp": vjps})
