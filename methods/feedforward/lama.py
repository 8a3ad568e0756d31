"""LaMa (Suvorov et al. 2022): single-pass inpainting with fast Fourier convolutions.

Three pieces:

* :class:`LamaTask` -- the :class:`~inpaintbench.methods.training.loop.TrainTask` that trains an
  :class:`~inpaintbench.methods.feedforward.ffc.FFCInpaintNet` on the harness's mask families (fresh masks
  every batch) with LaMa's pixel-weighted L1 plus a VGG16 perceptual term;
* :class:`LamaFFC` -- the method running such a network (default: the committed MNIST model);
* :class:`LamaOfficial` -- the same method family with the official big-lama weights, for users
  who have them (a path; nothing is downloaded here). Superseded: the registry's
  ``lama-official`` is now :class:`~inpaintbench.methods.feedforward.big_lama.BigLama` (LaMa's own
  generator architecture, the Lightning checkpoint read without running its pickles);
  this class stays for the callers that import it.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors.torch import load_file, save_file

from inpaintbench.api import (
    Restoration,
    SampleRNG,
    InputError,
    Method,
    MethodUnavailable,
    apply_mask,
    check_image_batch,
    check_mask_batch,
)
from inpaintbench.masks import mixed_masks
from inpaintbench.methods import WEIGHTS_DIR, resolve_weights
from inpaintbench.methods.feedforward.ffc import FFCInpaintNet, pad_to_multiple
from inpaintbench.methods.training.init import seeded_init_

#: The committed MNIST model (``config.json`` + ``model.safetensors`` + ``TRAINING.md``).
MNIST_WEIGHTS = WEIGHTS_DIR / "lama-ffc-mnist"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: The command that (re)creates :data:`MNIST_WEIGHTS`.
MNIST_TRAIN_COMMAND = (
    "inpaintbench train lama --config methods/configs/lama-mnist.toml --data-root ../shared/data "
    "--out runs/lama-mnist, then copy runs/lama-mnist/final/* to methods/weights/lama-ffc-mnist/"
)

#: Mask families (registry names) training draws from, one chosen uniformly per image.
DEFAULT_TRAIN_MASKS = ("strokes-thin", "strokes-medium", "strokes-thick", "wide", "narrow",
                       "box", "random-boxes", "half")


# --------------------------------------------------------------------------- weights I/O

def save_ffc_net(net: FFCInpaintNet, arch: dict[str, Any], folder: str | os.PathLike) -> None:
    """Write ``net`` to ``folder`` as ``model.safetensors`` plus ``config.json`` holding ``arch``
    (the :class:`FFCInpaintNet` keyword arguments that rebuild it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(arch, indent=2, sort_keys=True) + "\n")


def load_ffc_net(folder: str | os.PathLike) -> FFCInpaintNet:
    """The :class:`FFCInpaintNet` saved by :func:`save_ffc_net` in ``folder``, in eval mode.

    Raises:
        MethodUnavailable: ``config.json`` or ``model.safetensors`` is missing (the message
            names the file and, for the MNIST model, the training command).
    """
    folder = Path(folder).expanduser()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            hint = (f" Create it with: {MNIST_TRAIN_COMMAND}." if folder.resolve() == MNIST_WEIGHTS
                    else f" Pass weights= a folder written by `inpaintbench train lama` (its final/ folder).")
            raise MethodUnavailable(f"LaMa-FFC weights not found: {folder / name} does not exist.{hint}")
    arch = json.loads((folder / CONFIG_FILE).read_text())
    net = FFCInpaintNet(**arch)
    net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return net.eval().requires_grad_(False)


# --------------------------------------------------------------------------- training

def draw_training_masks(families: Sequence[Callable[..., torch.Tensor]], n: int, h: int, w: int,
                        generator: torch.Generator, *, random_flips: bool = True) -> torch.Tensor:
    """Masks for one training batch: each image's family drawn uniformly from ``families``.

    Args:
        families: mask families (``family(n, h, w, generator=...) -> bool [n, 1, h, w]``).
        n, h, w: batch size and image size in pixels.
        generator: the only randomness (family choice, the masks, the flips).
        random_flips: apply one of the 8 flips/transposes of the square to each mask (only
            when ``h == w``), so e.g. RePaint's right "half" also trains the other sides.

    Returns:
        bool ``[n, 1, h, w]`` on the CPU, True = hole.
    """
    masks = mixed_masks(families, n, h, w, generator=generator).cpu()
    if random_flips and h == w:
        ops = torch.randint(8, (n,), generator=generator, device=generator.device).cpu().tolist()
        flipped = []
        for m, op in zip(masks, ops):
            if op & 1:
                m = m.flip(-1)
            if op & 2:
                m = m.flip(-2)
            if op & 4:
                m = m.transpose(-1, -2)
            flipped.append(m)
        masks = torch.stack(flipped)
    return masks


class LamaTask:
    """:class:`~inpaintbench.methods.training.loop.TrainTask` of a LaMa-FFC network.

    Loss of a batch (images ``x``, masks ``m`` drawn by :func:`draw_training_masks`, prediction
    ``y`` of the masked images)::

        l1_weight_hole * mean(m * |y - x|) + l1_weight_known * mean((1 - m) * |y - x|)
        + perceptual_weight * PerceptualLoss(composite(y, x, m), x)

    LaMa weights L1 by region the same way; its perceptual terms see the raw prediction, here
    the composite is used so the term measures exactly what the harness scores (LPIPS of the
    composite) and all its gradient goes to the hole. No adversarial term: the shared loop
    has one optimizer, and MNIST's strokes are sharp enough with the perceptual term.

    Args:
        image_channels, ngf, n_downsampling, n_blocks, ratio_global: :class:`FFCInpaintNet`.
        init_seed: seeds the initial weights (no global RNG).
        train_masks: mask-family registry names to draw from.
        random_flips: see :func:`draw_training_masks`.
        l1_weight_hole, l1_weight_known, perceptual_weight: loss weights (0 disables a term).
        perceptual_layers, perceptual_min_size, vgg16_weights: of
            :class:`~inpaintbench.methods.training.perceptual.PerceptualLoss`.
    """

    def __init__(self, *, image_channels: int = 1, ngf: int = 24, n_downsampling: int = 2,
                 n_blocks: int = 4, ratio_global: float = 0.75, init_seed: int = 0,
                 train_masks: Sequence[str] = DEFAULT_TRAIN_MASKS, random_flips: bool = True,
                 l1_weight_hole: float = 2.0, l1_weight_known: float = 1.0,
                 perceptual_weight: float = 0.5,
                 perceptual_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
                 perceptual_min_size: int | None = None, vgg16_weights: str | None = None):
        from inpaintbench.registry import mask_registry

        self.arch = {"image_channels": image_channels, "ngf": ngf, "n_downsampling": n_downsampling,
                     "n_blocks": n_blocks, "ratio_global": ratio_global}
        self.config = {**self.arch, "init_seed": init_seed, "train_masks": list(train_masks),
                       "random_flips": random_flips, "l1_weight_hole": l1_weight_hole,
                       "l1_weight_known": l1_weight_known, "perceptual_weight": perceptual_weight,
                       "perceptual_layers": list(perceptual_layers),
                       "perceptual_min_size": perceptual_min_size, "vgg16_weights": vgg16_weights}
        if not train_masks:
            raise InputError("train_masks must name at least one mask family")
        self.families = [mask_registry().create(name) for name in train_masks]
        self.net = FFCInpaintNet(**self.arch)
        seeded_init_(self.net, init_seed)
        self.perceptual = None
        if perceptual_weight:
            from inpaintbench.methods.training.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(perceptual_layers, vgg16_weights, perceptual_min_size)

    def modules(self) -> dict[str, torch.nn.Module]:
        """``{"generator": FFCInpaintNet}`` (the VGG16 of the perceptual term is frozen, not listed)."""
        return {"generator": self.net}

    def loss(self, images: torch.Tensor, step: int, generator: torch.Generator):
        """Scalar loss of one batch and ``{"l1", "perceptual", "hole_fraction"}`` to log.

        ``images``: float32 ``[B, C, H, W]`` in ``[0, 1]``; masks come from ``generator``.
        """
        b, _, h, w = images.shape
        mask = draw_training_masks(self.families, b, h, w, generator,
                                   random_flips=self.config["random_flips"]).to(images.device)
        prediction = self.net(apply_mask(images, mask), mask)
        hole = mask.to(images.dtype)
        error = (prediction - images).abs()
        l1 = (self.config["l1_weight_hole"] * hole * error
              + self.config["l1_weight_known"] * (1.0 - hole) * error).mean()
        total = l1
        extras = {"l1": float(l1.detach()), "hole_fraction": float(hole.mean())}
        if self.perceptual is not None:
            self.perceptual.to(images.device)
            perceptual = self.perceptual(torch.where(mask, prediction, images), images)
            total = total + self.config["perceptual_weight"] * perceptual
            extras["perceptual"] = float(perceptual.detach())
        return total, extras

    def export(self, modules: dict[str, torch.nn.Module], out_dir: Path) -> None:
        """``model.safetensors`` + ``config.json`` of the generator (see :func:`save_ffc_net`)."""
        save_ffc_net(modules["generator"], self.arch, out_dir)


# --------------------------------------------------------------------------- inference

def run_with_channels(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], model_channels: int,
                      image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Call ``fn(image, mask)`` of a ``model_channels``-channel model on an image of any C.

    A grey model inpaints each channel of an RGB image separately (channels folded into the
    batch); an RGB model inpaints a grey image repeated to RGB and returns the channel mean.
    Shapes: ``image [B, C, H, W]``, ``mask [B, 1, H, W]`` -> ``[B, C, H, W]``.
    """
    b, c, h, w = image.shape
    if c == model_channels:
        return fn(image, mask)
    if model_channels == 1:
        out = fn(image.reshape(b * c, 1, h, w), mask.repeat_interleave(c, dim=0))
        return out.reshape(b, c, h, w)
    if c == 1:
        return fn(image.expand(b, model_channels, h, w), mask).mean(dim=1, keepdim=True)
    raise InputError(f"cannot run a {model_channels}-channel model on {c}-channel images")


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
        folder = resolve_weights(weights, MNIST_WEIGHTS)
        self.net = load_ffc_net(folder)
        self.loaded_files = [str(folder)]

    def to(self, device: torch.device | str) -> "LamaFFC":
        super().to(device)
        self.net.to(self.device)
        return self

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


# --------------------------------------------------------------------------- official big-lama

#: Environment variable with the path of the official weights (used when checkpoint= is not given).
BIG_LAMA_ENV = "INPAINTBENCH_BIG_LAMA"
BIG_LAMA_SOURCES = (
    "the TorchScript export big-lama.pt used by lama-cleaner / IOPaint "
    "(https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt), or the original "
    "release (https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip, file "
    "big-lama/models/best.ckpt, or its generator weights converted to .safetensors)"
)
#: big-lama's generator (LaMa's configs/training/big-lama.yaml): 3 levels, 18 FFC blocks.
BIG_LAMA_ARCH = {"image_channels": 3, "ngf": 64, "n_downsampling": 3, "n_blocks": 18,
                 "ratio_global": 0.75, "max_features": 1024}


def _is_torchscript(path: Path) -> bool:
    # TorchScript archives carry their code (``<name>/code/...``); torch.save archives do not.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def load_big_lama_state(path: Path) -> dict[str, torch.Tensor]:
    """Generator weights of an official LaMa checkpoint, keys relative to :class:`FFCInpaintNet`.

    Accepts ``.safetensors`` or a ``torch.save`` file readable with ``weights_only=True``
    (a Lightning checkpoint's ``state_dict`` with ``generator.``-prefixed keys, or a bare
    generator state dict). Pickled Python objects are refused, never executed.

    Raises:
        MethodUnavailable: the file holds pickled objects or no generator weights; the message
            says how to convert it.
    """
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            raise MethodUnavailable(
                f"{path} could not be read with torch.load(weights_only=True) ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); it holds pickled Python objects. "
                "Convert it once, in an environment you trust, to safetensors: python -c \"import torch, "
                "safetensors.torch as st; sd = torch.load('best.ckpt', map_location='cpu', weights_only=False)"
                "['state_dict']; st.save_file({k: v.contiguous() for k, v in sd.items() if "
                "k.startswith('generator.')}, 'big-lama.safetensors')\" and pass that file."
            ) from err
        state = state.get("state_dict", state)
    if any(k.startswith("generator.") for k in state):
        state = {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}
    if not any(k.startswith("model.") for k in state):
        raise MethodUnavailable(f"{path} holds no LaMa generator weights (no 'generator.model.*' or 'model.*' keys)")
    return state


class LamaOfficial(Method):
    """The official big-lama model (Places2, RGB), loaded from a path the user provides.

    Args:
        checkpoint: path to either

            * ``big-lama.pt``, the TorchScript export (``forward(image, mask)`` with image
              ``[B, 3, H, W]`` in ``[0, 1]`` and mask ``[B, 1, H, W]``, 1 = hole), loaded with
              ``torch.jit.load``. TorchScript is not pickle, but it *is* code (TorchScript
              ops only); it is the one non-safetensors format this suite accepts, and only from
              a path the user gives, never downloaded;
            * the original checkpoint (``best.ckpt``, readable with ``weights_only=True``) or its
              generator weights as ``.safetensors``: rebuilt as an :class:`FFCInpaintNet` with
              ``arch`` (see :func:`load_big_lama_state`).

            Default: ``$INPAINTBENCH_BIG_LAMA``.
        arch: :class:`FFCInpaintNet` keyword arguments for state-dict checkpoints (default
            :data:`BIG_LAMA_ARCH`).
        pad_multiple: TorchScript inputs are padded (replicating the border) to a multiple of
            this many pixels, as LaMa's own prediction script does (8 for big-lama).

    Raises:
        MethodUnavailable: no path, a missing file or an unreadable checkpoint, naming what is
            missing and where to get it.
    """

    def __init__(self, checkpoint: str | None = None, arch: dict[str, Any] | None = None,
                 pad_multiple: int = 8):
        super().__init__(checkpoint=checkpoint, arch=arch, pad_multiple=pad_multiple)
        source = checkpoint if checkpoint is not None else os.environ.get(BIG_LAMA_ENV)
        if not source:
            raise MethodUnavailable(
                f"lama-official needs the official LaMa weights: pass checkpoint=PATH or set ${BIG_LAMA_ENV}. "
                f"Get {BIG_LAMA_SOURCES}.")
        path = Path(source).expanduser()
        if not path.is_file():
            raise MethodUnavailable(f"official LaMa weights not found: {path} does not exist. Get {BIG_LAMA_SOURCES}.")
        self.loaded_files = [str(path)]
        self.pad_multiple = pad_multiple
        if _is_torchscript(path):
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
            self.model_channels = 3
            self._forward = self._forward_torchscript
        else:
            net = FFCInpaintNet(**(arch or BIG_LAMA_ARCH))
            try:
                net.load_state_dict(load_big_lama_state(path))
            except RuntimeError as err:  # shape / key mismatch
                raise MethodUnavailable(f"{path} does not match the LaMa generator arch {arch or BIG_LAMA_ARCH}: "
                                        f"{str(err).splitlines()[0]}") from err
            self.model = net.eval().requires_grad_(False)
            self.model_channels = net.image_channels
            self._forward = self.model

    def to(self, device: torch.device | str) -> "LamaOfficial":
        super().to(device)
        self.model.to(self.device)
        return self

    def _forward_torchscript(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        x = pad_to_multiple(torch.cat([image, mask.to(image.dtype)], dim=1), self.pad_multiple)
        return self.model(x[:, :-1], x[:, -1:])[..., :h, :w]

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *,
                rng: SampleRNG) -> Restoration:
        """Raw model output, float32 ``[B, C, H, W]`` in ``[0, 1]``, one network evaluation per
        image; grey images run through the RGB model repeated to three channels."""
        check_image_batch(image)
        if mask is None:
            raise InputError(f"{self.name} needs the mask (it is not a blind method)")
        check_mask_batch(mask, image)
        x, m = image.to(self.device), mask.to(self.device)
        out = run_with_channels(self._forward, self.model_channels, apply_mask(x, m), m)
        return Restoration(out.float().clamp_(0.0, 1.0).to(image.device), {"nfe": 1.0})
