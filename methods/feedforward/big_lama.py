"""Big LaMa (Suvorov et al. 2022, "Resolution-robust Large Mask Inpainting with Fourier
Convolutions") as the method ``lama-official``: LaMa's inference conventions around the
project's own generator.

:class:`BigLama` -- LaMa's input ``image * (1 - mask)`` concatenated with the mask, symmetric
padding to a multiple of 8, sigmoid output, crop back. The generator is
:mod:`.big_lama_net` (built from :mod:`.ffc_blocks`); its weights are read by
:mod:`.big_lama_weights` (never running the checkpoint's pickles, :mod:`inpaintbench.methods.checkpoint_io`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.method import Method, Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask, check_image_batch, check_mask_batch
from inpaintbench.methods.checkpoint_io import is_torchscript
from inpaintbench.methods.feedforward.big_lama_net import BIG_LAMA_ARCH
from inpaintbench.methods.feedforward.big_lama_weights import load_big_lama_generator

#: Environment variable naming the official weights when ``checkpoint=`` is not given.
BIG_LAMA_ENV = "INPAINTBENCH_BIG_LAMA"
#: Where users get the weights (nothing is downloaded by the suite).
BIG_LAMA_SOURCES = (
    "the original release big-lama.zip (file big-lama/models/best.ckpt; "
    "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip or the Google Drive folder linked "
    "from https://github.com/advimman/lama), or its generator weights saved as .safetensors; the TorchScript "
    "export big-lama.pt (lama-cleaner / IOPaint) only with allow_torchscript=True"
)

#: LaMa's ``configs/prediction/default.yaml`` ``dataset.pad_out_to_modulo``.
PAD_MODULO = 8


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
            :func:`~inpaintbench.methods.feedforward.big_lama_weights.read_lama_checkpoint`),
            or a ``.safetensors`` file of the generator (``generator.model.*`` or ``model.*`` keys). Default: ``$INPAINTBENCH_BIG_LAMA``.
        allow_torchscript: also accept a TorchScript export (``big-lama.pt`` of lama-cleaner /
            IOPaint, ``forward(image [B,3,H,W] in [0,1], mask [B,1,H,W] 1 = hole)``).
            **Loading TorchScript runs the archive's code**; without this option such a file is
            refused.
        pad_multiple: the padding modulo (LaMa: 8; the generator needs a multiple of 8).
        arch: :class:`~inpaintbench.methods.feedforward.big_lama_net.BigLamaGenerator` keyword
            arguments merged over :data:`BIG_LAMA_ARCH` (e.g. ``{"n_blocks": 9}`` for the LaMa-Fourier checkpoint of
            ``configs/training/generator/ffc_resnet_075.yaml``); ignored for TorchScript.

    Raises:
        MethodUnavailable: no path, a missing file, a refused TorchScript file, or
            (:class:`~inpaintbench.methods.checkpoint_io.CheckpointError`) a file that is not a
            Big LaMa generator checkpoint.
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
