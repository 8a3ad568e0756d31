"""Weights I/O of ``lama-ffc``'s network: ``model.safetensors`` (the state dict, LaMa's key
names) plus ``config.json`` (the :class:`~inpaintbench.methods.feedforward.lama_net.FFCInpaintNet`
keyword arguments that rebuild it). Loading rebuilds the network in code: nothing in a weights
folder is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from inpaintbench.core.errors import MethodUnavailable
from inpaintbench.methods.feedforward.lama_net import FFCInpaintNet

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_ffc_net(net: FFCInpaintNet, arch: dict[str, Any], folder: str | os.PathLike) -> None:
    """Write ``net`` to ``folder`` as ``model.safetensors`` plus ``config.json`` holding ``arch``
    (the :class:`FFCInpaintNet` keyword arguments that rebuild it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(arch, indent=2, sort_keys=True) + "\n")


def check_ffc_files(folder: str | os.PathLike, *, missing_hint: str | None = None) -> Path:
    """``folder`` expanded; :class:`MethodUnavailable` naming the first of ``config.json`` /
    ``model.safetensors`` it lacks, with ``missing_hint``. Nothing is read."""
    folder = Path(folder).expanduser()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            hint = missing_hint or "Pass weights= a folder written by `inpaintbench train lama` (its final/ folder)."
            raise MethodUnavailable(f"LaMa-FFC weights not found: {folder / name} does not exist. {hint}")
    return folder


def load_ffc_net(folder: str | os.PathLike, *, missing_hint: str | None = None) -> FFCInpaintNet:
    """The :class:`FFCInpaintNet` saved by :func:`save_ffc_net` in ``folder``, in eval mode.

    Args:
        folder: holds ``config.json`` and ``model.safetensors``.
        missing_hint: the sentence telling how to get a missing file (default: pass a folder
            written by ``inpaintbench train lama``).

    Raises:
        MethodUnavailable: ``config.json`` or ``model.safetensors`` is missing (the message
            names the file and ``missing_hint``).
    """
    folder = check_ffc_files(folder, missing_hint=missing_hint)
    arch = json.loads((folder / CONFIG_FILE).read_text())
    net = FFCInpaintNet(**arch)
    net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return net.eval().requires_grad_(False)
