"""The measurement a training-free diffusion solver conditions on: ``y = A x + sigma_y n``.

For inpainting the degradation ``A`` keeps the known pixels: with ``m = 1 - hole`` (per pixel,
broadcast over channels), ``A x = m * x`` seen as the full-size image with zeros in the holes.
Then ``A`` is a diagonal 0/1 projection, so ``A^T = A``, ``A A^T = A``, and the Moore-Penrose
pseudo-inverse is ``A^+ = A`` (DDNM Eq. 8 uses ``A^+ y``; DDRM's SVD of this ``A`` has ``U = V = I``
up to a permutation and singular values 1 on known pixels, 0 in the holes: its spectral space
is pixel space). Every solver of the suite reaches ``A`` through this one class, so "what is
measured" is written once.

All tensors are model space ``[B, C, H, W]`` (``[-1, 1]``), the hole bool ``[B, 1, H, W]``
(True = hole), as the rest of the diffusion family.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inpaintbench.core.errors import InputError

__all__ = ["InpaintingOperator", "check_sigma_y"]


def check_sigma_y(sigma_y: float) -> float:
    """``sigma_y`` as a float if it is a finite number >= 0 (model-space units, i.e. twice the
    noise standard deviation in ``[0, 1]`` image units), else :class:`InputError`."""
    if isinstance(sigma_y, bool) or not isinstance(sigma_y, (int, float)) or not sigma_y >= 0 \
            or sigma_y == float("inf"):
        raise InputError(f"sigma_y must be a finite number >= 0, got {sigma_y!r}")
    return float(sigma_y)


@dataclass(frozen=True, eq=False)
class InpaintingOperator:
    """``A x = m * x`` with ``m = 1`` on known pixels and ``0`` in the holes.

    Attributes:
        hole: bool ``[B, 1, H, W]``, True = hole.
    """

    hole: torch.Tensor

    def __post_init__(self) -> None:
        if self.hole.dtype != torch.bool or self.hole.ndim != 4 or self.hole.shape[1] != 1:
            raise InputError(f"the inpainting operator needs a bool [B, 1, H, W] hole mask, got "
                             f"{self.hole.dtype} {list(self.hole.shape)}")

    @property
    def known(self) -> torch.Tensor:
        """``m``: float ``[B, 1, H, W]``, 1 on known pixels, 0 in the holes."""
        return (~self.hole).to(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x``: ``x`` ``[B, C, H, W]`` with its holes zeroed."""
        return x * self.known.to(x.dtype)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``A^T y`` (equal to ``A y``: a diagonal projection is self-adjoint)."""
        return self.forward(y)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """``A^+ y`` (equal to ``A y`` for a 0/1 diagonal ``A``)."""
        return self.forward(y)

    def project_null(self, x: torch.Tensor) -> torch.Tensor:
        """``(I - A^+ A) x``: the part of ``x`` the measurement does not see (its holes)."""
        return x - self.pinv(self.forward(x))

    def measure(self, x0: torch.Tensor, sigma_y: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``y = A x0 + sigma_y A n`` (noise only where something is measured); ``noise`` is
        ``N(0, I)`` shaped like ``x0`` and needed when ``sigma_y > 0``."""
        y = self.forward(x0)
        if sigma_y > 0:
            if noise is None:
                raise InputError("a noisy measurement (sigma_y > 0) needs its noise draw")
            y = y + sigma_y * self.forward(noise)
        return y
