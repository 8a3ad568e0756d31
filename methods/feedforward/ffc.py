"""Fast Fourier convolutions (Chi et al. 2020) and the LaMa inpainting network built from them.

An FFC layer splits its channels into a *local* part (ordinary convolutions) and a *global*
part whose convolution happens in the frequency domain (:class:`SpectralTransform`), so every
output pixel sees the whole image from the first residual block on -- the property LaMa
(Suvorov et al. 2022) relies on to fill large holes in one pass.

Feature maps between FFC layers are pairs ``(local, global)``; either part is ``None`` when
the layer has no channels of that kind (ratio 0 or 1).

The attribute names and the layer order of :class:`FFCInpaintNet` follow LaMa's
``FFCResNetGenerator`` on purpose: the official big-lama generator weights then load by name
(see :mod:`inpaintbench.methods.feedforward.lama`).
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.core.errors import InputError
# The old name, kept for callers outside the package (tests/test_lama.py); new code imports seeded_init_.

#: ``(local, global)`` feature maps, ``[B, C_local, H, W]`` and ``[B, C_global, H, W]``.
FeaturePair = tuple[torch.Tensor | None, torch.Tensor | None]


def split_channels(channels: int, ratio_global: float) -> tuple[int, int]:
    """``(local, global)`` channel counts of ``channels`` with a fraction ``ratio_global``
    (in ``[0, 1]``) global; the global count is rounded down, as in LaMa."""
    if not 0.0 <= ratio_global <= 1.0:
        raise InputError(f"ratio of global channels must lie in [0, 1], got {ratio_global}")
    n_global = int(channels * ratio_global)
    return channels - n_global, n_global


class FourierUnit(nn.Module):
    """A 1x1 convolution applied to the 2-D real FFT of the input.

    Input ``[B, C_in, H, W]`` -> output ``[B, C_out, H, W]`` (any ``H, W``). The spectrum's
    real and imaginary parts become ``2 * C`` channels, interleaved per channel
    (``c0.re, c0.im, c1.re, ...``, LaMa's order), pass through conv -> BatchNorm -> ReLU and
    are transformed back. ``norm="ortho"`` keeps the energy of the signal independent of the
    image size, so a model trained at 28 px behaves sensibly at other sizes.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * in_channels, 2 * out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        # FFTs have no reduced-precision kernels and complex tensors no bf16: the unit runs in
        # float32 under a bf16/fp16 autocast (inpaintbench.harness.acceleration), its output cast back.
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), norm="ortho")  # [B, C, H, W//2+1] complex
            w_half = spectrum.shape[-1]
            z = torch.view_as_real(spectrum).permute(0, 1, 4, 2, 3).reshape(b, -1, h, w_half)
            z = self.relu(self.bn(self.conv_layer(z)))
            z = z.reshape(b, -1, 2, h, w_half).permute(0, 1, 3, 4, 2).contiguous()
            return torch.fft.irfft2(torch.view_as_complex(z), s=(h, w), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    """The global-to-global branch of an FFC: 1x1 conv to half width, a residual
    :class:`FourierUnit`, 1x1 conv back.

    ``[B, C_in, H, W]`` -> ``[B, C_out, H/stride, W/stride]``; ``stride`` is 1 or 2 (2 average-
    pools first). LaMa's optional "local Fourier unit" is left out: big-lama disables it.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if stride not in (1, 2):
            raise InputError(f"SpectralTransform stride must be 1 or 2, got {stride}")
        hidden = out_channels // 2
        self.downsample = nn.AvgPool2d(kernel_size=2, stride=2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(hidden, hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.downsample(x))
        return self.conv2(x + self.fu(x))


def _sum_branches(*terms: tuple[nn.Module | None, torch.Tensor | None]) -> torch.Tensor:
    outputs = [module(x) for module, x in terms if module is not None and x is not None]
    if not outputs:
        raise InputError("FFC layer received no input for a branch it must produce")
    return outputs[0] if len(outputs) == 1 else sum(outputs[1:], outputs[0])


class FFC(nn.Module):
    """One fast Fourier convolution.

    Four paths between the local (``l``) and global (``g``) channel groups: ``l2l``, ``l2g``
    and ``g2l`` are ordinary ``kernel_size`` convolutions, ``g2g`` is a
    :class:`SpectralTransform`. Input: a tensor (all local) or a :data:`FeaturePair`; output:
    a :data:`FeaturePair` with ``ratio_gout`` of ``out_channels`` global.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 ratio_gin: float, ratio_gout: float, stride: int = 1, padding: int = 0,
                 dilation: int = 1, padding_mode: str = "reflect"):
        super().__init__()
        in_l, in_g = split_channels(in_channels, ratio_gin)
        out_l, out_g = split_channels(out_channels, ratio_gout)
        self.out_local, self.out_global = out_l, out_g

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding,
                             dilation=dilation, bias=False, padding_mode=padding_mode)

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g, stride) if in_g and out_g else None

    def forward(self, x: torch.Tensor | FeaturePair) -> FeaturePair:
        x_l, x_g = x if isinstance(x, tuple) else (x, None)
        out_l = _sum_branches((self.convl2l, x_l), (self.convg2l, x_g)) if self.out_local else None
        out_g = _sum_branches((self.convl2g, x_l), (self.convg2g, x_g)) if self.out_global else None
        return out_l, out_g


class FFCConvBNAct(nn.Module):
    """:class:`FFC` followed by BatchNorm and ReLU on each channel group (LaMa's FFC_BN_ACT).
    Arguments as for :class:`FFC`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 ratio_gin: float, ratio_gout: float, stride: int = 1, padding: int = 0,
                 dilation: int = 1, padding_mode: str = "reflect"):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout,
                       stride, padding, dilation, padding_mode)
        out_l, out_g = self.ffc.out_local, self.ffc.out_global
        self.bn_l = nn.BatchNorm2d(out_l) if out_l else None
        self.bn_g = nn.BatchNorm2d(out_g) if out_g else None
        self.act_l = nn.ReLU(inplace=True)
        self.act_g = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor | FeaturePair) -> FeaturePair:
        x_l, x_g = self.ffc(x)
        if x_l is not None:
            x_l = self.act_l(self.bn_l(x_l))
        if x_g is not None:
            x_g = self.act_g(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """Two 3x3 :class:`FFCConvBNAct` with a residual connection on both channel groups.
    Maps a :data:`FeaturePair` of ``channels`` (``ratio_global`` global) to the same shapes."""

    def __init__(self, channels: int, ratio_global: float = 0.75, dilation: int = 1,
                 padding_mode: str = "reflect"):
        super().__init__()
        kwargs = dict(kernel_size=3, ratio_gin=ratio_global, ratio_gout=ratio_global,
                      padding=dilation, dilation=dilation, padding_mode=padding_mode)
        self.conv1 = FFCConvBNAct(channels, channels, **kwargs)
        self.conv2 = FFCConvBNAct(channels, channels, **kwargs)

    def forward(self, x: FeaturePair) -> FeaturePair:
        y_l, y_g = self.conv2(self.conv1(x))
        x_l, x_g = x
        return (None if y_l is None else x_l + y_l), (None if y_g is None else x_g + y_g)


class ConcatPair(nn.Module):
    """:data:`FeaturePair` -> one tensor, local channels first."""

    def forward(self, x: FeaturePair) -> torch.Tensor:
        parts = [t for t in x if t is not None]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class FFCInpaintNet(nn.Module):
    """LaMa's generator: input = masked image + mask, output = the whole image in ``[0, 1]``.

    Layout (``self.model``, indices as in LaMa so official weights load by name): reflect pad 3,
    7x7 FFC (all local), ``n_downsampling`` stride-2 3x3 FFCs (the last one switches to
    ``ratio_global`` global channels), ``n_blocks`` :class:`FFCResnetBlock`, concat, as many
    stride-2 transposed convolutions with BatchNorm + ReLU, reflect pad 3, 7x7 conv, sigmoid.

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

        def width(level: int) -> int:
            return min(max_features, ngf * 2 ** level)

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FFCConvBNAct(image_channels + 1, ngf, kernel_size=7, ratio_gin=0.0, ratio_gout=0.0),
        ]
        for level in range(n_downsampling):
            last = level == n_downsampling - 1
            layers.append(FFCConvBNAct(width(level), width(level + 1), kernel_size=3, stride=2, padding=1,
                                       ratio_gin=0.0, ratio_gout=ratio_global if last else 0.0))
        layers += [FFCResnetBlock(width(n_downsampling), ratio_global) for _ in range(n_blocks)]
        layers.append(ConcatPair())
        for level in range(n_downsampling, 0, -1):
            layers += [
                nn.ConvTranspose2d(width(level), width(level - 1), kernel_size=3, stride=2,
                                   padding=1, output_padding=1),
                nn.BatchNorm2d(width(level - 1)),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, image_channels, kernel_size=7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

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
