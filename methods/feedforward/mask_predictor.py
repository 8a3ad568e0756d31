"""Blind hole detection: the predictor that lets a known-mask method run blind.

Blind methods receive only the corrupted image (holes zero-filled, see
:class:`inpaintbench.core.method.Method`). :class:`MaskPredictor` turns such an image into a predicted
hole mask, so that a known-mask method (ILVR: ``ilvr-predicted-mask``) can run blind. Its
network is :mod:`.mask_predictor_net`, its weights I/O :mod:`.mask_predictor_weights`; it is
trained by :mod:`.mask_predictor_train` and scored by :mod:`.mask_predictor_eval`.

A zero-filled hole is indistinguishable from a genuinely black known pixel: on MNIST (white
digits on black) every hole pixel on the background is undetectable, which the evaluation
reports honestly.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import check_image_batch
from inpaintbench.methods import WEIGHTS_DIR
from inpaintbench.methods.feedforward.mask_predictor_net import MaskPredictorUNet
from inpaintbench.methods.feedforward.mask_predictor_weights import check_mask_predictor_files, load_mask_predictor

#: The committed MNIST predictor (``model.safetensors`` + ``config.json``).
MNIST_WEIGHTS = WEIGHTS_DIR / "mask-predictor-mnist"
#: The command that (re)creates :data:`MNIST_WEIGHTS` (see its TRAINING.md).
MNIST_TRAIN_COMMAND = (
    "inpaintbench train mask-predictor --config methods/configs/mask-predictor-mnist.toml "
    "--data-root ../shared/data --out runs/mask-predictor-mnist, then copy "
    "runs/mask-predictor-mnist/final/* to methods/weights/mask-predictor-mnist/"
)


def _missing_hint(folder: Path) -> str | None:
    """How to recreate a missing predictor: the training command for the committed one."""
    return f"Create it with: {MNIST_TRAIN_COMMAND}." if folder == MNIST_WEIGHTS else None


class MaskPredictor:
    """A trained :class:`MaskPredictorUNet` plus its decision rule.

    Args:
        net: the network (put in eval mode, gradients off).
        threshold: hole probability above which a pixel is predicted as a hole.
    """

    def __init__(self, net: MaskPredictorUNet, threshold: float = 0.5):
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold must lie in (0, 1), got {threshold}")
        self.net = net.eval().requires_grad_(False)
        self.threshold = float(threshold)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike = MNIST_WEIGHTS, *, threshold: float | None = None,
                        device: str | torch.device = "cpu") -> "MaskPredictor":
        """Load ``path/config.json`` and ``path/model.safetensors`` (as written by
        :meth:`MaskPredictorTask.export`); ``threshold`` None: the one saved in the config.

        Raises:
            MethodUnavailable: a file is missing; the message says how to create it.
        """
        folder = Path(path).expanduser()
        net, config = load_mask_predictor(folder, missing_hint=_missing_hint(folder))
        chosen = config.get("threshold", 0.5) if threshold is None else threshold
        return cls(net.to(device), threshold=chosen)

    @classmethod
    def check_available(cls, path: str | os.PathLike = MNIST_WEIGHTS) -> None:
        """Raise :class:`~inpaintbench.core.errors.MethodUnavailable` naming the missing file
        where :meth:`from_pretrained` of ``path`` would fail for want of one; nothing is read."""
        folder = Path(path).expanduser()
        check_mask_predictor_files(folder, missing_hint=_missing_hint(folder))

    def to(self, device: torch.device | str) -> "MaskPredictor":
        """Move the network to ``device``; returns ``self``."""
        self.net.to(device)
        return self

    @torch.no_grad()
    def probabilities(self, corrupted: torch.Tensor) -> torch.Tensor:
        """Hole probabilities: float32 ``[B, 1, H, W]`` in ``[0, 1]`` for a corrupted image
        float32 ``[B, C, H, W]`` in ``[0, 1]`` (holes zero-filled)."""
        check_image_batch(corrupted, "corrupted image")
        return torch.sigmoid(self.net(corrupted))

    def predict(self, corrupted: torch.Tensor) -> torch.Tensor:
        """Predicted holes: bool ``[B, 1, H, W]``, True = hole.

        A pixel is predicted as a hole when its probability exceeds the threshold *and* it is
        zero in every channel: the harness zero-fills holes, so a non-zero pixel is known.
        """
        zero = (corrupted == 0).all(dim=1, keepdim=True)
        return (self.probabilities(corrupted) > self.threshold) & zero
