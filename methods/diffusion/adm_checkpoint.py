"""Safe, strict loading of guided-diffusion (ADM) checkpoints.

``torch.load(..., weights_only=True)`` (nothing in a file runs), every key and shape checked
against the architecture before anything is loaded, one error line naming the file and the
first mismatch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.methods.diffusion.adm_config import ADMConfig, resolve_adm
from inpaintbench.methods.diffusion.adm_network import ADMUNet

__all__ = ["check_state_dict", "load_adm", "load_adm_state_dict", "require_adm_file"]


def check_state_dict(model: nn.Module, state: Mapping[str, Any], source: str) -> None:
    """Compare ``state`` with ``model``'s parameters and buffers before anything is loaded.

    Raises:
        InputError: one line naming ``source`` and the first mismatch in the model's order: a
            key missing from the file, a shape that differs, a value that is not a floating
            tensor; then the first key the file has that the model does not.
    """
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise InputError(f"{source}: key {key!r} of the ADM architecture is missing from the file "
                             f"(first mismatch; wrong adm= preset or not an ADM checkpoint?)")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{source}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(tensor.shape):
            raise InputError(f"{source}: {key!r} has shape {list(value.shape)} in the file but "
                             f"{list(tensor.shape)} in the ADM architecture (first mismatch; wrong adm= preset?)")
        if not value.is_floating_point():
            raise InputError(f"{source}: {key!r} has dtype {value.dtype}, expected a floating tensor")
    for key in state:
        if key not in expected:
            raise InputError(f"{source}: key {key!r} in the file is not part of the ADM architecture "
                             f"(first mismatch; wrong adm= preset, e.g. class_cond or a different model?)")


def require_adm_file(path: str | os.PathLike) -> Path:
    """``path`` expanded; :class:`MethodUnavailable` naming it (and where the URLs are listed)
    when it is not a file. Nothing is read."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MethodUnavailable(f"ADM checkpoint {p} not found (download it: `inpaintbench weights` lists the URLs)")
    return p


def load_adm_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a guided-diffusion ``.pt`` state dict without executing anything from it.

    ``torch.load(path, map_location="cpu", weights_only=True)``: the restricted unpickler
    only builds tensors and plain containers; a pickle asking for any other callable (a
    ``__reduce__`` that would run code) is refused before it runs.

    Raises:
        MethodUnavailable: the file does not exist.
        InputError: the file is not a readable tensor checkpoint (truncated, random bytes, a
            pickle with code, a non-dict), one line naming the file.
    """
    p = require_adm_file(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    # Any failure of the restricted unpickler or the zip reader means "not a safe checkpoint";
    # it is re-raised as one line naming the file (the cause stays chained).
    except Exception as err:  # noqa: BLE001
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{p}: not a loadable ADM checkpoint ({type(err).__name__}: {reason[:300]})") from err
    if not isinstance(state, Mapping):
        raise InputError(f"{p}: expected a state dict (a mapping of names to tensors), got {type(state).__name__}")
    return dict(state)


def load_adm(path: str | os.PathLike, adm: str | os.PathLike | Mapping[str, Any] | ADMConfig) -> ADMUNet:
    """Build :class:`ADMUNet` for ``adm`` (:func:`resolve_adm`) and load the checkpoint at
    ``path`` into it strictly (:func:`load_adm_state_dict`, :func:`check_state_dict`, then
    ``load_state_dict(strict=True)``). Returns the network in eval mode on the CPU."""
    config = resolve_adm(adm)
    state = load_adm_state_dict(path)
    model = ADMUNet(config)
    check_state_dict(model, state, str(Path(path).expanduser()))
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)
