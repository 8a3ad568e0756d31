"""MI-GAN's inference generator (Sargsyan et al., ICCV 2023, "MI-GAN: A Simple Baseline for Image
Inpainting on Mobile Devices"), the suite's own modules.

The network of the authors' ``lib/model_zoo/migan_inference.py``: an encoder of depthwise-
separable convolutions halving the resolution down to 4x4, and a synthesis path doubling it back,
each level adding the encoder's feature map of the same size (a U-Net with additive skips) and
accumulating an RGB image through 1x1 "to RGB" convolutions (StyleGAN2's skip architecture).
Every resampling is a learned-shape depthwise 4x4 convolution initialised to the binomial
``[1, 3, 3, 1]`` filter; the noise of each synthesis convolution is a stored constant (the
inference model is deterministic).

Parameter and buffer names are the official ones (``encoder.b256.conv1.conv1.weight``,
``synthesis.b8.conv1.noise_const``...), so the authors' ``migan_{256,512}_*.pt`` state dicts load
with ``strict=True``. Some buffers are sized for the training resolution (``filter_const``,
``noise_const``): the network runs at exactly that resolution.

Input ``[B, 4, R, R]``: ``cat([known - 0.5, image * known])`` with ``known`` 1 on known pixels and
the image in ``[-1, 1]``; output ``[B, 3, R, R]`` in about ``[-1, 1]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from inpaintbench.methods.gan.stylegan_ops import lrelu_agc, setup_filter

#: The resolutions the authors trained (``migan-256``, ``migan-512``).
MIGAN_RESOLUTIONS = (256, 512)


def _width(resolution: int, ch_base: int = 32768, ch_max: int = 512) -> int:
    # MI-GAN's channel rule: ch_base / resolution, capped.
    return min(ch_base // resolution, ch_max)


class Downsample2d(nn.Module):
    """Depthwise 4x4 stride-2 convolution (``filter.weight``, initialised to the normalised
    binomial filter): ``[B, C, H, W]`` -> ``[B, C, H/2, W/2]``."""

    def __init__(self, channels: int):
        super().__init__()
        self.filter = nn.Conv2d(channels, channels, kernel_size=4, stride=2, padding=1, groups=channels,
                                bias=False)
        self.filter.weight = nn.Parameter(setup_filter([1, 3, 3, 1]).repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter(x)


class Upsample2d(nn.Module):
    """Nearest 2x upsampling, zeroing all but the top-left pixel of each 2x2 cell (a stored
    ``filter_const`` mask: zero insertion), then a depthwise 4x4 convolution (initialised to the
    binomial filter with gain 4): ``[B, C, R/2, R/2]`` -> ``[B, C, R, R]``."""

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        cell = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        self.register_buffer("filter_const", cell.repeat(1, 1, resolution // 2, resolution // 2))
        self.filter = nn.Conv2d(channels, channels, kernel_size=4, groups=channels, bias=False)
        self.filter.weight = nn.Parameter(setup_filter([1, 3, 3, 1], gain=4.0).repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest") * self.filter_const
        return self.filter(F.pad(x, (2, 1, 2, 1)))


class SeparableConv2d(nn.Module):
    """Depthwise ``k x k`` conv (``conv1``, with bias) -> activation -> [downsample] -> pointwise
    1x1 conv (``conv2``) -> [upsample] -> [+ constant noise * strength] -> activation.

    Args:
        in_channels, out_channels: widths.
        kernel_size: the depthwise kernel.
        resolution: output resolution (sizes the noise and upsampling buffers).
        use_noise: add ``noise_const * noise_strength``.
        down, up: 2 for a resampling layer, else 1.
        activate: apply :func:`lrelu_agc` (MI-GAN always does inside its blocks).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 resolution: int | None = None, use_noise: bool = False, down: int = 1, up: int = 1,
                 activate: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                               groups=in_channels, bias=True)
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.downsample = Downsample2d(in_channels) if down > 1 else None
        self.upsample = Upsample2d(out_channels, resolution) if up > 1 else None
        self.use_noise = use_noise
        if use_noise:
            # Overwritten by the checkpoint: the trained network's fixed noise image.
            self.register_buffer("noise_const", torch.zeros(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H', W']``."""
        x = self.conv1(x)
        if self.activate:
            x = lrelu_agc(x)
        if self.downsample is not None:
            x = self.downsample(x)
        x = self.conv2(x)
        if self.upsample is not None:
            x = self.upsample(x)
        if self.use_noise:
            x = x + self.noise_const * self.noise_strength
        if self.activate:
            x = lrelu_agc(x)
        return x


class EncoderBlock(nn.Module):
    """``[fromrgb(input) +] x`` -> ``conv1`` (kept as the skip feature) -> ``conv2`` (halving
    unless ``down=1``); returns ``(x, feature)``."""

    def __init__(self, in_channels: int, out_channels: int, rgb_channels: int | None = None, down: int = 2):
        super().__init__()
        self.fromrgb = nn.Conv2d(rgb_channels, in_channels, 1) if rgb_channels is not None else None
        self.conv1 = SeparableConv2d(in_channels, in_channels, 3)
        self.conv2 = SeparableConv2d(in_channels, out_channels, 3, down=down)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fromrgb is not None:
            y = lrelu_agc(self.fromrgb(img))
            x = y if x is None else x + y
        feat = self.conv1(x)
        return self.conv2(feat), feat


class Encoder(nn.Module):
    """Blocks ``b{R}``, ..., ``b8`` halving to 4x4, then ``b4`` at 4x4 (``down=1``).

    ``forward([B, 4, R, R])`` -> ``(x [B, 512, 4, 4], {resolution: feature})``.
    """

    def __init__(self, resolution: int = 256, in_channels: int = 4):
        super().__init__()
        levels = [2 ** i for i in range(int(math.log2(resolution)), 1, -1)]  # R, ..., 4
        self.levels = levels
        for i, (res, nxt) in enumerate(zip(levels[:-1], levels[1:])):
            setattr(self, f"b{res}", EncoderBlock(_width(res), _width(nxt), in_channels if i == 0 else None))
        self.b4 = EncoderBlock(_width(4), _width(4), down=1)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        x, feats = None, {}
        for res in self.levels:
            x, feats[res] = getattr(self, f"b{res}")(x, img)
        return x, feats


class SynthesisBlockFirst(nn.Module):
    """At 4x4: ``conv1``, + the encoder's 4x4 feature, ``conv2``, and the first RGB image."""

    def __init__(self, channels: int, rgb_channels: int = 3):
        super().__init__()
        self.conv1 = SeparableConv2d(channels, channels, 3)
        self.conv2 = SeparableConv2d(channels, channels, 3, resolution=4)
        self.torgb = nn.Conv2d(channels, rgb_channels, 1)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2(self.conv1(x) + feat)
        return x, self.torgb(x)


class SynthesisBlock(nn.Module):
    """Doubling block: ``conv1`` (upsampling, noise), + the encoder's feature, ``conv2`` (noise);
    the running RGB image is upsampled and the block's ``torgb`` output added."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, rgb_channels: int = 3):
        super().__init__()
        self.conv1 = SeparableConv2d(in_channels, out_channels, 3, resolution=resolution, up=2, use_noise=True)
        self.conv2 = SeparableConv2d(out_channels, out_channels, 3, resolution=resolution, use_noise=True)
        self.torgb = nn.Conv2d(out_channels, rgb_channels, 1)
        self.upsample = Upsample2d(rgb_channels, resolution)

    def forward(self, x: torch.Tensor, feat: torch.Tensor, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2(self.conv1(x) + feat)
        return x, self.upsample(img) + self.torgb(x)


class Synthesis(nn.Module):
    """``b4`` then ``b8``, ..., ``b{R}``; returns the accumulated RGB image ``[B, 3, R, R]``."""

    def __init__(self, resolution: int = 256, rgb_channels: int = 3):
        super().__init__()
        levels = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]  # 4, ..., R
        self.levels = levels
        self.b4 = SynthesisBlockFirst(_width(4), rgb_channels)
        for res, nxt in zip(levels[:-1], levels[1:]):
            setattr(self, f"b{nxt}", SynthesisBlock(_width(res), _width(nxt), nxt, rgb_channels))

    def forward(self, x: torch.Tensor, feats: dict[int, torch.Tensor]) -> torch.Tensor:
        x, img = self.b4(x, feats[4])
        for res in self.levels[1:]:
            x, img = getattr(self, f"b{res}")(x, feats[res], img)
        return img


class MIGANGenerator(nn.Module):
    """MI-GAN's inference generator at ``resolution`` (256 or 512; a power of two >= 8 works
    with random weights).

    ``forward(x [B, 4, R, R])`` -> ``[B, 3, R, R]``: see the module docstring for the input.
    """

    def __init__(self, resolution: int = 256):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"MI-GAN's resolution must be a power of two >= 8, got {resolution}")
        self.resolution = resolution
        # Attribute order = the official state dict's key order (synthesis first).
        self.synthesis = Synthesis(resolution)
        self.encoder = Encoder(resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 4, R, R]`` -> ``[B, 3, R, R]``."""
        x, feats = self.encoder(x)
        return self.synthesis(x, feats)
