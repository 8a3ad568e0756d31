"""ILVR's low-pass filter ``phi_N`` (Choi et al., ICCV 2021), validated in one place.

:class:`LowPassFilter` is the filter a method configures (``down_n = N`` and its kind,
checked once when it is built); :func:`lowpass` is the cell-mean kind and
:func:`~inpaintbench.methods.diffusion.bicubic.lowpass_bicubic` the released code's bicubic
kind; :func:`ilvr_update` is ILVR's refinement ``phi_N(y) + x' - phi_N(x')``;
:func:`check_down_n` is the one rule for ``N`` (a power of two dividing the image size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InputError
from inpaintbench.methods.diffusion.bicubic import lowpass_bicubic

__all__ = ["LOWPASS_KINDS", "LowPassFilter", "check_down_n", "ilvr_update", "lowpass"]


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


#: ``phi_N`` kinds by name: ``"mean"`` (:func:`lowpass`, a projection) and ``"bicubic"``
#: (:func:`~inpaintbench.methods.diffusion.bicubic.lowpass_bicubic`, ILVR's released code).
LOWPASS_KINDS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {"mean": lowpass, "bicubic": lowpass_bicubic}


@dataclass(frozen=True)
class LowPassFilter:
    """``phi_N`` as a method configures it; the one place ``down_n`` and the kind are checked.

    Attributes:
        down_n: ``N``, a power of two (1 = the identity).
        kind: a name of :data:`LOWPASS_KINDS`.

    Call: ``phi(x)`` with ``x`` ``[B, C, H, W]`` (``H``, ``W`` divisible by ``N``) returns the
    filtered ``[B, C, H, W]``.

    Raises:
        InputError: a bad ``down_n`` or kind (at construction), an image size ``N`` does not
            divide (:meth:`check_size`, and at the call).
    """

    down_n: int
    kind: str = "mean"

    def __post_init__(self) -> None:
        check_down_n(self.down_n)
        if self.kind not in LOWPASS_KINDS:
            raise InputError(f"lowpass must be {' or '.join(repr(k) for k in LOWPASS_KINDS)}, got {self.kind!r}")

    def check_size(self, size: tuple[int, int] | torch.Size) -> None:
        """Raise :class:`InputError` unless ``N`` divides both sides of ``size`` (``(H, W)``)."""
        check_down_n(self.down_n, size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return LOWPASS_KINDS[self.kind](x, self.down_n)


def ilvr_update(proposal: torch.Tensor, reference: torch.Tensor, down_n: int, kind: str = "mean") -> torch.Tensor:
    """ILVR's refinement (Choi et al. 2021, Alg. 1 line 6): ``phi_N(reference) + proposal - phi_N(proposal)``.

    Args:
        proposal: the unconditional sample ``x'_{t-1}``, ``[B, C, H, W]`` (model space).
        reference: the noised target ``y_{t-1}``, same shape.
        down_n: ``N`` of :func:`lowpass`.
        kind: ``phi_N``'s name in :data:`LOWPASS_KINDS` (:class:`LowPassFilter`).

    Returns:
        ``x_{t-1}``, same shape. With ``down_n = 1`` it is ``reference`` exactly: replacement.
    """
    phi = LowPassFilter(down_n, kind)
    if down_n == 1:
        return reference
    return phi(reference) + (proposal - phi(proposal))
