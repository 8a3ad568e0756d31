"""The network of ``lama-ffc``: LaMa's FFC ResNet generator (the blocks of
:mod:`inpaintbench.methods.feedforward.ffc_blocks`) wrapped to take a masked image and its mask
at any size. Weights I/O: :mod:`.lama_weights`; the method: :mod:`.lama`; training: :mod:`.lama_train`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.core.errors import InputError
from inpaintbench.methods.feedforward.ffc_blocks import ffc_resnet


class FFCInpaintNet(nn.Module):
    """LaMa's generator: input = masked image + mask, output = the whole image in ``[0, 1]``.

    ``self.model`` is LaMa's ``FFCResNetGenerator`` layout
    (:func:`~inpaintbench.methods.feedforward.ffc_blocks.ffc_resnet`, official layer indices and
    parameter names), at MNIST / CelebA-32 sizes by default.

    Args:
        image_channels: C of the images (1 for MNIST, 3 for RGB); the network sees C + 1.
        ngf: channels after the first layer; doubled at each downsampling up to ``max_features``.
        n_downsampling: number of stride-2 levels (the bottleneck is ``H / 2**n`` wide).
        n_blocks: FFC residual blocks at the bottleneck.
        ratio_global: fraction of global (spectral) channels in the residual blocks.
        max_features: cap on the channel count.

    Any ``H, W`` is accepted: :meth:`forward` pads (replicating the border) to a multiple of
    ``2**n_downsampling`` (and at least twice that) and crops the result back.
    """

    def __init__(self, image_channels: int = 1, ngf: int = 24, n_downsampling: int = 2,
                 n_blocks: int = 4, ratio_global: float = 0.75, max_features: int = 1024):
        super().__init__()
        if image_channels not in (1, 3):
            raise InputError(f"image_channels must be 1 or 3, got {image_channels}")
        if n_downsampling < 1 or n_blocks < 0 or ngf < 1:
            raise InputError(
                f"need n_downsampling >= 1, n_blocks >= 0, ngf >= 1; got {n_downsampling}, {n_blocks}, {ngf}")
        self.image_channels = image_channels
        self.multiple = 2 ** n_downsampling
        self.model = ffc_resnet(image_channels + 1, image_channels, ngf, n_downsampling, n_blocks,
                                ratio_global, max_features)

    def forward(self, masked_image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint a batch.

        Args:
            masked_image: float ``[B, C, H, W]`` in ``[0, 1]``; hole pixels are ignored (zeroed
                here again, so ground truth inside a hole can never leak in).
            mask: ``[B, 1, H, W]``, bool or {0, 1} float, 1/True = hole.

        Returns:
            ``[B, C, H, W]`` in ``[0, 1]``: the network's prediction for every pixel.
        """
        if masked_image.shape[1] != self.image_channels:
            raise InputError(
                f"this network takes {self.image_channels}-channel images, got {masked_image.shape[1]}")
        hole = mask.to(masked_image.dtype)
        x = torch.cat([masked_image * (1.0 - hole), hole], dim=1)
        h, w = x.shape[-2:]
        # At least two pixels at the bottleneck: reflection padding needs them.
        return self.model(pad_to_multiple(x, self.multiple, min_size=2 * self.multiple))[..., :h, :w]


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 1) -> torch.Tensor:
    """Pad ``[B, C, H, W]`` at the bottom and right, replicating the border, so that ``H`` and
    ``W`` become multiples of ``multiple`` and at least ``min_size`` pixels; crop the result
    with ``[..., :H, :W]``."""
    h, w = x.shape[-2:]
    pad_h = max(math.ceil(h / multiple) * multiple, min_size) - h
    pad_w = max(math.ceil(w / multiple) * multiple, min_size) - w
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
