"""DISTS (Ding et al. 2020, "Image Quality Assessment: Unifying Structure and Texture
Similarity") through its authors' ``DISTS_pytorch`` package, loaded offline.

The package's ``DISTS()`` downloads torchvision's VGG16 (``models.vgg16(pretrained=True)``) and
reads its learned weights ``alpha`` / ``beta`` from ``sys.prefix/weights.pt``. Here nothing is
downloaded and nothing is read from an interpreter-wide folder:

* the VGG16 ``features`` come from the file LPIPS' VGG backbone uses
  (:func:`inpaintbench.metrics.lpips_metric.load_backbone_state` ``("vgg", weights)``: the
  ``weights`` argument, else ``$INPAINTBENCH_LPIPS_WEIGHTS``, else torchvision's download),
  loaded strictly into the package's five stages (torchvision's layer indices are kept there);
* ``alpha`` / ``beta`` come from the ``weights.pt`` the package ships beside its code,
  read with ``torch.load(weights_only=True)``;
* the network is the package's own ``DISTS`` module (its L2 pooling, normalisation and
  forward), built with a VGG16 ``features`` stack that torchvision makes without weights.

When the package or the backbone is missing, :class:`DISTSUnavailable` says why in one line;
DISTS is never computed with a random backbone.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InpaintBenchError, InputError
from inpaintbench.core.images import check_image_batch
from inpaintbench.metrics.lpips_metric import (
    DEFAULT_MIN_SIDE,
    LPIPSUnavailable,
    check_min_side,
    load_backbone_state,
    upsampled_size,
)

#: The package's alpha/beta file, beside its module.
ALPHA_BETA_FILE = "weights.pt"


class DISTSUnavailable(InpaintBenchError, RuntimeError):
    """DISTS cannot be computed here: the package or the VGG16 backbone is missing; one line why."""


def _package():
    try:
        from DISTS_pytorch import DISTS_pt
    except ImportError as err:
        raise DISTSUnavailable("DISTS not computed: the DISTS_pytorch package is not installed "
                               "(pip install 'inpaintbench[dists]')") from err
    return DISTS_pt


def alpha_beta_path() -> Path:
    """The ``weights.pt`` (alpha, beta) the ``DISTS_pytorch`` package ships beside its code."""
    return Path(_package().__file__).with_name(ALPHA_BETA_FILE)


def _vgg16_features_only(pretrained: bool = True, **_: object) -> types.SimpleNamespace:
    """What the package's ``models.vgg16(pretrained=True)`` call is used for: ``.features``,
    torchvision's VGG16 convolution stack, here made without weights (they are loaded after)."""
    from torchvision.models.vgg import cfgs, make_layers

    return types.SimpleNamespace(features=make_layers(cfgs["D"], batch_norm=False))


def _load_vgg_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``features.N.*`` into the package's ``stageK.N.*`` convolutions; every one must be set."""
    features = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    wanted = {}
    for name, _ in model.named_parameters():
        stage, _, in_features = name.partition(".")
        if stage.startswith("stage"):
            wanted[name] = in_features  # "stage2.5.weight" -> "5.weight" (torchvision's index kept)
    missing = sorted(f"features.{k}" for k in wanted.values() if k not in features)
    unexpected = sorted(f"features.{k}" for k in set(features) - set(wanted.values()))
    if missing or unexpected:
        raise DISTSUnavailable(f"DISTS: VGG16 weights {source} do not match the backbone: "
                               f"missing {missing or 'none'}, unexpected {unexpected or 'none'}")
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, key in wanted.items():
            if params[name].shape != features[key].shape:
                raise DISTSUnavailable(f"DISTS: VGG16 weights {source} do not fit the backbone: {key} has shape "
                                       f"{list(features[key].shape)}, expected {list(params[name].shape)}")
            params[name].copy_(features[key])


class DISTSMetric(torch.nn.Module):
    """DISTS distance per image (0 for identical images, lower is more similar), one reusable module.

    Inputs are ``[0, 1]`` images (the package's convention: it normalises with ImageNet's mean
    and std itself); grayscale is repeated to 3 channels; images whose short side is below
    ``min_side`` are upsampled bilinearly as for LPIPS (:meth:`resize_note` says so).

    Args:
        weights: the VGG16 ``features`` file or a folder holding ``vgg16_features.pth`` (see
            :func:`inpaintbench.metrics.lpips_metric.load_backbone_state`).
        min_side: smallest image side fed to the network, in pixels.

    Attributes:
        source: where the VGG16 weights came from; ``alpha_beta``: the alpha/beta file.

    Raises:
        DISTSUnavailable: the package or the VGG16 weights are missing.

    Example (needs the weights, so not run as a doctest)::

        metric = DISTSMetric(weights="../shared/weights/lpips")
        distance = metric(output, original)  # float32 [B]
    """

    net = "vgg16"

    def __init__(self, weights: str | os.PathLike | None = None, min_side: int = DEFAULT_MIN_SIDE):
        super().__init__()
        check_min_side(min_side, "DISTS")
        package = _package()
        try:
            state, source = load_backbone_state("vgg", weights)
        except LPIPSUnavailable as err:
            raise DISTSUnavailable(f"DISTS needs the VGG16 backbone: {err}") from err
        alpha_beta = alpha_beta_path()
        try:
            learned = torch.load(alpha_beta, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - an unreadable file is a refusal with the reason
            raise DISTSUnavailable(f"DISTS: {alpha_beta} could not be read: {err}") from err
        # The package's constructor calls ``models.vgg16(pretrained=True)`` through its module
        # global ``models``; for the construction that name is the weightless stack above (only
        # this module's global is swapped, torchvision itself is untouched).
        saved = package.models
        package.models = types.SimpleNamespace(vgg16=_vgg16_features_only)
        try:
            model = package.DISTS(load_weights=False)
        finally:
            package.models = saved
        if set(learned) != {"alpha", "beta"} or learned["alpha"].shape != model.alpha.shape \
                or learned["beta"].shape != model.beta.shape:
            raise DISTSUnavailable(f"DISTS: {alpha_beta} does not hold alpha/beta of shape {list(model.alpha.shape)}")
        model.alpha.data, model.beta.data = learned["alpha"].float(), learned["beta"].float()
        _load_vgg_strict(model, state, source)
        self.model = model.eval().requires_grad_(False)
        self.source = source
        self.alpha_beta = str(alpha_beta)
        self.min_side = min_side

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The ``(H, W)`` an ``height x width`` image is fed at (see :func:`upsampled_size`)."""
        return upsampled_size(height, width, self.min_side)

    def resize_note(self, height: int, width: int) -> str:
        """One line for the report when ``height x width`` images are resized, else ``""``."""
        size = self.input_size(height, width)
        if size == (height, width):
            return ""
        return (f"DISTS: {height}x{width} images upsampled bilinearly to {size[0]}x{size[1]} "
                f"(the VGG16 backbone needs a short side of at least {self.min_side} px)")

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """DISTS distance of each pair.

        Args:
            x, y: float32 ``[B, C, H, W]`` in ``[0, 1]``, ``C`` in {1, 3}, on this module's device.

        Returns:
            float32 ``[B]``; 0 for identical images (up to float rounding, ~1e-7).
        """
        check_image_batch(x, "x")
        check_image_batch(y, "y")
        if x.shape != y.shape:
            raise InputError(f"x and y must have the same shape, got {list(x.shape)} and {list(y.shape)}")
        size = self.input_size(*x.shape[-2:])
        if size != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        # The package's forward(x, y): x is the distorted image, y the reference; its score is
        # symmetric in the two, so the order of the table (output, original) is the package's.
        return self.model(x, y).reshape(-1)
