"""Big LaMa (Suvorov et al. 2022, "Resolution-robust Large Mask Inpainting with Fourier
Convolutions"): the project's own generator, the official checkpoint read without running its
pickles, and LaMa's inference conventions (``lama-official``).

Three pieces:

* :class:`BigLamaGenerator` -- LaMa's ``FFCResNetGenerator`` in the Big LaMa configuration
  (``configs/training/big-lama.yaml``, section ``generator``): a 7x7 local convolution, three
  stride-2 downsampling FFC layers (the last one splits its output 25 % local / 75 % global),
  18 FFC residual blocks at 512 channels (75 % global channels, spectral transform without
  LaMa's "local Fourier unit"), three transposed convolutions back up and a 7x7 convolution
  with a sigmoid. Its parameter names are those of the official state dict (the Lightning
  checkpoint's ``generator.model.<i>...`` without the ``generator.`` prefix), so the official
  weights load strictly;
* :func:`read_lama_checkpoint` / :func:`load_big_lama_generator` -- the tensors of a
  ``.safetensors`` file or a ``torch.save`` / PyTorch Lightning checkpoint, never executing
  the pickled objects such a checkpoint also holds (hyper-parameters, callbacks, optimizer
  states may name arbitrary classes);
* :class:`BigLama` -- the method: LaMa's input ``image * (1 - mask)`` concatenated with the
  mask, symmetric padding to a multiple of 8, sigmoid output, crop back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from inpaintbench.api import (
    InputError,
    Method,
    MethodUnavailable,
    Restoration,
    SampleRNG,
    apply_mask,
    check_image_batch,
    check_mask_batch,
)
from inpaintbench.methods.checkpoint_io import ANY_GLOBAL, CheckpointError, is_torchscript, read_checkpoint_tensors

#: Environment variable naming the official weights when ``checkpoint=`` is not given.
BIG_LAMA_ENV = "INPAINTBENCH_BIG_LAMA"
#: Where users get the weights (nothing is downloaded by the suite).
BIG_LAMA_SOURCES = (
    "the original release big-lama.zip (file big-lama/models/best.ckpt; "
    "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip or the Google Drive folder linked "
    "from https://github.com/advimman/lama), or its generator weights saved as .safetensors; the TorchScript "
    "export big-lama.pt (lama-cleaner / IOPaint) only with allow_torchscript=True"
)

#: LaMa's ``configs/training/big-lama.yaml`` generator section, as :class:`BigLamaGenerator` kwargs.
BIG_LAMA_ARCH: dict[str, Any] = {
    "input_nc": 4,          # RGB image with its holes zeroed + the mask
    "output_nc": 3,
    "ngf": 64,
    "n_downsampling": 3,
    "n_blocks": 18,
    "max_features": 1024,
    "ratio_global": 0.75,   # resnet_conv_kwargs ratio_gin = ratio_gout; the init and
                            # downsample convs are local (0), except the last downsample's output
}
#: LaMa's ``configs/prediction/default.yaml`` ``dataset.pad_out_to_modulo``.
PAD_MODULO = 8


# --------------------------------------------------------------------------- the generator
#
# A feature map of an FFC layer is a pair (local, global): the local channels see convolutions,
# the global channels see a convolution in the Fourier domain. Either part may be absent
# (``None``) where LaMa's config gives it no channels. Module and attribute names below are
# fixed by the official state dict (``ffc.convl2l``, ``bn_g``, ``convg2g.fu.conv_layer``...).

Pair = tuple[torch.Tensor, torch.Tensor | None]


def _as_pair(x: torch.Tensor | Pair) -> Pair:
    return x if isinstance(x, tuple) else (x, None)


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


class FourierUnit(nn.Module):
    """A 1x1 convolution + batch norm + ReLU applied to the 2-D real FFT of a feature map.

    The orthonormal ``rfft2`` of ``[B, C, H, W]`` is laid out as ``[B, 2C, H, W // 2 + 1]``
    (channel ``2k`` the real part of channel ``k``, ``2k + 1`` its imaginary part), convolved,
    and transformed back to ``[B, C_out, H, W]``: every output pixel sees the whole image.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * in_channels, 2 * out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H, W]``."""
        b, _, h, w = x.shape
        # In float32 under a bf16/fp16 autocast: FFTs have no reduced-precision kernels and
        # torch.complex rejects bf16 (inpaintbench.acceleration); the output is cast back.
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), norm="ortho")
            z = torch.stack((spectrum.real, spectrum.imag), dim=2).flatten(1, 2)
            z = F.relu(self.bn(self.conv_layer(z)))
            z = z.unflatten(1, (-1, 2))
            return torch.fft.irfft2(torch.complex(z[:, :, 0], z[:, :, 1]), s=(h, w), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    """Global-to-global path of an FFC layer (stride 1; Big LaMa has no local Fourier unit):
    ``conv2(y + fu(y))`` with ``y = relu(bn(conv1(x)))``, all convolutions 1x1 without bias,
    the Fourier unit at half the output width."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        half = out_channels // 2
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, half, kernel_size=1, bias=False),
                                   nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.fu = FourierUnit(half, half)
        self.conv2 = nn.Conv2d(half, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H, W]``."""
        y = self.conv1(x)
        return self.conv2(y + self.fu(y))


class FFC(nn.Module):
    """Fast Fourier convolution (Chi et al. 2020) on a (local, global) pair.

    ``local_out = convl2l(local) + convg2l(global)``, ``global_out = convl2g(local) +
    convg2g(global)``; a path exists only where both its ends have channels. The local
    convolutions (``kernel_size``, ``stride``, ``padding``, reflect padding, no bias) are
    ordinary ones; ``convg2g`` is a :class:`SpectralTransform` (stride 1 only: Big LaMa's
    strided layers have no global input).

    Args:
        in_channels, out_channels: total channels (local + global).
        ratio_gin, ratio_gout: fraction of the input / output channels that are global
            (``int(channels * ratio)`` of them, as LaMa counts).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float,
                 ratio_gout: float, stride: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        in_g = int(in_channels * ratio_gin)
        out_g = int(out_channels * ratio_gout)
        in_l, out_l = in_channels - in_g, out_channels - out_g
        self.in_global, self.out_global = in_g, out_g

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation, bias=False,
                             padding_mode="reflect")

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        if in_g and out_g:
            if stride != 1:
                raise ValueError("a strided FFC with global input and output is not part of Big LaMa")
            self.convg2g = SpectralTransform(in_g, out_g)
        else:
            self.convg2g = None

    def forward(self, x: torch.Tensor | Pair) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(local [B, C_l, H, W], global [B, C_g, H, W] or None)`` -> the same at the output
        widths (spatial size divided by ``stride``)."""
        local, glob = _as_pair(x)

        def run(module: nn.Module | None, t: torch.Tensor | None) -> torch.Tensor | None:
            return None if module is None or t is None else module(t)

        out_l = _add(run(self.convl2l, local), run(self.convg2l, glob))
        out_g = _add(run(self.convl2g, local), run(self.convg2g, glob))
        return out_l, out_g


class FFCNormAct(nn.Module):
    """:class:`FFC` followed by batch norm and ReLU on each part (LaMa's ``FFC_BN_ACT``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float,
                 ratio_gout: float, stride: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride,
                       padding, dilation)
        out_g = self.ffc.out_global
        self.bn_l = nn.BatchNorm2d(out_channels - out_g) if out_channels - out_g else None
        self.bn_g = nn.BatchNorm2d(out_g) if out_g else None

    def forward(self, x: torch.Tensor | Pair) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Pair in, pair out (see :class:`FFC`)."""
        local, glob = self.ffc(x)
        if local is not None and self.bn_l is not None:
            local = F.relu(self.bn_l(local))
        if glob is not None and self.bn_g is not None:
            glob = F.relu(self.bn_g(glob))
        return local, glob


class FFCResBlock(nn.Module):
    """Two 3x3 :class:`FFCNormAct` layers with a residual connection on each part."""

    def __init__(self, channels: int, ratio_global: float):
        super().__init__()
        self.conv1 = FFCNormAct(channels, channels, 3, ratio_global, ratio_global, padding=1)
        self.conv2 = FFCNormAct(channels, channels, 3, ratio_global, ratio_global, padding=1)

    def forward(self, x: torch.Tensor | Pair) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Pair in, pair out, same shapes."""
        local, glob = _as_pair(x)
        out_l, out_g = self.conv2(self.conv1((local, glob)))
        return _add(local, out_l), _add(glob, out_g)


class ConcatParts(nn.Module):
    """(local, global) -> one tensor, local channels first."""

    def forward(self, x: torch.Tensor | Pair) -> torch.Tensor:
        """``[B, C_l, H, W]`` and ``[B, C_g, H, W]`` -> ``[B, C_l + C_g, H, W]``."""
        local, glob = _as_pair(x)
        return local if glob is None else torch.cat((local, glob), dim=1)


class BigLamaGenerator(nn.Module):
    """LaMa's ``FFCResNetGenerator`` (Big LaMa configuration by default).

    ``self.model`` is one ``nn.Sequential`` whose indices are those of the official network,
    so its state dict has the official keys (``model.1.ffc.convl2l.weight``, ...,
    ``model.5.conv1.ffc.convg2g.fu.conv_layer.weight``, ...). With the defaults:
    ``0`` reflection pad 3, ``1`` 7x7 FFC (local only), ``2``-``4`` stride-2 FFCs (the last
    one 25 % local / 75 % global out), ``5``-``22`` residual FFC blocks, ``23`` concatenation,
    ``24``-``32`` three (transposed conv, batch norm, ReLU), ``33`` reflection pad 3, ``34``
    7x7 conv, ``35`` sigmoid.

    Args:
        input_nc, output_nc: channels in (image + mask) and out.
        ngf: width of the first layer; doubles per downsampling, capped at ``max_features``.
        n_downsampling, n_blocks: encoder depth and number of residual blocks.
        max_features: channel cap.
        ratio_global: fraction of global channels in the residual blocks (and of the last
            downsampling layer's output).

    Input ``[B, input_nc, H, W]`` with ``H`` and ``W`` multiples of ``2 ** n_downsampling``;
    output ``[B, output_nc, H, W]`` in ``(0, 1)``.
    """

    def __init__(self, input_nc: int = 4, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 3,
                 n_blocks: int = 18, max_features: int = 1024, ratio_global: float = 0.75):
        super().__init__()
        self.arch = {"input_nc": input_nc, "output_nc": output_nc, "ngf": ngf,
                     "n_downsampling": n_downsampling, "n_blocks": n_blocks,
                     "max_features": max_features, "ratio_global": ratio_global}

        def width(level: int) -> int:
            return min(max_features, ngf * 2 ** level)

        layers: list[nn.Module] = [nn.ReflectionPad2d(3),
                                   FFCNormAct(input_nc, ngf, 7, 0.0, 0.0)]
        for level in range(n_downsampling):
            last = level == n_downsampling - 1
            layers.append(FFCNormAct(width(level), width(level + 1), 3, 0.0,
                                     ratio_global if last else 0.0, stride=2, padding=1))
        layers += [FFCResBlock(width(n_downsampling), ratio_global) for _ in range(n_blocks)]
        layers.append(ConcatParts())
        for level in range(n_downsampling, 0, -1):
            # LaMa's decoder widths: int(ngf * 2**level / 2) capped, i.e. width(level - 1).
            layers += [nn.ConvTranspose2d(width(level), width(level - 1), kernel_size=3, stride=2,
                                          padding=1, output_padding=1),
                       nn.BatchNorm2d(width(level - 1)), nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)
        self.multiple = 2 ** n_downsampling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, input_nc, H, W]`` (H, W multiples of ``2 ** n_downsampling``) ->
        ``[B, output_nc, H, W]`` in ``(0, 1)``."""
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise InputError(f"BigLamaGenerator needs H and W divisible by {self.multiple}, got {h}x{w}")
        return self.model(x)


# --------------------------------------------------------------------------- reading checkpoints

def read_lama_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a LaMa weights file (:func:`~inpaintbench.methods.checkpoint_io.read_checkpoint_tensors`
    with every foreign global inert: a Lightning ``best.ckpt`` pickles hyper-parameters,
    callbacks and omegaconf objects of arbitrary classes beside the state dict)."""
    return read_checkpoint_tensors(path, inert=(ANY_GLOBAL,))


def generator_state(tensors: dict[str, torch.Tensor], path: str | os.PathLike = "<memory>") -> dict[str, torch.Tensor]:
    """The generator's tensors of a LaMa checkpoint, keys relative to :class:`BigLamaGenerator`:
    a Lightning ``state_dict`` (``generator.model.*``, the discriminator and losses dropped)
    or a bare generator state dict (``model.*``).

    Raises:
        CheckpointError: neither kind of key is present.
    """
    if any(k.startswith("generator.") for k in tensors):
        return {k.removeprefix("generator."): v for k, v in tensors.items() if k.startswith("generator.")}
    if any(k.startswith("model.") for k in tensors):
        return dict(tensors)
    first = next(iter(tensors))
    raise CheckpointError(f"{path} holds no LaMa generator weights: no 'generator.model.*' or 'model.*' keys "
                          f"(first key {first!r})")


def load_big_lama_generator(path: str | os.PathLike, arch: dict[str, Any] | None = None) -> BigLamaGenerator:
    """A :class:`BigLamaGenerator` (``arch``, default :data:`BIG_LAMA_ARCH`) with the weights of
    ``path`` loaded strictly, in eval mode, on the CPU.

    Raises:
        CheckpointError: the file is unreadable, or its keys / shapes differ from the
            architecture's; the message names the file and the first mismatched key.
    """
    net = BigLamaGenerator(**(arch or BIG_LAMA_ARCH))
    state = generator_state(read_lama_checkpoint(path), path)
    expected = net.state_dict()
    for key, value in expected.items():  # in module order: the first difference is the telling one
        if key not in state:
            raise CheckpointError(f"{path} does not match the Big LaMa generator: key {key!r} is missing")
        if state[key].shape != value.shape:
            raise CheckpointError(f"{path} does not match the Big LaMa generator: {key!r} has shape "
                                  f"{list(state[key].shape)}, expected {list(value.shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"{path} does not match the Big LaMa generator: unexpected key {extra[0]!r}")
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


# --------------------------------------------------------------------------- inference

def pad_symmetric(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``[B, C, H, W]`` at the bottom and right to multiples of ``multiple`` by mirroring
    with the edge pixel repeated -- ``np.pad(mode="symmetric")``, as LaMa's
    ``pad_img_to_modulo`` pads its inputs. Paddings longer than the image keep mirroring."""
    for dim in (-2, -1):
        size = x.shape[dim]
        missing = -size % multiple
        while missing:
            chunk = min(missing, x.shape[dim])
            x = torch.cat((x, x.narrow(dim, x.shape[dim] - chunk, chunk).flip(dim)), dim=dim)
            missing -= chunk
    return x


def _resolve_checkpoint(checkpoint: str | os.PathLike | None) -> Path:
    source = checkpoint if checkpoint is not None else os.environ.get(BIG_LAMA_ENV)
    if not source:
        raise MethodUnavailable(f"lama-official needs the official Big LaMa weights: pass checkpoint=PATH or set "
                                f"${BIG_LAMA_ENV}. Get {BIG_LAMA_SOURCES}.")
    path = Path(source).expanduser()
    if not path.is_file():
        raise MethodUnavailable(f"official Big LaMa weights not found: {path} does not exist. Get {BIG_LAMA_SOURCES}.")
    return path


def _refuse_torchscript(path: Path, allow_torchscript: bool) -> bool:
    scripted = is_torchscript(path)
    if scripted and not allow_torchscript:
        raise MethodUnavailable(f"{path} is a TorchScript archive: loading it runs the code it contains; pass "
                                "allow_torchscript=True if you trust it, or use best.ckpt / a .safetensors file")
    return scripted


class BigLama(Method):
    """The official Big LaMa model (Places2, RGB) on the project's own generator (``lama-official``).

    Inference as LaMa's ``bin/predict.py`` (``configs/prediction/default.yaml``): the input is
    ``image * (1 - mask)`` concatenated with the mask (4 channels), padded at the bottom and
    right by symmetric mirroring (``np.pad(mode="symmetric")`` of LaMa's ``pad_img_to_modulo``)
    to a multiple of 8 (``pad_out_to_modulo: 8``); the generator's sigmoid output is cropped
    back. The raw output is returned; the harness composites it, as LaMa's ``inpainted`` does.
    Grey images are repeated to RGB and the three output channels averaged back to one.

    Args:
        checkpoint: the weights: LaMa's PyTorch Lightning ``big-lama/models/best.ckpt`` (its
            ``generator.*`` tensors, read without running its pickled objects, see
            :func:`read_lama_checkpoint`), or a ``.safetensors`` file of the generator
            (``generator.model.*`` or ``model.*`` keys). Default: ``$INPAINTBENCH_BIG_LAMA``.
        allow_torchscript: also accept a TorchScript export (``big-lama.pt`` of lama-cleaner /
            IOPaint, ``forward(image [B,3,H,W] in [0,1], mask [B,1,H,W] 1 = hole)``).
            **Loading TorchScript runs the archive's code**; without this option such a file is
            refused.
        pad_multiple: the padding modulo (LaMa: 8; the generator needs a multiple of 8).
        arch: :class:`BigLamaGenerator` keyword arguments merged over :data:`BIG_LAMA_ARCH`
            (e.g. ``{"n_blocks": 9}`` for the LaMa-Fourier checkpoint of
            ``configs/training/generator/ffc_resnet_075.yaml``); ignored for TorchScript.

    Raises:
        MethodUnavailable: no path, a missing file, a refused TorchScript file, or
            (:class:`CheckpointError`) a file that is not a Big LaMa generator checkpoint.
    """

    def __init__(self, checkpoint: str | None = None, allow_torchscript: bool = False,
                 pad_multiple: int = PAD_MODULO, arch: dict[str, Any] | None = None):
        super().__init__(checkpoint=checkpoint, allow_torchscript=allow_torchscript, pad_multiple=pad_multiple,
                         arch=arch)
        if pad_multiple < 1 or pad_multiple % PAD_MODULO:
            raise InputError(f"pad_multiple must be a positive multiple of {PAD_MODULO}, got {pad_multiple}")
        path = _resolve_checkpoint(checkpoint)
        self.pad_multiple = pad_multiple
        self.loaded_files = [str(path)]
        self.scripted = _refuse_torchscript(path, allow_torchscript)
        if self.scripted:
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
        else:
            self.model = load_big_lama_generator(path, {**BIG_LAMA_ARCH, **(arch or {})})

    @classmethod
    def check_available(cls, checkpoint: str | None = None, allow_torchscript: bool = False,
                        **_: Any) -> None:
        """Raise :class:`MethodUnavailable` when :class:`BigLama` with these arguments cannot
        be built for want of a file, without loading it (``inpaintbench list methods --check``
        must not read a 200 MB checkpoint): the path is resolved, it must exist, and a
        TorchScript file needs ``allow_torchscript``. A corrupt file is found when built."""
        _refuse_torchscript(_resolve_checkpoint(checkpoint), allow_torchscript)

    def to(self, device: torch.device | str) -> "BigLama":
        super().to(device)
        self.model.to(self.device)
        return self

    def _forward_rgb(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        m = mask.to(image.dtype)
        x = pad_symmetric(torch.cat((image * (1.0 - m), m), dim=1), self.pad_multiple)
        if self.scripted:
            out = self.model(x[:, :3], x[:, 3:])
        else:
            out = self.model(x)
        return out[..., :h, :w]

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *, rng: SampleRNG) -> Restoration:
        """Raw output, float32 ``[B, C, H, W]`` in ``[0, 1]`` (C = 1 or 3, as the input), one
        network evaluation per image. Deterministic: ``rng`` is not drawn from."""
        check_image_batch(image)
        if mask is None:
            raise InputError(f"{self.name} needs the mask (it is not a blind method)")
        check_mask_batch(mask, image)
        x, m = apply_mask(image, mask).to(self.device), mask.to(self.device)
        grey = x.shape[1] == 1
        out = self._forward_rgb(x.expand(-1, 3, -1, -1) if grey else x, m)
        if grey:
            out = out.mean(dim=1, keepdim=True)
        return Restoration(out.float().clamp_(0.0, 1.0).to(image.device), {"nfe": 1.0})
