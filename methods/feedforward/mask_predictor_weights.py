"""Weights I/O of the hole predictor: ``model.safetensors`` (the
:class:`~inpaintbench.methods.feedforward.mask_predictor_net.MaskPredictorUNet` state dict) plus
``config.json`` (``architecture``, ``threshold``, ``trained_on_families``). Loading rebuilds the
network in code: nothing in a weights folder is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from safetensors.torch import load_file, save_file

from inpaintbench.core.errors import MethodUnavailable
from inpaintbench.methods.feedforward.mask_predictor_net import MaskPredictorUNet

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_mask_predictor(net: MaskPredictorUNet, threshold: float, families: Sequence[str],
                        folder: str | os.PathLike) -> None:
    """Write ``net`` to ``folder`` (created): ``model.safetensors`` and ``config.json`` holding
    its architecture, the decision ``threshold`` (a probability in ``(0, 1)``) and the mask
    ``families`` it was trained on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
              str(folder / WEIGHTS_FILE))
    config = {"architecture": net.config, "threshold": threshold, "trained_on_families": list(families)}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def check_mask_predictor_files(folder: str | os.PathLike, *, missing_hint: str | None = None) -> Path:
    """``folder`` expanded; :class:`MethodUnavailable` naming the first of ``config.json`` /
    ``model.safetensors`` it lacks, with ``missing_hint`` (default: pass a folder written by
    ``MaskPredictorTask.export``). Nothing is read."""
    folder = Path(folder).expanduser()
    for needed in (folder / CONFIG_FILE, folder / WEIGHTS_FILE):
        if not needed.is_file():
            hint = missing_hint or (f"Pass a folder holding {CONFIG_FILE} and {WEIGHTS_FILE} written by "
                                    "MaskPredictorTask.export.")
            raise MethodUnavailable(f"mask predictor weights not found: {needed} does not exist. {hint}")
    return folder


def load_mask_predictor(folder: str | os.PathLike, *, missing_hint: str | None = None
                        ) -> tuple[MaskPredictorUNet, dict[str, Any]]:
    """The network saved by :func:`save_mask_predictor` in ``folder`` (on the CPU) and the
    saved ``config.json`` dict.

    Raises:
        MethodUnavailable: a file is missing; the message names it and ``missing_hint``
            (default: pass a folder written by ``MaskPredictorTask.export``).
    """
    folder = check_mask_predictor_files(folder, missing_hint=missing_hint)
    config = json.loads((folder / CONFIG_FILE).read_text())
    net = MaskPredictorUNet(**config["architecture"])
    net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return net, config
