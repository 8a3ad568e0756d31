"""A VGG16 perceptual loss for training, from ImageNet VGG16 ``features`` weights.

The weights are never random. They come from, in this order: an explicit path,
``$INPAINTBENCH_VGG16_WEIGHTS`` (a file), then the LPIPS metric's own chain
(:func:`inpaintbench.metrics.lpips_metric.load_backbone_state`: ``$INPAINTBENCH_LPIPS_WEIGHTS``, a file
or a folder holding ``vgg16_features.pth`` such as ``../shared/weights/lpips``, else
torchvision's ImageNet download). When none works the error names the file and how to
provide it.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.core.errors import InputError

#: Environment variable naming a VGG16 ``features`` state-dict file (checked before the LPIPS one).
VGG16_WEIGHTS_ENV = "INPAINTBENCH_VGG16_WEIGHTS"

# torchvision's vgg16().features: channel widths, "M" = 2x2 max-pool.
_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: Index (in torchvision's ``features``) of the ReLU that ends each named block.
VGG16_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
# ImageNet statistics the VGG16 weights were trained with (inputs in [0, 1]).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def load_vgg16_features_state(weights: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet VGG16 ``features`` state dict, keys ``"<index>.weight"`` / ``"<index>.bias"``.

    Args:
        weights: a ``vgg16_features.pth`` file or a folder holding it; ``None`` tries
            ``$INPAINTBENCH_VGG16_WEIGHTS``, then the LPIPS metric's sources (see the module
            docstring). Files are read with ``torch.load(weights_only=True)``.

    Raises:
        inpaintbench.metrics.lpips_metric.LPIPSUnavailable: no source worked; the message names the
            file looked for, the environment variable and the download error.
    """
    from inpaintbench.metrics.lpips_metric import load_backbone_state

    if weights is None:
        weights = os.environ.get(VGG16_WEIGHTS_ENV) or None
    state, _source = load_backbone_state("vgg", weights)
    return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}


class VGG16Features(nn.Module):
    """Frozen ImageNet VGG16 convolutional features at named ReLU outputs.

    Args:
        layers: names from :data:`VGG16_LAYERS`; the network is cut after the deepest one.
        weights: a ``vgg16_features.pth`` file or folder (see :func:`load_vgg16_features_state`).

    ``forward(images)``: float ``[B, C, H, W]`` in ``[0, 1]``, C in {1, 3} (grey images are
    repeated to RGB) -> list of feature maps, one per layer in ``layers`` order.
    """

    def __init__(self, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
                 weights: str | os.PathLike | None = None):
        super().__init__()
        unknown = [name for name in layers if name not in VGG16_LAYERS]
        if unknown or not layers:
            raise InputError(f"unknown VGG16 layers {unknown}; choose from {list(VGG16_LAYERS)}")
        self.layer_names = tuple(layers)
        self._taps = {VGG16_LAYERS[name]: i for i, name in enumerate(self.layer_names)}
        depth = max(self._taps) + 1
        modules: list[nn.Module] = []
        channels = 3
        for spec in _VGG16_LAYOUT:
            if spec == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules += [nn.Conv2d(channels, spec, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = spec
        self.features = nn.Sequential(*modules[:depth])
        state = load_vgg16_features_state(weights)
        wanted = self.features.state_dict().keys()
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise InputError(f"VGG16 weights lack {missing[:4]}...: not a torchvision vgg16().features state dict")
        self.features.load_state_dict({k: state[k] for k in wanted})
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = (images - self.mean) / self.std
        taps: list[torch.Tensor] = [images] * len(self.layer_names)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._taps:
                taps[self._taps[index]] = x
        return taps


class PerceptualLoss(nn.Module):
    """Mean over layers of the squared distance between channel-normalised VGG16 features.

    Features are unit-normalised along channels before the difference (as LPIPS does, without
    its learned weights), so every layer contributes on the same scale whatever its
    activation magnitudes. Images smaller than ``min_size`` are bilinearly enlarged so their
    short side is ``min_size`` (VGG16's deeper blocks pool a 28-px MNIST digit to 7 px).

    Args:
        layers, weights: as for :class:`VGG16Features`.
        min_size: smallest short side fed to VGG16, in pixels (``None``: never resize).

    ``forward(prediction, target)``: two float ``[B, C, H, W]`` in ``[0, 1]`` -> scalar loss
    (gradients flow into ``prediction`` only).
    """

    def __init__(self, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
                 weights: str | os.PathLike | None = None, min_size: int | None = 32):
        super().__init__()
        self.vgg = VGG16Features(layers, weights)
        self.min_size = min_size

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        short = min(x.shape[-2:])
        if self.min_size is None or short >= self.min_size:
            return x
        scale = self.min_size / short
        size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prediction.shape != target.shape:
            raise InputError(f"prediction {list(prediction.shape)} and target {list(target.shape)} differ")
        pred_feats = self.vgg(self._resize(prediction))
        with torch.no_grad():
            target_feats = self.vgg(self._resize(target))
        per_layer = [
            (F.normalize(p, dim=1, eps=1e-8) - F.normalize(t, dim=1, eps=1e-8)).pow(2).sum(dim=1).mean()
            for p, t in zip(pred_feats, target_feats)
        ]
        return torch.stack(per_layer).mean()
