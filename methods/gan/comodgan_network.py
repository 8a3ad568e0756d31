"""CoModGAN (Zhao et al., ICLR 2021, "Large Scale Image Completion via Co-Modulated Generative
Adversarial Networks") as ported to PyTorch by the MI-GAN authors, the suite's own modules.

The network of ``lib/model_zoo/comodgan.py`` (on ``stylegan.py``) of MI-GAN's repository:

* ``mapping`` -- StyleGAN2's 8-layer MLP from ``z`` (512) to ``w`` (512), broadcast to
  ``num_ws`` copies (14 at 256, 16 at 512), with truncation towards ``w_avg``;
* ``encoder`` -- a StyleGAN2 discriminator-like encoder of the 4-channel input (``b{R}`` ...
  ``b8``: 3x3 conv, 3x3 conv with 2x binomial-filtered downsampling), ending at 4x4 with a conv
  and a fully connected layer to the 1024-d global code ``w0``; each level's first conv output
  is a skip feature;
* ``synthesis`` -- StyleGAN2's skip generator whose every style is ``cat(w_i, w0)``
  (co-modulation), starting from ``fc(w0)`` at 4x4, adding the encoder feature of each level
  after the first conv of the block.

Two differences from StyleGAN2-ADA that the port has and the suite keeps: a modulated conv
normalises its weight by its RMS per output channel and its styles by their RMS before
demodulating (StyleGAN3's trick); ``to_rgb`` scales its styles by the weight gain. The port
normalises the styles by the RMS over the whole *batch*; here it is per sample (a common factor
of a sample's styles cancels in the demodulation up to its 1e-8 epsilon, so the results agree to
float rounding and a sample's output does not depend on its batch).

Parameter and buffer names are the official ones (``mapping.fc0.weight``,
``synthesis.b8.conv0.affine.weight``, ``encoder.b4.fc.weight``...), so the authors'
``comodgan_{256,512}_*.pt`` state dicts load with ``strict=True``. The network runs at exactly
its resolution (the 4x4 fully connected layers fix it).

Input ``[B, 4, R, R]`` as MI-GAN's: ``cat([known - 0.5, image * known])``, image in ``[-1, 1]``;
output ``[B, 3, R, R]`` in about ``[-1, 1]``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn

from inpaintbench.methods.gan.stylegan_ops import (
    broadcast_truncated,
    conv2d_resample,
    lrelu_agc,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

#: The resolutions the authors released (``comodgan-256``, ``comodgan-512``) and their ``num_ws``.
COMODGAN_NUM_WS = {256: 14, 512: 16}

#: ``noise(shape) -> [B, *shape]``: per-sample standard normal draws (e.g. ``SampleRNG.randn``).
NoiseFn = Callable[..., torch.Tensor]


def _width(resolution: int, ch_base: int = 32768, ch_max: int = 512) -> int:
    return min(ch_base // resolution, ch_max)


class Dense(nn.Module):
    """Fully connected layer with StyleGAN's equalised learning rate: ``x @ (W * lr / sqrt(in)).T
    + b * lr``, then the optional :func:`lrelu_agc`. Official name ``dense`` (``weight``, ``bias``)."""

    def __init__(self, in_features: int, out_features: int, *, activate: bool = False, lr_multiplier: float = 1.0,
                 bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in]`` -> ``[B, out]``."""
        b = self.bias if self.bias_gain == 1 else self.bias * self.bias_gain
        x = torch.addmm(b.unsqueeze(0), x, (self.weight * self.weight_gain).t())
        return lrelu_agc(x) if self.activate else x


class ConvLayer(nn.Module):
    """Equalised-learning-rate convolution with optional binomial 2x down/up-sampling, bias and
    :func:`lrelu_agc` (the port's ``conv2d_layer``). ``forward(x, gain)`` scales the activation
    (and its clamp) by ``gain``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activate: bool = True, down: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        if down > 1:
            self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        else:
            self.resample_filter = None
        self.down = down
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.activate = activate

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        x = conv2d_resample(x, self.weight * self.weight_gain, self.resample_filter, down=self.down,
                            padding=self.padding)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1)
        return lrelu_agc(x, gain) if self.activate else x * gain


class SynthesisLayer(nn.Module):
    """Co-modulated 3x3 convolution (optionally 2x upsampling), per-pixel noise, bias and
    :func:`lrelu_agc` (the port's ``synthesis_layer``).

    ``forward(x [B, C_in, H, W], w [B, w_dim], noise_mode, noise_fn)`` -> ``[B, C_out, R, R]``;
    ``noise_mode``: ``"random"`` (``noise_fn((1, R, R))`` scaled by ``noise_strength``),
    ``"const"`` (the stored ``noise_const``), ``"none"``.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: int = 1,
                 kernel_size: int = 3, store_filter: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        if up > 1 or store_filter:
            # store_filter: the 4x4 block's layer carries the (unused) filter in the official
            # state dict too.
            self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        else:
            self.resample_filter = None
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.affine = Dense(w_dim, in_channels, bias_init=1.0)
        self.up, self.resolution, self.padding = up, resolution, kernel_size // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const",
                noise_fn: NoiseFn | None = None, gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            if noise_fn is None:
                raise ValueError("noise_mode='random' needs noise_fn (per-sample draws)")
            noise = noise_fn(1, self.resolution, self.resolution) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        # The port's pre-normalisation (StyleGAN3): weight by its RMS per output channel,
        # styles by their RMS (per sample here, see the module docstring).
        weight = self.weight * self.weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
        x = modulated_conv2d(x, weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=self.up == 1)
        return lrelu_agc(x + self.bias.view(1, -1, 1, 1), gain)


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) 1x1 convolution to RGB, styles times the weight gain, plus
    bias (the port's ``torgb_layer``)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.affine = Dense(w_dim, in_channels, bias_init=1.0)
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return x + self.bias.view(1, -1, 1, 1)


class Mapping(nn.Module):
    """``z [B, 512]`` -> ``ws [B, num_ws, 512]``: 8 equalised dense layers (learning-rate
    multiplier 0.01) on the normalised latent, broadcast, truncated towards ``w_avg`` by
    ``truncation_psi`` (the first ``truncation_cutoff`` ws only, when given)."""

    def __init__(self, num_ws: int, z_dim: int = 512, w_dim: int = 512, num_layers: int = 8):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        dims = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", Dense(dims[i], dims[i + 1], activate=True, lr_multiplier=0.01))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z.float())
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return broadcast_truncated(x, self.num_ws, self.w_avg, truncation_psi, truncation_cutoff)


class EncoderBlock(nn.Module):
    """``[fromrgb(img) +] x`` -> ``conv0`` (the skip feature) -> ``conv1`` (2x down)."""

    def __init__(self, in_channels: int, out_channels: int, rgb_channels: int | None):
        super().__init__()
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        self.fromrgb = ConvLayer(rgb_channels, in_channels, 1) if rgb_channels is not None else None
        self.conv0 = ConvLayer(in_channels, in_channels, 3)
        self.conv1 = ConvLayer(in_channels, out_channels, 3, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fromrgb is not None:
            y = self.fromrgb(img)
            x = y if x is None else x + y
        feat = self.conv0(x)
        return self.conv1(feat), feat


class EncoderEpilogue(nn.Module):
    """At 4x4: ``conv`` (the skip feature) and ``fc`` to the global code (dropout is inactive
    at inference)."""

    def __init__(self, channels: int, out_features: int):
        super().__init__()
        self.conv = ConvLayer(channels, channels, 3)
        self.fc = Dense(channels * 16, out_features, activate=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv(x)
        return self.fc(feat.flatten(1)), feat


class Encoder(nn.Module):
    """``[B, 4, R, R]`` -> ``(w0 [B, 1024], {resolution: feature})``."""

    def __init__(self, resolution: int = 256, in_channels: int = 4, out_features: int = 1024):
        super().__init__()
        self.levels = [2 ** i for i in range(int(math.log2(resolution)), 2, -1)]  # R, ..., 8
        for i, res in enumerate(self.levels):
            setattr(self, f"b{res}", EncoderBlock(_width(res), _width(res // 2), in_channels if i == 0 else None))
        self.b4 = EncoderEpilogue(_width(4), out_features)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        x, feats = None, {}
        for res in self.levels:
            x, feats[res] = getattr(self, f"b{res}")(x, img)
        x, feats[4] = self.b4(x)
        return x, feats


class SynthesisBlockFirst(nn.Module):
    """At 4x4: ``fc(w0)`` reshaped, + the encoder's 4x4 feature, ``conv``, ``torgb``."""

    def __init__(self, w0_dim: int, channels: int, w_dim: int, rgb_channels: int = 3):
        super().__init__()
        self.fc = Dense(w0_dim, channels * 16, activate=True)
        self.conv = SynthesisLayer(channels, channels, w0_dim + w_dim, resolution=4, store_filter=True)
        self.torgb = ToRGBLayer(channels, rgb_channels, w0_dim + w_dim)

    def forward(self, w0: torch.Tensor, feat: torch.Tensor, ws: torch.Tensor, noise_mode: str,
                noise_fn: NoiseFn | None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.fc(w0).view(w0.shape[0], -1, 4, 4) + feat
        x = self.conv(x, torch.cat([ws[:, 0], w0], dim=1), noise_mode, noise_fn)
        return x, self.torgb(x, torch.cat([ws[:, 1], w0], dim=1))


class SynthesisBlock(nn.Module):
    """``conv0`` (2x up), + the encoder feature, ``conv1``; the RGB image upsampled plus ``torgb``."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, w0_dim: int, resolution: int,
                 rgb_channels: int = 3):
        super().__init__()
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim + w0_dim, resolution, up=2)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim + w0_dim, resolution)
        self.torgb = ToRGBLayer(out_channels, rgb_channels, w_dim + w0_dim)

    def forward(self, x: torch.Tensor, feat: torch.Tensor, img: torch.Tensor, ws: torch.Tensor, w0: torch.Tensor,
                noise_mode: str, noise_fn: NoiseFn | None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv0(x, torch.cat([ws[:, 0], w0], dim=1), noise_mode, noise_fn) + feat
        x = self.conv1(x, torch.cat([ws[:, 1], w0], dim=1), noise_mode, noise_fn)
        img = upsample2d(img, self.resample_filter)
        return x, img + self.torgb(x, torch.cat([ws[:, 2], w0], dim=1))


class Synthesis(nn.Module):
    """``(w0, features, ws)`` -> ``[B, 3, R, R]``. Block ``b4`` reads ws 0-1, block ``b{2^k}``
    ws ``2k - 5`` to ``2k - 3`` (consecutive blocks share the to-RGB / first-conv w, as in
    StyleGAN2)."""

    def __init__(self, resolution: int = 256, w_dim: int = 512, w0_dim: int = 1024, rgb_channels: int = 3):
        super().__init__()
        self.levels = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]  # 4, ..., R
        self.b4 = SynthesisBlockFirst(w0_dim, _width(4), w_dim, rgb_channels)
        for res, nxt in zip(self.levels[:-1], self.levels[1:]):
            setattr(self, f"b{nxt}", SynthesisBlock(_width(res), _width(nxt), w_dim, w0_dim, nxt, rgb_channels))

    def forward(self, w0: torch.Tensor, feats: dict[int, torch.Tensor], ws: torch.Tensor,
                noise_mode: str = "const", noise_fn: NoiseFn | None = None) -> torch.Tensor:
        x, img = self.b4(w0, feats[4], ws[:, 0:2], noise_mode, noise_fn)
        for i, res in enumerate(self.levels[1:]):
            first = 1 + 2 * i
            x, img = getattr(self, f"b{res}")(x, feats[res], img, ws[:, first:first + 3], w0, noise_mode, noise_fn)
        return img


class CoModGANGenerator(nn.Module):
    """The CoModGAN port at ``resolution`` (256 or 512).

    ``forward(x [B, 4, R, R], z [B, 512], noise_mode, noise_fn, truncation_psi)`` -> ``[B, 3, R, R]``.
    """

    def __init__(self, resolution: int = 256):
        super().__init__()
        if resolution not in COMODGAN_NUM_WS:
            raise ValueError(f"CoModGAN's resolution is 256 or 512, got {resolution}")
        self.resolution = resolution
        # Attribute order = the official state dict's key order.
        self.mapping = Mapping(COMODGAN_NUM_WS[resolution])
        self.synthesis = Synthesis(resolution)
        self.encoder = Encoder(resolution)

    def forward(self, x: torch.Tensor, z: torch.Tensor, noise_mode: str = "random",
                noise_fn: NoiseFn | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        """``[B, 4, R, R]`` and the latent ``[B, 512]`` -> ``[B, 3, R, R]``."""
        ws = self.mapping(z, truncation_psi, truncation_cutoff)
        w0, feats = self.encoder(x)
        return self.synthesis(w0, feats, ws, noise_mode, noise_fn)
