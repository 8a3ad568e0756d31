"""The data contracts: what an image batch, a mask batch and a dataset item are.

Conventions (the whole suite relies on them):

* images are ``float32`` tensors ``[B, C, H, W]`` with values in ``[0, 1]``; ``C`` is 1 or 3;
* masks are ``bool`` tensors ``[B, 1, H, W]`` and **True marks a missing pixel (a hole)**;
* a method receives the *masked* image, holes already zero-filled, so it can never see the
  ground truth inside a hole.

Files with other conventions (RePaint / MI-GAN masks: white = known; diffusers' RePaint
pipeline: 0 = inpaint; its Stable Diffusion inpainting pipeline: white = repaint, like ours)
are converted where they are read, never inside a method.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from inpaintbench.core.errors import InputError


def check_image_batch(image: torch.Tensor, what: str = "image") -> None:
    """Raise :class:`InputError` unless ``image`` is float32 ``[B, C, H, W]``, C in {1, 3},
    finite, with values in ``[0, 1]``."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise InputError(f"{what} must have shape [B, C, H, W] with C in {{1, 3}}, got {list(image.shape)}")
    if image.dtype != torch.float32:
        raise InputError(f"{what} must be float32, got {image.dtype}")
    if not torch.isfinite(image).all():
        raise InputError(f"{what} contains NaN or inf values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{what} values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")


def check_mask_batch(mask: torch.Tensor, image: torch.Tensor | None = None) -> None:
    """Raise :class:`InputError` unless ``mask`` is bool ``[B, 1, H, W]`` matching ``image``."""
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise InputError(
            f"mask must be a bool tensor (True = hole), got {mask.dtype}; "
            "convert with mask > 0.5 after checking its polarity"
        )
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise InputError(f"mask must have shape [B, 1, H, W], got {list(mask.shape)}")
    if image is not None and (mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]):
        raise InputError(
            f"mask shape {list(mask.shape)} does not match image shape {list(image.shape)} "
            "(batch and spatial size must agree)"
        )


def composite(output: torch.Tensor, original: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Paste the known pixels of ``original`` over ``output``.

    Args:
        output, original: ``[B, C, H, W]`` in ``[0, 1]``.
        mask: bool ``[B, 1, H, W]``, True = hole.

    Returns:
        ``[B, C, H, W]``: ``output`` inside the holes, ``original`` elsewhere.
    """
    return torch.where(mask, output, original)


def apply_mask(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero-fill the holes: the input every method receives. Shapes as in :func:`composite`."""
    return image.masked_fill(mask, 0.0)


class Sample(NamedTuple):
    """One dataset item.

    Attributes:
        image: float32 ``[C, H, W]`` in ``[0, 1]``.
        sample_id: a stable string id (file stem, dataset index) used for seeding and resuming.
        mask: bool ``[1, H, W]`` (True = hole) when the dataset ships its own mask, else None.
    """

    image: torch.Tensor
    sample_id: str
    mask: torch.Tensor | None = None
