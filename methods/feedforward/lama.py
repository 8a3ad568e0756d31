"""LaMa (Suvorov et al. 2022): single-pass inpainting with fast Fourier convolutions, as the
method ``lama-ffc`` (the official Big LaMa is :mod:`inpaintbench.methods.feedforward.big_lama`,
``lama-official``).

:class:`LamaFFC` runs an :class:`~inpaintbench.methods.feedforward.lama_net.FFCInpaintNet`
(default: the committed MNIST model) loaded by :mod:`.lama_weights`; the ``lama`` trainer that
makes such models is :mod:`.lama_train`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Method, Restoration, trained_shape_refusal
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask, check_image_batch, check_mask_batch
from inpaintbench.methods import WEIGHTS_DIR, resolve_weights
from inpaintbench.methods.feedforward.lama_weights import check_ffc_files, load_ffc_net

#: The committed MNIST model (``config.json`` + ``model.safetensors`` + ``TRAINING.md``).
MNIST_WEIGHTS = WEIGHTS_DIR / "lama-ffc-mnist"
#: The command that (re)creates :data:`MNIST_WEIGHTS`.
MNIST_TRAIN_COMMAND = (
    "inpaintbench train lama --config methods/configs/lama-mnist.toml --data-root ../shared/data "
    "--out runs/lama-mnist, then copy runs/lama-mnist/final/* to methods/weights/lama-ffc-mnist/"
)


def _weights_folder(weights: str | None) -> tuple[str | Path, str | None]:
    """The folder of ``weights`` (None: the committed model) and how to recreate it when missing."""
    folder = resolve_weights(weights, MNIST_WEIGHTS)
    is_default = Path(folder).expanduser().resolve() == MNIST_WEIGHTS
    return folder, (f"Create it with: {MNIST_TRAIN_COMMAND}." if is_default else None)


class LamaFFC(Method):
    """LaMa-style FFC inpainting network, one forward pass per image.

    Args:
        weights: folder with ``config.json`` + ``model.safetensors`` (written by
            ``inpaintbench train lama``) or a committed model's name (``"lama-ffc-celeba32"``);
            default: the committed MNIST model (:data:`MNIST_WEIGHTS`, 28x28 grey digits).

    Images must have the channel count the network was trained on (a grey model is never run
    silently channel by channel on photographs); being fully convolutional like LaMa, it runs
    at any size divisible by ``2 ** n_downsampling`` (an explicit adaptation: quality away
    from the training size is what the benchmark then measures).

    Raises:
        MethodUnavailable: the weights are missing (the message says how to make them).
    """

    def __init__(self, weights: str | None = None):
        super().__init__(weights=weights)
        folder, hint = _weights_folder(weights)
        self.net = load_ffc_net(folder, missing_hint=hint)
        self.loaded_files = [str(folder)]

    @classmethod
    def check_available(cls, weights: str | None = None, **_: object) -> None:
        """Raise :class:`~inpaintbench.core.errors.MethodUnavailable` naming the missing file
        where building with ``weights`` would fail for want of one; nothing is read."""
        folder, hint = _weights_folder(weights)
        check_ffc_files(folder, missing_hint=hint)

    def to(self, device: torch.device | str) -> "LamaFFC":
        super().to(device)
        self.net.to(self.device)
        return self

    def accepts(self, channels: int, height: int, width: int) -> str | None:
        """The training channels; any size (fully convolutional, padded to its multiple)."""
        who = f"{self.name} (weights {self.config.get('weights') or 'lama-ffc-mnist'})"
        return trained_shape_refusal(who, (self.net.image_channels, height, width), (channels, height, width),
                                     any_size=True, hint="pass weights= of a model trained on such images "
                                     "(lama-ffc-celeba32 for RGB)")

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *,
                rng: SampleRNG) -> Restoration:
        """Raw network output, float32 ``[B, C, H, W]`` in ``[0, 1]``, one network evaluation
        per image. Deterministic: ``rng`` is not drawn from."""
        check_image_batch(image)
        if mask is None:
            raise InputError(f"{self.name} needs the mask (it is not a blind method)")
        check_mask_batch(mask, image)
        x, m = image.to(self.device), mask.to(self.device)
        if image.shape[1] != self.net.image_channels:
            raise InputError(f"{self.name} was trained on {self.net.image_channels}-channel images, got "
                             f"{image.shape[1]} channels; pass weights= of a model trained on such images "
                             "(e.g. lama-ffc-celeba32 for RGB faces)")
        out = self.net(apply_mask(x, m), m)
        return Restoration(out.float().clamp_(0.0, 1.0).to(image.device), {"nfe": 1.0})
