"""Fast Fourier convolutions (Chi et al. 2020) and LaMa's FFC ResNet, the one implementation
serving ``lama-ffc`` (:class:`~inpaintbench.methods.feedforward.lama_net.FFCInpaintNet`) and
Big LaMa (:class:`~inpaintbench.methods.feedforward.big_lama_net.BigLamaGenerator`).

An FFC layer splits its channels into a *local* part (ordinary convolutions) and a *global*
part whose convolution happens in the frequency domain (:class:`SpectralTransform`), so every
output pixel sees the whole image from the first residual block on -- the property LaMa
(Suvorov et al. 2022) relies on to fill large holes in one pass.

Feature maps between FFC layers are pairs ``(local, global)``; either part is ``None`` when
the layer has no channels of that kind (ratio 0 or 1).

State-dict names: the module attributes below carry the names of LaMa's
``saicinpainting/training/modules/ffc.py`` (``ffc.convl2l``, ``bn_l``, ``bn_g``,
``convg2g.conv1.0``, ``convg2g.fu.conv_layer``, ``convg2g.fu.bn``, ``conv2``...), and
:func:`ffc_resnet` lays its layers out at the indices of LaMa's ``FFCResNetGenerator.model``.
So the official state dict *is* this module's state dict: the name map from official keys to
ours is the identity (parameter-free modules such as ``act_l`` or ``downsample`` add no keys),
Big LaMa's ``best.ckpt`` loads strictly, and ``lama-ffc``'s committed weights, saved with the
same names, load unchanged. ``tests/test_big_lama.py`` checks the keys against the official class.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintbench.core.errors import InputError

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



def ffc_resnet(input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int,
               ratio_global: float, max_features: int) -> nn.Sequential:
    """LaMa's ``FFCResNetGenerator.model``: one ``nn.Sequential`` with the official indices.

    Layout (the defaults of Big LaMa, ``n_downsampling=3``, ``n_blocks=18``, in brackets):
    ``0`` reflect pad 3, ``1`` 7x7 FFC (all local), ``2..`` ``n_downsampling`` stride-2 3x3 FFCs
    (the last one switches to ``ratio_global`` global channels) [``2``-``4``], ``n_blocks``
    :class:`FFCResnetBlock` [``5``-``22``], :class:`ConcatPair` [``23``], per level a stride-2
    transposed conv + BatchNorm + ReLU [``24``-``32``], reflect pad 3, 7x7 conv, sigmoid
    [``33``-``35``].

    Args:
        input_nc, output_nc: channels in (image + mask) and out.
        ngf: channels after the first layer; doubled at each downsampling up to ``max_features``.
        n_downsampling, n_blocks: encoder depth and number of residual blocks.
        ratio_global: fraction of global (spectral) channels in the residual blocks.
        max_features: cap on the channel count.

    Input ``[B, input_nc, H, W]`` with ``H, W`` multiples of ``2 ** n_downsampling``; output
    ``[B, output_nc, H, W]`` in ``(0, 1)``.
    """

    def width(level: int) -> int:
        return min(max_features, ngf * 2 ** level)

    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        FFCConvBNAct(input_nc, ngf, kernel_size=7, ratio_gin=0.0, ratio_gout=0.0),
    ]
    for level in range(n_downsampling):
        last = level == n_downsampling - 1
        layers.append(FFCConvBNAct(width(level), width(level + 1), kernel_size=3, stride=2, padding=1,
                                   ratio_gin=0.0, ratio_gout=ratio_global if last else 0.0))
    layers += [FFCResnetBlock(width(n_downsampling), ratio_global) for _ in range(n_blocks)]
    layers.append(ConcatPair())
    for level in range(n_downsampling, 0, -1):
        # LaMa's decoder widths: int(ngf * 2**level / 2) capped, i.e. width(level - 1).
        layers += [
            nn.ConvTranspose2d(width(level), width(level - 1), kernel_size=3, stride=2,
                               padding=1, output_padding=1),
            nn.BatchNorm2d(width(level - 1)),
            nn.ReLU(inplace=True),
        ]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Sigmoid()]
    return nn.Sequential(*layers)
