"""The network of the blind hole predictor (:mod:`.mask_predictor`): a small segmentation UNet
mapping a corrupted image (holes zero-filled) to per-pixel hole logits.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.core.errors import InputError


class _ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by GroupNorm and SiLU (spatial size kept)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
        )


class MaskPredictorUNet(nn.Module):
    """A plain-torch UNet: corrupted image -> per-pixel hole logits.

    Args:
        in_channels: image channels (1 for MNIST, 3 for RGB).
        channels: feature channels per resolution level, finest first; each level but the last
            halves the resolution (max-pool) and the decoder mirrors it with skip connections.
        norm_groups: GroupNorm groups; must divide every entry of ``channels``.

    ``forward(corrupted)``: float32 ``[B, in_channels, H, W]`` in ``[0, 1]`` -> float32 logits
    ``[B, 1, H, W]`` (positive = hole). Any ``H, W`` works: the input is replicate-padded to a
    multiple of ``2 ** (len(channels) - 1)`` and the output cropped back.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64), norm_groups: int = 8):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) < 2:
            raise InputError(f"channels needs at least two levels, got {list(channels)}")
        if any(c % norm_groups for c in channels):
            raise InputError(f"norm_groups={norm_groups} must divide every entry of channels {list(channels)}")
        self.config = {"in_channels": in_channels, "channels": list(channels), "norm_groups": norm_groups}
        self.encoders = nn.ModuleList()
        previous = in_channels
        for c in channels:
            self.encoders.append(_ConvBlock(previous, c, norm_groups))
            previous = c
        self.decoders = nn.ModuleList(
            _ConvBlock(channels[i + 1] + channels[i], channels[i], norm_groups)
            for i in reversed(range(len(channels) - 1))
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, corrupted: torch.Tensor) -> torch.Tensor:
        h, w = corrupted.shape[-2:]
        multiple = 2 ** (len(self.encoders) - 1)
        pad_h, pad_w = -h % multiple, -w % multiple
        x = F.pad(corrupted, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else corrupted
        skips = []
        for i, encoder in enumerate(self.encoders):
            if i:
                x = F.max_pool2d(x, 2)
            x = encoder(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for decoder in self.decoders:
            skip = skips.pop()
            x = decoder(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], dim=1))
        return self.head(x)[..., :h, :w]
