"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, with real ImageNet backbone weights.

The ``lpips`` package ships its calibrated linear heads but downloads the backbone
(AlexNet / VGG16 / SqueezeNet 1.1 ``features``) through torchvision. Here the backbone comes
from, in this order:

1. the ``weights`` argument: a ``.pth`` file, or a folder holding the file named in
   :data:`BACKBONE_FILES` (e.g. ``alexnet_features.pth``);
2. the environment variable :data:`LPIPS_WEIGHTS_ENV` (a file or a folder, same rule);
3. torchvision's own download / cache (``$TORCH_HOME/hub/checkpoints``), for online users.

A file is a plain ``dict[str, Tensor]`` in torchvision's ``features.N.*`` layout (a whole
torchvision state dict also works: only its ``features.*`` keys are used), read with
``torch.load(weights_only=True)`` and loaded strictly: every backbone parameter must be
covered. When no source works, :class:`LPIPSUnavailable` says why; LPIPS is never computed
with a randomly initialised backbone.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InpaintBenchError, InputError
from inpaintbench.core.images import check_image_batch

# ``lpips`` (which imports torchvision) is imported only when an LPIPSMetric is built, and
# torchvision only for its download URLs: together they cost ~2.5 s of start-up (measured with
# ``python -X importtime``), which every importer of this module (the runner, the CLI) paid
# even when LPIPS was off.

#: Environment variable naming a backbone weights file or a folder of them.
LPIPS_WEIGHTS_ENV = "INPAINTBENCH_LPIPS_WEIGHTS"

#: File name of each backbone's ``features`` weights inside a weights folder.
BACKBONE_FILES: dict[str, str] = {
    "alex": "alexnet_features.pth",
    "vgg": "vgg16_features.pth",
    "squeeze": "squeezenet1_1_features.pth",
}

# torchvision weight enums of the same backbones, for the online fallback.
_TORCHVISION_WEIGHTS = {
    "alex": ("AlexNet_Weights", "IMAGENET1K_V1"),
    "vgg": ("VGG16_Weights", "IMAGENET1K_V1"),
    "squeeze": ("SqueezeNet1_1_Weights", "IMAGENET1K_V1"),
}

#: Images whose short side is below this are upsampled before LPIPS: AlexNet's strided
#: convolutions and three max-pools shrink 28 px to nothing; 64 px keeps every layer >= 1 px.
DEFAULT_MIN_SIDE = 64


def upsampled_size(height: int, width: int, min_side: int) -> tuple[int, int]:
    """``(height, width)`` if the short side is at least ``min_side`` pixels, else the size
    (aspect ratio kept, rounded) whose short side is ``min_side``: the size a perceptual metric
    on an ImageNet backbone is fed at."""
    short = min(height, width)
    if short >= min_side:
        return height, width
    scale = min_side / short
    return max(min_side, round(height * scale)), max(min_side, round(width * scale))


def check_min_side(min_side: int, what: str) -> int:
    """``min_side`` if it is an int >= 32 pixels, else :class:`InputError` naming ``what``."""
    if isinstance(min_side, bool) or not isinstance(min_side, int) or min_side < 32:
        raise InputError(f"{what} min_side must be an integer >= 32 pixels, got {min_side!r}")
    return min_side


class LPIPSUnavailable(InpaintBenchError, RuntimeError):
    """LPIPS cannot be computed here: no backbone weights could be found or loaded.

    The message names the file that was looked for, the environment variable and the
    download error, so a user can provide the weights.
    """


def _weights_file(location: Path, net: str) -> Path:
    """The weights file for ``net`` at ``location`` (a file, or a folder holding it)."""
    return location / BACKBONE_FILES[net] if location.is_dir() else location


def _read_features_file(path: Path, net: str, origin: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise LPIPSUnavailable(
            f"LPIPS ({net}) backbone weights not found: {path} (from {origin}) does not exist; "
            f"it should be a file, or a folder holding {BACKBONE_FILES[net]}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file is a refusal with the reason, not a crash
        raise LPIPSUnavailable(f"LPIPS ({net}) backbone weights {path} could not be read: {err}") from err
    if not isinstance(state, dict):
        raise LPIPSUnavailable(f"LPIPS ({net}) weights {path} hold a {type(state).__name__}, not a state dict")
    return state


def _torchvision_url(net: str) -> str:
    import torchvision  # lazy: see the imports above

    enum_name, member = _TORCHVISION_WEIGHTS[net]
    return getattr(getattr(torchvision.models, enum_name), member).url


def _download_features(net: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights of ``net`` (cached under ``$TORCH_HOME``), or refusal."""
    url = _torchvision_url(net)
    try:
        return torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True, weights_only=True)
    except Exception as err:  # offline: URLError; corrupt cache: RuntimeError; both mean "refuse"
        raise LPIPSUnavailable(
            f"LPIPS ({net}) needs the ImageNet backbone weights {BACKBONE_FILES[net]}: pass weights=<file or "
            f"folder>, or set ${LPIPS_WEIGHTS_ENV} to it, or go online so torchvision can download "
            f"{url} (download failed: {err})"
        ) from err


def load_backbone_state(net: str, weights: str | os.PathLike | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The backbone ``features`` tensors of ``net`` and a description of where they came from.

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.
        weights: a file or folder; ``None`` tries ``$INPAINTBENCH_LPIPS_WEIGHTS`` and then
            torchvision's download. A given location that does not hold the file is an
            error, not a reason to try the next source.

    Returns:
        ``(state, source)``: ``state`` maps ``features.N.*`` keys to tensors; ``source`` is
        the file path or the download URL.

    Raises:
        LPIPSUnavailable: no source worked; the message names the file and the env var.
    """
    if net not in BACKBONE_FILES:
        raise InputError(f"unknown LPIPS backbone {net!r}; choose one of {', '.join(BACKBONE_FILES)}")
    if weights is not None:
        path = _weights_file(Path(weights).expanduser(), net)
        return _read_features_file(path, net, "the weights argument"), str(path)
    from_env = os.environ.get(LPIPS_WEIGHTS_ENV)
    if from_env:
        path = _weights_file(Path(from_env).expanduser(), net)
        return _read_features_file(path, net, f"${LPIPS_WEIGHTS_ENV}"), str(path)
    return _download_features(net), _torchvision_url(net)


def _load_backbone_strict(backbone: torch.nn.Module, state: dict[str, torch.Tensor], net: str, source: str) -> None:
    """Copy ``features.N.*`` tensors into lpips' sliced backbone; every parameter must be set.

    lpips keeps torchvision's layer indices inside its slices (``slice2.3.weight`` is
    ``features.3.weight``), so the mapping is by the index after the slice name.
    """
    features = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    wanted = {}
    for name in backbone.state_dict():
        _, _, in_features = name.partition(".")  # "slice2.3.weight" -> "3.weight"
        wanted[name] = in_features
    missing = sorted(f"features.{k}" for k in wanted.values() if k not in features)
    unexpected = sorted(f"features.{k}" for k in set(features) - set(wanted.values()))
    if missing or unexpected:
        raise LPIPSUnavailable(
            f"LPIPS ({net}) weights {source} do not match the {net} backbone: "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    try:
        backbone.load_state_dict({name: features[key] for name, key in wanted.items()}, strict=True)
    except RuntimeError as err:  # shape mismatch: a different architecture's file
        raise LPIPSUnavailable(f"LPIPS ({net}) weights {source} do not fit the {net} backbone: {err}") from err


def _load_heads_strict(model: torch.nn.Module, net: str) -> None:
    """Load the ``lpips`` package's calibrated v0.1 linear heads (``lin0``...) into ``model``."""
    import lpips  # lazy: see the imports above

    path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    heads = torch.load(path, map_location="cpu", weights_only=True)
    # lpips registers each head twice (``lin0`` and ``lins.0``); the file uses the ``linN`` names.
    expected = {name for name in model.state_dict() if name.split(".")[0].removeprefix("lin").isdigit()}
    if set(heads) != expected:
        raise LPIPSUnavailable(
            f"LPIPS ({net}) linear heads {path} do not match the model: "
            f"missing {sorted(expected - set(heads)) or 'none'}, unexpected {sorted(set(heads) - expected) or 'none'}"
        )
    model.load_state_dict(heads, strict=False)  # strict=False only because the backbone comes separately


class LPIPSMetric(torch.nn.Module):
    """LPIPS distance per image, one reusable module.

    Build it once (it loads weights) and call it on every batch. Inputs are ``[0, 1]``
    images; grayscale is repeated to 3 channels; images whose short side is below
    ``min_side`` are upsampled bilinearly (``align_corners=False``) so the short side is
    ``min_side``, keeping the aspect ratio, and :meth:`resize_note` says so for the report.

    Args:
        net: backbone, ``"alex"`` (the usual choice), ``"vgg"`` or ``"squeeze"``.
        weights: backbone weights file or folder (see :func:`load_backbone_state`).
        min_side: smallest image side fed to the backbone, in pixels.

    Attributes:
        net: the backbone name.
        source: where the backbone weights came from (a path or URL).
        resized_to: ``(H, W)`` the most recent call resized to, or ``None`` if it did not.

    Raises:
        LPIPSUnavailable: no backbone weights (see :func:`load_backbone_state`).

    Example (needs the weights, so not run as a doctest)::

        metric = LPIPSMetric("alex", weights="../shared/weights/lpips")
        distance = metric(output, original)  # float32 [B], 0 for identical images
    """

    def __init__(self, net: str = "alex", weights: str | os.PathLike | None = None, min_side: int = DEFAULT_MIN_SIDE):
        super().__init__()
        check_min_side(min_side, "LPIPS")
        state, source = load_backbone_state(net, weights)
        import lpips  # lazy: see the imports above; after the weights, so a refusal stays cheap
        # pnet_rand=True: torchvision must not download the backbone, it is loaded strictly
        # below. pretrained=False: the package would load its heads with strict=False, which
        # would leave a head random without a word if a key were missing; we load them strictly.
        with warnings.catch_warnings():
            # lpips still calls torchvision with the deprecated `pretrained=` argument.
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
        _load_heads_strict(model, net)
        _load_backbone_strict(model.net, state, net, source)
        self.model = model.eval().requires_grad_(False)
        self.net = net
        self.source = source
        self.min_side = min_side
        self.resized_to: tuple[int, int] | None = None

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The ``(H, W)`` an ``height x width`` image is fed at: unchanged if its short side
        is at least ``min_side``, else scaled up so the short side is ``min_side``."""
        return upsampled_size(height, width, self.min_side)

    def resize_note(self, height: int, width: int) -> str:
        """One line for the report when ``height x width`` images are resized, else ``""``."""
        size = self.input_size(height, width)
        if size == (height, width):
            return ""
        return (
            f"LPIPS ({self.net}): {height}x{width} images upsampled bilinearly to {size[0]}x{size[1]} "
            f"(the backbone needs a short side of at least {self.min_side} px)"
        )

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance of each pair.

        Args:
            x, y: float32 ``[B, C, H, W]`` in ``[0, 1]``, ``C`` in {1, 3}, on this module's device.

        Returns:
            float32 ``[B]``, ``>= 0``; 0 for identical images (lower is more similar).
        """
        check_image_batch(x, "x")
        check_image_batch(y, "y")
        if x.shape != y.shape:
            raise InputError(f"x and y must have the same shape, got {list(x.shape)} and {list(y.shape)}")
        size = self.input_size(*x.shape[-2:])
        self.resized_to = None if size == tuple(x.shape[-2:]) else size
        if self.resized_to is not None:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        # normalize=True maps [0, 1] to the [-1, 1] range the heads were calibrated on.
        return self.model(x, y, normalize=True).flatten()
