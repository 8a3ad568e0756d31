"""MAT's layers in plain PyTorch, with the official attribute names: those of
``networks/basic_module.py`` (equalised fully connected and convolution layers, the modulated
convolution, the style convolution with noise, to-RGB, the mapping network) and the
mask-aware transformer pieces of ``networks/mat.py`` (partial convolution, window attention,
Swin blocks, patch merging / upsampling, a transformer stage), on :mod:`stylegan_ops`.

The network that assembles them is :mod:`mat_network`; shapes and conventions are in its
docstring. Tokens are ``[B, H*W, C]``, features ``[B, C, H, W]``, masks 1 = valid.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from inpaintbench.methods.gan.stylegan_ops import (
    broadcast_truncated,
    bias_act,
    conv2d_resample,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

#: ``noise_fn(*shape) -> [B, *shape]``: per-sample standard normal draws (e.g. ``SampleRNG.randn``).
DrawFn = Callable[..., torch.Tensor]

_GAINS = {"linear": 1.0, "lrelu": math.sqrt(2.0), "relu": math.sqrt(2.0)}


def token2feature(x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
    """``[B, H*W, C]`` tokens -> ``[B, C, H, W]``."""
    b, _, c = x.shape
    return x.permute(0, 2, 1).reshape(b, c, x_size[0], x_size[1])


def feature2token(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, H*W, C]`` tokens."""
    b, c = x.shape[:2]
    return x.view(b, c, -1).transpose(1, 2)


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B * nW, ws, ws, C]`` (row-major windows per image)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, ws, ws, C]`` -> ``[B, H, W, C]``."""
    b = int(windows.shape[0] / (h * w / window_size / window_size))
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


# ---------------------------------------------------------------------------------- basic layers


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer on the last axis, then ``bias_act`` (official
    ``FullyConnectedLayer``: ``weight [out, in]``, ``bias [out]``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.activation = activation
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., in]`` -> ``[..., out]``."""
        w = self.weight * self.weight_gain
        b = self.bias
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        x = x.matmul(w.t())
        if self.activation == "linear" and b is not None:
            return x + b.reshape([-1 if i == x.ndim - 1 else 1 for i in range(x.ndim)])
        return bias_act(x, b, self.activation, dim=x.ndim - 1)


class Conv2dLayer(nn.Module):
    """Equalised-learning-rate convolution with optional 2x up/down-sampling through the
    ``[1, 3, 3, 1]`` filter, then bias and activation (official ``Conv2dLayer``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1):
        super().__init__()
        self.activation, self.up, self.down = activation, up, down
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = _GAINS[activation]
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H * up / down, W * up / down]``."""
        x = conv2d_resample(x, self.weight * self.weight_gain, self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding)
        return bias_act(x, self.bias, self.activation, gain=self.act_gain * gain)


class Conv2dLayerPartial(nn.Module):
    """A partial convolution: :class:`Conv2dLayer` rescaled by ``k^2 / (valid pixels in the
    window)`` where the window has any, zero where it has none; the new mask is 1 where the
    window had a valid pixel (official ``Conv2dLayerPartial``, the layer under ``conv``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1):
        super().__init__()
        self.conv = Conv2dLayer(in_channels, out_channels, kernel_size, bias, activation, up, down)
        self.kernel_size = kernel_size
        self.slide_winsize = kernel_size ** 2
        self.stride = down
        self.padding = kernel_size // 2 if kernel_size % 2 == 1 else 0

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, C, H, W]``, ``mask [B, 1, H, W]`` (1 = valid) or None -> ``(y, new mask or None)``."""
        if mask is None:
            return self.conv(x), None
        with torch.no_grad():
            ones = torch.ones(1, 1, self.kernel_size, self.kernel_size, dtype=x.dtype, device=x.device)
            update_mask = F.conv2d(mask, ones, bias=None, stride=self.stride, padding=self.padding)
            mask_ratio = self.slide_winsize / (update_mask + 1e-8)
            update_mask = torch.clamp(update_mask, 0, 1)
            mask_ratio = torch.mul(mask_ratio, update_mask)
        return torch.mul(self.conv(x), mask_ratio), update_mask


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution (official ``ModulatedConv2d``: ``weight [1, O, I, k, k]``,
    ``affine`` from the style to the per-input-channel scales, bias-free)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, up: int = 1):
        super().__init__()
        self.demodulate = demodulate
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.up = up
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        self.affine = FullyConnectedLayer(style_dim, in_channels, bias_init=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """``x [B, C_in, H, W]``, ``style [B, style_dim]`` -> ``[B, C_out, H * up, W * up]``."""
        styles = self.affine(style)
        # The authors' conv2d_resample call keeps flip_weight=True also when upsampling.
        return modulated_conv2d(x, (self.weight * self.weight_gain)[0], styles, up=self.up, padding=self.padding,
                                resample_filter=self.resample_filter, demodulate=self.demodulate, flip_weight=True)


class StyleConv(nn.Module):
    """Modulated 3x3 convolution (optionally 2x up), per-pixel noise, bias, ``lrelu`` (official
    ``StyleConv``). ``noise_mode``: ``"random"`` (``noise_fn(1, H, W)`` times
    ``noise_strength``), ``"const"`` (the stored ``noise_const``), ``"none"``."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu", demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate, up)
        self.use_noise = use_noise
        self.resolution = resolution
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.activation = activation
        self.act_gain = _GAINS[activation]

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise_mode: str = "random",
                noise_fn: DrawFn | None = None, gain: float = 1.0) -> torch.Tensor:
        x = self.conv(x, style)
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        if self.use_noise and noise_mode == "random":
            if noise_fn is None:
                raise ValueError("noise_mode='random' needs noise_fn (per-sample draws)")
            x = x + noise_fn(1, x.shape[-2], x.shape[-1]).to(x) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return bias_act(x, self.bias, self.activation, gain=self.act_gain * gain)


class ToRGB(nn.Module):
    """Modulated (not demodulated) 1x1 convolution to RGB plus bias, added to the 2x-upsampled
    ``skip`` image (official ``ToRGB``)."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, kernel_size: int = 1,
                 demodulate: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = bias_act(self.conv(x, style), self.bias)
        if skip is not None:
            if skip.shape != out.shape:
                skip = upsample2d(skip, self.resample_filter)
            out = out + skip
        return out


class MappingNet(nn.Module):
    """``z [B, z_dim]`` (and a label ``c`` when ``c_dim > 0``) -> ``ws [B, num_ws, w_dim]``
    (official ``MappingNet``: ``fc0`` ... ``fc7``, learning-rate multiplier 0.01, ``w_avg``)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 activation: str = "lrelu", lr_multiplier: float = 0.01):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        embed_features = w_dim if c_dim > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                                          lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z.to(torch.float32)) if self.z_dim > 0 else None
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        return broadcast_truncated(x, self.num_ws, self.w_avg, truncation_psi, truncation_cutoff)


# ---------------------------------------------------------------------------------- transformer


class Mlp(nn.Module):
    """``fc1`` (``lrelu``) then ``fc2`` (official ``Mlp``; the GELU it is given is unused)."""

    def __init__(self, in_features: int, hidden_features: int):
        super().__init__()
        self.fc1 = FullyConnectedLayer(in_features, hidden_features, activation="lrelu")
        self.fc2 = FullyConnectedLayer(hidden_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


class WindowAttention(nn.Module):
    """Multi-head attention inside a window, mask-aware: queries and keys from the L2-normalised
    tokens, values from the tokens; keys of invalid tokens get -100 (official ``WindowAttention``)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = FullyConnectedLayer(dim, dim)
        self.k = FullyConnectedLayer(dim, dim)
        self.v = FullyConnectedLayer(dim, dim)
        self.proj = FullyConnectedLayer(dim, dim)

    def forward(self, x: torch.Tensor, mask_windows: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B * nW, N, C]``, ``mask_windows [B * nW, N, 1]`` (1 = valid) or None, ``mask``
        the shifted-window mask ``[nW, N, N]`` (0 / -100) or None -> ``(x, new mask_windows)``."""
        b_, n, c = x.shape
        heads = self.num_heads
        norm_x = F.normalize(x, p=2.0, dim=-1)
        q = self.q(norm_x).reshape(b_, n, heads, c // heads).permute(0, 2, 1, 3)
        k = self.k(norm_x).view(b_, -1, heads, c // heads).permute(0, 2, 3, 1)
        v = self.v(x).view(b_, -1, heads, c // heads).permute(0, 2, 1, 3)
        attn = (q @ k) * self.scale
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, n, n)
        if mask_windows is not None:
            valid = mask_windows.squeeze(-1).unsqueeze(1).unsqueeze(1)
            attn = attn + valid.masked_fill(valid == 0, -100.0).masked_fill(valid == 1, 0.0)
            # A window with any valid token becomes valid as a whole.
            mask_windows = torch.clamp(torch.sum(mask_windows, dim=1, keepdim=True), 0, 1).repeat(1, n, 1)
        attn = torch.softmax(attn, dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b_, n, c)
        return self.proj(x), mask_windows


class SwinTransformerBlock(nn.Module):
    """Window attention (shifted by half a window in odd blocks), ``fuse`` of the input and the
    attention output, then the MLP -- no residual around them and no normalisation, as the
    official ``SwinTransformerBlock``."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int = 7,
                 shift_size: int = 0, mlp_ratio: float = 4.0):
        super().__init__()
        self.dim, self.input_resolution, self.num_heads = dim, tuple(input_resolution), num_heads
        self.window_size, self.shift_size = window_size, shift_size
        if min(self.input_resolution) <= self.window_size:
            self.shift_size = 0
            self.window_size = min(self.input_resolution)
        self.attn = WindowAttention(dim, num_heads)
        self.fuse = FullyConnectedLayer(dim * 2, dim, activation="lrelu")
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        # Loaded with the weights (the official state dict carries it), recomputed in forward.
        self.register_buffer("attn_mask", self.calculate_mask(self.input_resolution) if self.shift_size > 0 else None)

    def calculate_mask(self, x_size: tuple[int, int]) -> torch.Tensor:
        """The shifted-window mask ``[nW, N, N]``: -100 between tokens of different regions of
        the cyclically shifted map, else 0."""
        h, w = x_size
        img_mask = torch.zeros((1, h, w, 1))
        slices = (slice(0, -self.window_size), slice(-self.window_size, -self.shift_size),
                  slice(-self.shift_size, None))
        cnt = 0
        for hs in slices:
            for ws in slices:
                img_mask[:, hs, ws, :] = cnt
                cnt += 1
        mask_windows = window_partition(img_mask, self.window_size).view(-1, self.window_size * self.window_size)
        attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
        return attn_mask.masked_fill(attn_mask != 0, -100.0).masked_fill(attn_mask == 0, 0.0)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int],
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, H*W, C]``, ``mask [B, H*W, 1]`` or None -> ``(x, mask)``."""
        h, w = x_size
        b, length, c = x.shape
        if length != h * w:
            raise ValueError(f"{length} tokens for a {h}x{w} map")
        ws, shift = self.window_size, self.shift_size
        shortcut = x
        x = x.view(b, h, w, c)
        if mask is not None:
            mask = mask.view(b, h, w, 1)
        if shift > 0:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, shifts=(-shift, -shift), dims=(1, 2))
        x_windows = window_partition(x, ws).view(-1, ws * ws, c)
        mask_windows = window_partition(mask, ws).view(-1, ws * ws, 1) if mask is not None else None
        attn_mask = self.calculate_mask(x_size).to(x.device) if shift > 0 else None
        attn_windows, mask_windows = self.attn(x_windows, mask_windows, mask=attn_mask)
        x = window_reverse(attn_windows.view(-1, ws, ws, c), ws, h, w)
        if mask is not None:
            mask = window_reverse(mask_windows.view(-1, ws, ws, 1), ws, h, w)
        if shift > 0:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, shifts=(shift, shift), dims=(1, 2))
        x = x.view(b, h * w, c)
        if mask is not None:
            mask = mask.view(b, h * w, 1)
        x = self.fuse(torch.cat([shortcut, x], dim=-1))
        return self.mlp(x), mask


class PatchMerging(nn.Module):
    """Tokens -> a strided partial 3x3 convolution (``down``) -> tokens (official ``PatchMerging``)."""

    def __init__(self, in_channels: int, out_channels: int, down: int = 2):
        super().__init__()
        self.conv = Conv2dLayerPartial(in_channels, out_channels, 3, activation="lrelu", down=down)
        self.down = down

    def forward(self, x, x_size, mask=None):
        x = token2feature(x, x_size)
        if mask is not None:
            mask = token2feature(mask, x_size)
        x, mask = self.conv(x, mask)
        if self.down != 1:
            x_size = (int(x_size[0] / self.down), int(x_size[1] / self.down))
        return feature2token(x), x_size, (feature2token(mask) if mask is not None else None)


class PatchUpsampling(nn.Module):
    """Tokens -> a 2x-upsampling partial 3x3 convolution -> tokens (official ``PatchUpsampling``;
    MAT calls it without a mask)."""

    def __init__(self, in_channels: int, out_channels: int, up: int = 2):
        super().__init__()
        self.conv = Conv2dLayerPartial(in_channels, out_channels, 3, activation="lrelu", up=up)
        self.up = up

    def forward(self, x, x_size, mask=None):
        x = token2feature(x, x_size)
        if mask is not None:
            mask = token2feature(mask, x_size)
        x, mask = self.conv(x, mask)
        if self.up != 1:
            x_size = (int(x_size[0] * self.up), int(x_size[1] * self.up))
        return feature2token(x), x_size, (feature2token(mask) if mask is not None else None)


class BasicLayer(nn.Module):
    """One transformer stage: optional ``downsample`` (merging or upsampling), ``depth`` blocks,
    a partial 3x3 ``conv``, plus the stage input (official ``BasicLayer``)."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window_size: int,
                 mlp_ratio: float = 2.0, downsample: nn.Module | None = None):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size,
                                 shift_size=0 if i % 2 == 0 else window_size // 2, mlp_ratio=mlp_ratio)
            for i in range(depth)])
        self.conv = Conv2dLayerPartial(dim, dim, 3, activation="lrelu")

    def forward(self, x, x_size, mask=None):
        if self.downsample is not None:
            x, x_size, mask = self.downsample(x, x_size, mask)
        identity = x
        for blk in self.blocks:
            x, mask = blk(x, x_size, mask)
        if mask is not None:
            mask = token2feature(mask, x_size)
        x, mask = self.conv(token2feature(x, x_size), mask)
        x = feature2token(x) + identity
        return x, x_size, (feature2token(mask) if mask is not None else None)
