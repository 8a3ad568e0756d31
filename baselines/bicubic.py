"""Bicubic upsampling: the super-resolution baseline (``sr-bicubic``)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from inpaintbench.core.method import Method
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import check_image_batch
from inpaintbench.core.tasks import check_scale


def bicubic_upscale(low_res: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic interpolation (Keys kernel, a = -0.75, half-pixel centres, replicated borders:
    ``F.interpolate(..., mode="bicubic", align_corners=False)``, OpenCV's ``INTER_CUBIC``),
    clipped to ``[0, 1]``.

    Args:
        low_res: float32 ``[B, C, h, w]`` in ``[0, 1]``.
        scale: integer factor >= 2.

    Returns:
        float32 ``[B, C, h * scale, w * scale]`` in ``[0, 1]``.
    """
    check_image_batch(low_res, "low-resolution image")
    check_scale(scale)
    return F.interpolate(low_res, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


class BicubicUpscale(Method):
    """Bicubic upsampling (``sr-bicubic``): :func:`bicubic_upscale`. No parameters."""

    tasks: ClassVar[tuple[str, ...]] = ("super-resolution",)

    def upscale(self, low_res: torch.Tensor, scale: int, *, rng: SampleRNG) -> torch.Tensor:
        """``[B, C, h, w]`` in ``[0, 1]`` -> ``[B, C, h * scale, w * scale]`` in ``[0, 1]``."""
        return bicubic_upscale(low_res, scale)
