"""Reading the GAN family's weight files without running anything they contain.

* :func:`read_tensors` -- a ``.safetensors`` file or a ``torch.save`` state dict (the MI-GAN and
  CoModGAN releases, ``migan_256_places2.pt`` ...: plain state dicts), read with
  ``torch.load(weights_only=True)`` (or the tensor-only unpickler when torch refuses a global);
  a TorchScript archive (the traced MI-GAN of IOPaint, ``migan_traced.pt``) only with
  ``allow_torchscript=True``, and then as a zip of tensors: its module tree is unpickled into
  inert placeholders and the tensors collected under their attribute paths, so the archive's
  code is never compiled or run;
* :func:`load_strict` -- the tensors into a suite network, every key and shape checked first so
  a mismatched file is one :class:`CheckpointError` line naming the first bad key.

The generic tensor-only unpickler is :mod:`inpaintbench.methods.checkpoint_io`'s (TorchScript
archives: every global of their module tree becomes an inert placeholder).
"""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inpaintbench.methods.checkpoint_io import (
    ANY_GLOBAL,
    CheckpointError,
    Inert,
    _TensorUnpickler,
    is_torchscript,
    read_checkpoint_tensors,
)

__all__ = ["CheckpointError", "is_torchscript", "load_strict", "read_tensors", "read_torchscript_tensors"]


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor], depth: int = 0) -> None:
    # A scripted module unpickles as an inert object whose state is its attribute dict:
    # submodules (inert again), parameters and buffers (tensors), and plain attributes.
    if depth > 64:
        raise CheckpointError("TorchScript module tree nested deeper than 64 levels")
    state = obj.state if isinstance(obj, Inert) else obj
    if not isinstance(state, dict):
        return
    for key, value in state.items():
        if not isinstance(key, str):
            continue
        if isinstance(value, torch.Tensor):
            out[prefix + key] = value
        elif isinstance(value, (Inert, dict)):
            _collect(value, f"{prefix}{key}.", out, depth + 1)


def read_torchscript_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The parameters and buffers of a TorchScript archive (``torch.jit.save``), keyed by their
    attribute paths (``synthesis.b4.conv1.conv1.weight`` ...), without compiling or running the
    archive's code (``code/``, its class definitions, is never read).

    Raises:
        CheckpointError: not a TorchScript archive, or no tensors in it.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            if not pkl or not any("/code/" in n for n in names):
                raise CheckpointError(f"{path} is not a TorchScript archive (no <name>/data.pkl and <name>/code/)")
            prefix = pkl[0].split("/")[0]
            order = f"{prefix}/byteorder"
            if order in names and archive.read(order).strip() != sys.byteorder.encode():
                raise CheckpointError(f"{path} was saved {archive.read(order).decode()}-endian; "
                                      f"this machine is {sys.byteorder}")
            with archive.open(pkl[0]) as file:
                root = _TensorUnpickler(file, (ANY_GLOBAL,), archive, prefix).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} could not be read as a TorchScript archive "
                              f"({type(err).__name__}: {str(err)[:120]})") from err
    tensors: dict[str, torch.Tensor] = {}
    _collect(root, "", tensors)
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors")
    return tensors


def read_tensors(path: str | os.PathLike, *, allow_torchscript: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: ``.safetensors``, a ``torch.save`` state dict, or (only
    with ``allow_torchscript``) a TorchScript archive read as tensors; nothing in the file runs.

    Raises:
        CheckpointError: unreadable, empty, or a TorchScript file without ``allow_torchscript``.
    """
    path = Path(path)
    if path.suffix != ".safetensors" and zipfile.is_zipfile(path) and is_torchscript(path):
        if not allow_torchscript:
            raise CheckpointError(f"{path} is a TorchScript archive; pass allow_torchscript=True to read its "
                                  "tensors (its code is never run), or use the released state dict (.pt) / .safetensors")
        return read_torchscript_tensors(path)
    tensors = read_checkpoint_tensors(path)
    # Saved from a DataParallel wrapper: the same network under "module.".
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def load_strict(net: nn.Module, tensors: dict[str, torch.Tensor], path: str | os.PathLike, what: str) -> nn.Module:
    """Load ``tensors`` into ``net`` with ``strict=True`` after checking every key and shape in
    the network's order, then return ``net`` in eval mode without gradients, on the CPU.

    Raises:
        CheckpointError: one line naming ``path``, ``what`` and the first missing key, the first
            shape mismatch, or the first unexpected key.
    """
    expected = net.state_dict()
    for key, value in expected.items():
        if key not in tensors:
            raise CheckpointError(f"{path} does not match the {what}: key {key!r} is missing")
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path} does not match the {what}: {key!r} has shape "
                                  f"{list(tensors[key].shape)}, expected {list(value.shape)}")
    extra = [k for k in tensors if k not in expected]
    if extra:
        raise CheckpointError(f"{path} does not match the {what}: unexpected key {extra[0]!r}")
    net.load_state_dict({k: tensors[k].float() if tensors[k].is_floating_point() else tensors[k]
                         for k in expected}, strict=True)
    return net.eval().requires_grad_(False)
