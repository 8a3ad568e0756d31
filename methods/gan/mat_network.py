"""MAT (Li et al., CVPR 2022, "MAT: Mask-Aware Transformer for Large Hole Image Inpainting"),
the suite's own generator with the official parameter names.

The network of ``networks/mat.py`` (``Generator(z_dim, c_dim, w_dim, img_resolution,
img_channels)``) and its layers in ``networks/basic_module.py`` of the authors' repository, in
plain PyTorch (no ``timm``: the official blocks take a ``drop_path`` they never apply, and
``to_2tuple`` / ``trunc_normal_`` only decorate construction). The layers are in
:mod:`mat_layers`; this module assembles them:

* ``mapping`` -- StyleGAN2's 8-layer MLP from ``z`` (512) to ``w`` (512), broadcast to
  ``num_ws = 2 log2(R) - 6`` copies (12 at 512, 10 at 256), truncation towards ``w_avg``;
* ``synthesis.first_stage`` -- the coarse stage: partial convolutions down to 64x64 (their
  mask updated as the valid fraction of each window), five mask-aware Swin stages
  64 -> 32 -> 16 -> 32 -> 64 (window attention whose keys in a window without a valid
  token are masked by -100; a window with one valid token becomes valid), a global style
  from the 16x16 tokens and ``w``, and style-modulated upsampling back to ``R`` (no noise);
* ``synthesis.enc`` / ``to_style`` / ``dec`` -- the second stage: a convolutional encoder
  of ``cat(mask - 0.5, composite, known image)`` to 16x16, a global style, and a StyleGAN2
  decoder 16 -> ``R`` whose every style is ``cat(w_i, global style)``, with per-pixel noise.

Randomness. Besides ``z`` and the decoder noise (``noise_mode="random"``), MAT's inference
mixes, at both 16x16 bottlenecks, the features with a learned map of ``w`` through a
Bernoulli(0.5) mask: ``F.dropout(0.5 * ones, training=True)`` is active in the authors' eval
mode too. Here every draw goes through callables (``noise_fn`` for the noise, ``keep_fn`` for
those 0/1 maps) so the method can take them from each sample's own generator; without
``keep_fn`` the maps are drawn exactly as the authors' code draws them (torch's global
generator), which the equality test replays. The authors' dropout fills its map in the memory
order of the features, and the first stage's 16x16 tokens are a transposed view whose layout
torch picks by batch size; ``keep_fn`` maps are drawn in the order the authors' batch-1 run
(``generate_image.py``) uses, whatever the batch, so a sample's draws do not depend on its batch.

One deviation that changes nothing: the shifted-window attention mask is recomputed from the
feature size on every call (the official forward compares ``input_resolution``, a list, to the
size, a tuple, which is never equal, so it recomputes too); the stored ``attn_mask`` buffers
are loaded and kept, not read.

Input: ``images_in [B, 3, R, R]`` in ``[-1, 1]``, ``masks_in [B, 1, R, R]`` float with
1 = known, 0 = hole (MAT's convention); output ``[B, 3, R, R]``, the known pixels pasted back.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from inpaintbench.methods.gan.mat_layers import (
    BasicLayer,
    Conv2dLayer,
    Conv2dLayerPartial,
    DrawFn,
    FullyConnectedLayer,
    MappingNet,
    PatchMerging,
    PatchUpsampling,
    StyleConv,
    ToRGB,
    feature2token,
    token2feature,
)

#: ``keep_fn(*shape) -> [B, *shape]``: per-sample 0/1 maps, each entry 1 with probability 1/2.
KeepFn = Callable[..., torch.Tensor]

#: The resolutions the authors released (Places2 / FFHQ / CelebA-HQ at 512, CelebA-HQ at 256).
MAT_RESOLUTIONS = (256, 512)


def nf(stage: int) -> int:
    """Channels of the second stage at resolution ``2 ** stage`` (the official table)."""
    return {512: 64, 256: 128, 128: 256, 64: 512, 32: 512, 16: 512, 8: 512, 4: 512}[2 ** stage]


def _official_keep(like: torch.Tensor) -> torch.Tensor:
    # The authors' draw: dropout (p = 0.5, always training) of a map of 0.5 is 0 or exactly 1.
    # ones_like keeps the layout of ``like`` (the 16x16 tokens are a transposed view), and
    # dropout fills its Bernoulli draws in memory order, not in index order.
    return F.dropout(torch.ones_like(like) * 0.5, training=True)


# ---------------------------------------------------------------------------------- the stages


class DecStyleBlock(nn.Module):
    """First-stage decoder block: ``conv0`` (2x up), + skip, ``conv1``, ``toRGB`` onto the image."""

    def __init__(self, res: int, in_channels: int, out_channels: int, activation: str, style_dim: int,
                 use_noise: bool, demodulate: bool, img_channels: int):
        super().__init__()
        self.res = res
        # ``res`` is a pixel size here (the official code passes 2 ** res, unused without noise).
        self.conv0 = StyleConv(in_channels, out_channels, style_dim, res, 3, up=2, use_noise=use_noise,
                               activation=activation, demodulate=demodulate)
        self.conv1 = StyleConv(out_channels, out_channels, style_dim, res, 3, use_noise=use_noise,
                               activation=activation, demodulate=demodulate)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim, 1, demodulate=False)

    def forward(self, x, img, style, skip, noise_mode="random", noise_fn=None):
        x = self.conv0(x, style, noise_mode=noise_mode, noise_fn=noise_fn)
        x = x + skip
        x = self.conv1(x, style, noise_mode=noise_mode, noise_fn=noise_fn)
        return x, self.toRGB(x, style, skip=img)


class FirstStage(nn.Module):
    """The coarse stage (official ``FirstStage``, ``dim = 180``): ``[B, 3, R, R]`` image and mask
    and ``ws`` -> a coarse completion ``[B, 3, R, R]`` with the known pixels pasted back."""

    def __init__(self, img_channels: int, img_resolution: int = 256, dim: int = 180, w_dim: int = 512,
                 use_noise: bool = False, demodulate: bool = True, activation: str = "lrelu"):
        super().__init__()
        res = 64
        self.conv_first = Conv2dLayerPartial(img_channels + 1, dim, 3, activation=activation)
        down_time = int(np.log2(img_resolution // res))
        self.enc_conv = nn.ModuleList([Conv2dLayerPartial(dim, dim, 3, down=2, activation=activation)
                                       for _ in range(down_time)])
        # 64 -> 32 -> 16 -> 32 -> 64
        depths, ratios, window_sizes, num_heads = [2, 3, 4, 3, 2], [1, 1 / 2, 1 / 2, 2, 2], [8, 16, 16, 16, 8], 6
        self.tran = nn.ModuleList()
        for i, depth in enumerate(depths):
            res = int(res * ratios[i])
            if ratios[i] < 1:
                merge = PatchMerging(dim, dim, down=int(1 / ratios[i]))
            elif ratios[i] > 1:
                merge = PatchUpsampling(dim, dim, up=ratios[i])
            else:
                merge = None
            self.tran.append(BasicLayer(dim, (res, res), depth, num_heads, window_sizes[i], downsample=merge))
        self.down_conv = nn.Sequential(*[Conv2dLayer(dim, dim, 3, down=2, activation=activation) for _ in range(4)],
                                       nn.AdaptiveAvgPool2d((1, 1)))
        self.to_style = FullyConnectedLayer(dim, dim * 2, activation=activation)
        self.ws_style = FullyConnectedLayer(w_dim, dim, activation=activation)
        self.to_square = FullyConnectedLayer(dim, 16 * 16, activation=activation)
        style_dim = dim * 3
        self.dec_conv = nn.ModuleList()
        for _ in range(down_time):
            res = res * 2
            self.dec_conv.append(DecStyleBlock(res, dim, dim, activation, style_dim, use_noise, demodulate,
                                               img_channels))

    def forward(self, images_in: torch.Tensor, masks_in: torch.Tensor, ws: torch.Tensor, noise_mode: str = "random",
                noise_fn: DrawFn | None = None, keep_fn: KeepFn | None = None) -> torch.Tensor:
        x = torch.cat([masks_in - 0.5, images_in * masks_in], dim=1)
        skips = []
        x, mask = self.conv_first(x, masks_in)
        skips.append(x)
        for i, block in enumerate(self.enc_conv):
            x, mask = block(x, mask)
            if i != len(self.enc_conv) - 1:
                skips.append(x)
        x_size = tuple(x.shape[-2:])
        x, mask = feature2token(x), feature2token(mask)
        mid = len(self.tran) // 2
        for i, block in enumerate(self.tran):
            if i < mid:
                x, x_size, mask = block(x, x_size, mask)
                skips.append(x)
            elif i > mid:
                x, x_size, mask = block(x, x_size, None)
                x = x + skips[mid - i]
            else:
                x, x_size, mask = block(x, x_size, None)
                # At 16x16: half the tokens (drawn) are replaced by a learned map of w.
                if keep_fn is None:
                    keep = _official_keep(x)
                else:
                    # Drawn as [C, N] and transposed: the memory order of the tokens at batch 1,
                    # the order in which the authors' dropout fills its map (generate_image.py).
                    keep = keep_fn(x.shape[2], x.shape[1]).to(x).transpose(1, 2)
                w_feat = self.ws_style(ws[:, -1])
                add_n = self.to_square(w_feat).unsqueeze(1)
                add_n = F.interpolate(add_n, size=x.size(1), mode="linear", align_corners=False).squeeze(1).unsqueeze(-1)
                x = x * keep + add_n * (1 - keep)
                gs = self.to_style(self.down_conv(token2feature(x, x_size)).flatten(start_dim=1))
                style = torch.cat([gs, w_feat], dim=1)
        x = token2feature(x, x_size).contiguous()
        img = None
        for i, block in enumerate(self.dec_conv):
            x, img = block(x, img, style, skips[len(self.dec_conv) - i - 1], noise_mode=noise_mode, noise_fn=noise_fn)
        return img * (1 - masks_in) + images_in * masks_in


class EncFromRGB(nn.Module):
    """1x1 then 3x3 convolution at full resolution (official ``EncFromRGB``)."""

    def __init__(self, in_channels: int, out_channels: int, activation: str):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 1, activation=activation)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation=activation)

    def forward(self, x):
        return self.conv1(self.conv0(x))


class ConvBlockDown(nn.Module):
    """3x3 convolution with 2x down-sampling, then 3x3 (official ``ConvBlockDown``)."""

    def __init__(self, in_channels: int, out_channels: int, activation: str):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 3, activation=activation, down=2)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation=activation)

    def forward(self, x):
        return self.conv1(self.conv0(x))


class Encoder(nn.Module):
    """``[B, 7, R, R]`` -> ``{log2 resolution: feature}`` from ``R`` down to 16 (official ``Encoder``)."""

    def __init__(self, res_log2: int, img_channels: int, activation: str):
        super().__init__()
        self.resolution = []
        for i in range(res_log2, 3, -1):
            res = 2 ** i
            self.resolution.append(res)
            block = (EncFromRGB(img_channels * 2 + 1, nf(i), activation) if i == res_log2
                     else ConvBlockDown(nf(i + 1), nf(i), activation))
            setattr(self, f"EncConv_Block_{res}x{res}", block)

    def forward(self, x):
        out = {}
        for res in self.resolution:
            x = getattr(self, f"EncConv_Block_{res}x{res}")(x)
            out[int(np.log2(res))] = x
        return out


class ToStyle(nn.Module):
    """Three strided 3x3 convolutions, global average, ``fc`` (official ``ToStyle``)."""

    def __init__(self, in_channels: int, out_channels: int, activation: str):
        super().__init__()
        self.conv = nn.Sequential(*[Conv2dLayer(in_channels, in_channels, 3, activation=activation, down=2)
                                    for _ in range(3)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = FullyConnectedLayer(in_channels, out_channels, activation=activation)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(start_dim=1))


class DecBlockFirstV2(nn.Module):
    """The decoder at 16x16: ``conv0``, + encoder feature, ``conv1`` (styled), ``toRGB``."""

    def __init__(self, res, in_channels, out_channels, activation, style_dim, use_noise, demodulate, img_channels):
        super().__init__()
        self.res = res
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation=activation)
        self.conv1 = StyleConv(in_channels, out_channels, style_dim, 2 ** res, 3, use_noise=use_noise,
                               activation=activation, demodulate=demodulate)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim, 1, demodulate=False)

    def forward(self, x, ws, gs, e_features, noise_mode="random", noise_fn=None):
        x = self.conv0(x) + e_features[self.res]
        x = self.conv1(x, torch.cat([ws[:, 0], gs], dim=1), noise_mode=noise_mode, noise_fn=noise_fn)
        return x, self.toRGB(x, torch.cat([ws[:, 1], gs], dim=1), skip=None)


class DecBlock(nn.Module):
    """Decoder block at ``2 ** res``: ``conv0`` (2x up), + encoder feature, ``conv1``, ``toRGB``;
    styles ``cat(ws[:, 2 res - 9 ...], gs)``."""

    def __init__(self, res, in_channels, out_channels, activation, style_dim, use_noise, demodulate, img_channels):
        super().__init__()
        self.res = res
        self.conv0 = StyleConv(in_channels, out_channels, style_dim, 2 ** res, 3, up=2, use_noise=use_noise,
                               activation=activation, demodulate=demodulate)
        self.conv1 = StyleConv(out_channels, out_channels, style_dim, 2 ** res, 3, use_noise=use_noise,
                               activation=activation, demodulate=demodulate)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim, 1, demodulate=False)

    def forward(self, x, img, ws, gs, e_features, noise_mode="random", noise_fn=None):
        x = self.conv0(x, torch.cat([ws[:, self.res * 2 - 9], gs], dim=1), noise_mode=noise_mode, noise_fn=noise_fn)
        x = x + e_features[self.res]
        x = self.conv1(x, torch.cat([ws[:, self.res * 2 - 8], gs], dim=1), noise_mode=noise_mode, noise_fn=noise_fn)
        return x, self.toRGB(x, torch.cat([ws[:, self.res * 2 - 7], gs], dim=1), skip=img)


class Decoder(nn.Module):
    """``Dec_16x16`` then ``Dec_32x32`` ... ``Dec_RxR`` (official ``Decoder``)."""

    def __init__(self, res_log2, activation, style_dim, use_noise, demodulate, img_channels):
        super().__init__()
        self.Dec_16x16 = DecBlockFirstV2(4, nf(4), nf(4), activation, style_dim, use_noise, demodulate, img_channels)
        for res in range(5, res_log2 + 1):
            setattr(self, f"Dec_{2 ** res}x{2 ** res}",
                    DecBlock(res, nf(res - 1), nf(res), activation, style_dim, use_noise, demodulate, img_channels))
        self.res_log2 = res_log2

    def forward(self, x, ws, gs, e_features, noise_mode="random", noise_fn=None):
        x, img = self.Dec_16x16(x, ws, gs, e_features, noise_mode=noise_mode, noise_fn=noise_fn)
        for res in range(5, self.res_log2 + 1):
            x, img = getattr(self, f"Dec_{2 ** res}x{2 ** res}")(x, img, ws, gs, e_features, noise_mode=noise_mode,
                                                                  noise_fn=noise_fn)
        return img


class SynthesisNet(nn.Module):
    """Both stages (official ``SynthesisNet``): ``(images_in, masks_in, ws)`` -> ``[B, 3, R, R]``."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int = 3, activation: str = "lrelu",
                 use_noise: bool = True, demodulate: bool = True):
        super().__init__()
        resolution_log2 = int(np.log2(img_resolution))
        if img_resolution != 2 ** resolution_log2 or img_resolution < 64:
            raise ValueError(f"MAT's resolution is a power of two >= 64, got {img_resolution}")
        self.num_layers = resolution_log2 * 2 - 3 * 2
        self.img_resolution, self.resolution_log2 = img_resolution, resolution_log2
        self.first_stage = FirstStage(img_channels, img_resolution=img_resolution, w_dim=w_dim, use_noise=False,
                                      demodulate=demodulate)
        self.enc = Encoder(resolution_log2, img_channels, activation)
        self.to_square = FullyConnectedLayer(w_dim, 16 * 16, activation=activation)
        self.to_style = ToStyle(nf(4), nf(2) * 2, activation)
        self.dec = Decoder(resolution_log2, activation, w_dim + nf(2) * 2, use_noise, demodulate, img_channels)

    def forward(self, images_in, masks_in, ws, noise_mode="random", noise_fn=None, keep_fn=None,
                return_stg1=False):
        out_stg1 = self.first_stage(images_in, masks_in, ws, noise_mode=noise_mode, noise_fn=noise_fn,
                                    keep_fn=keep_fn)
        x = images_in * masks_in + out_stg1 * (1 - masks_in)
        x = torch.cat([masks_in - 0.5, x, images_in * masks_in], dim=1)
        e_features = self.enc(x)
        fea_16 = e_features[4]
        # As in the first stage: half the 16x16 features (drawn) replaced by a map of w.
        keep = keep_fn(*fea_16.shape[1:]).to(fea_16) if keep_fn is not None else _official_keep(fea_16)
        add_n = self.to_square(ws[:, 0]).view(-1, 16, 16).unsqueeze(1)
        add_n = F.interpolate(add_n, size=fea_16.size()[-2:], mode="bilinear", align_corners=False)
        fea_16 = fea_16 * keep + add_n * (1 - keep)
        e_features[4] = fea_16
        gs = self.to_style(fea_16)
        img = self.dec(fea_16, ws, gs, e_features, noise_mode=noise_mode, noise_fn=noise_fn)
        img = img * (1 - masks_in) + images_in * masks_in
        return (img, out_stg1) if return_stg1 else img


class Generator(nn.Module):
    """MAT's generator (official ``networks.mat.Generator``; the released models are
    ``Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=512 or 256, img_channels=3)``).

    ``forward(images_in [B, 3, R, R] in [-1, 1], masks_in [B, 1, R, R] (1 = known), z [B, z_dim],
    c, truncation_psi, noise_mode, noise_fn, keep_fn)`` -> ``[B, 3, R, R]``. The network runs at
    exactly ``img_resolution`` (the 16x16 bottleneck maps are fixed-size layers).
    """

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: int = 512,
                 img_channels: int = 3):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # Attribute order = the official state dict's key order.
        self.synthesis = SynthesisNet(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels)
        self.mapping = MappingNet(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.synthesis.num_layers)

    def forward(self, images_in: torch.Tensor, masks_in: torch.Tensor, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1.0, truncation_cutoff: int | None = None, noise_mode: str = "random",
                noise_fn: DrawFn | None = None, keep_fn: KeepFn | None = None,
                return_stg1: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """See the class docstring; ``noise_fn`` / ``keep_fn``: :data:`DrawFn` / :data:`KeepFn`
        (per-sample normal draws / 0-1 maps; module docstring)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(images_in, masks_in, ws, noise_mode=noise_mode, noise_fn=noise_fn, keep_fn=keep_fn,
                              return_stg1=return_stg1)
