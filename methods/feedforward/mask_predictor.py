"""Blind hole detection: a small segmentation UNet that predicts the hole mask of a corrupted image.

Blind methods receive only the corrupted image (holes zero-filled, see
:class:`inpaintbench.core.method.Method`). :class:`MaskPredictor` turns such an image into a
predicted hole mask, so that a known-mask method (ILVR) can run blind. It is trained with the
suite's shared loop (:mod:`inpaintbench.methods.training.loop`) on a mix of the harness's mask
families, corrupting the training images exactly as the harness corrupts them for blind methods.

A zero-filled hole is indistinguishable from a genuinely black known pixel: on MNIST (white
digits on black) every hole pixel on the background is undetectable, and the IoU reported by
:func:`evaluate_mask_predictor` says so honestly. Those pixels are also the ones whose zero fill
is already correct, which is why :func:`score_masks` reports recall on the non-zero hole pixels
as well.

Command line::

    python -m inpaintbench.methods.feedforward.mask_predictor iou --data-root ../shared/data \
        --n 1000 --seed 0 --out reports/mask-predictor-iou.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.images import apply_mask, check_image_batch, check_mask_batch
from inpaintbench.methods import WEIGHTS_DIR
from inpaintbench.methods.training.init import seeded_init_
from inpaintbench.core.masks import mixed_masks
from inpaintbench.core.seeding import make_generator

#: The committed MNIST predictor (``model.safetensors`` + ``config.json``).
MNIST_WEIGHTS = WEIGHTS_DIR / "mask-predictor-mnist"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: The command that (re)creates :data:`MNIST_WEIGHTS` (see its TRAINING.md).
MNIST_TRAIN_COMMAND = (
    "inpaintbench train mask-predictor --config methods/configs/mask-predictor-mnist.toml "
    "--data-root ../shared/data --out runs/mask-predictor-mnist, then copy "
    "runs/mask-predictor-mnist/final/* to methods/weights/mask-predictor-mnist/"
)

#: Mask families of the harness the predictor is trained and evaluated on (28x28-capable,
#: no external files).
DEFAULT_FAMILIES: tuple[str, ...] = (
    "box", "random-boxes", "strokes-thin", "strokes-medium", "strokes-thick", "wide", "narrow",
    "super-resolve", "alternating-lines", "half", "expand", "disc",
)


class _ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by GroupNorm and SiLU (spatial size kept)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
        )


class MaskPredictorUNet(nn.Module):
    """A plain-torch UNet: corrupted image -> per-pixel hole logits.

    Args:
        in_channels: image channels (1 for MNIST, 3 for RGB).
        channels: feature channels per resolution level, finest first; each level but the last
            halves the resolution (max-pool) and the decoder mirrors it with skip connections.
        norm_groups: GroupNorm groups; must divide every entry of ``channels``.

    ``forward(corrupted)``: float32 ``[B, in_channels, H, W]`` in ``[0, 1]`` -> float32 logits
    ``[B, 1, H, W]`` (positive = hole). Any ``H, W`` works: the input is replicate-padded to a
    multiple of ``2 ** (len(channels) - 1)`` and the output cropped back.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64), norm_groups: int = 8):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) < 2:
            raise InputError(f"channels needs at least two levels, got {list(channels)}")
        if any(c % norm_groups for c in channels):
            raise InputError(f"norm_groups={norm_groups} must divide every entry of channels {list(channels)}")
        self.config = {"in_channels": in_channels, "channels": list(channels), "norm_groups": norm_groups}
        self.encoders = nn.ModuleList()
        previous = in_channels
        for c in channels:
            self.encoders.append(_ConvBlock(previous, c, norm_groups))
            previous = c
        self.decoders = nn.ModuleList(
            _ConvBlock(channels[i + 1] + channels[i], channels[i], norm_groups)
            for i in reversed(range(len(channels) - 1))
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, corrupted: torch.Tensor) -> torch.Tensor:
        h, w = corrupted.shape[-2:]
        multiple = 2 ** (len(self.encoders) - 1)
        pad_h, pad_w = -h % multiple, -w % multiple
        x = F.pad(corrupted, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else corrupted
        skips = []
        for i, encoder in enumerate(self.encoders):
            if i:
                x = F.max_pool2d(x, 2)
            x = encoder(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for decoder in self.decoders:
            skip = skips.pop()
            x = decoder(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], dim=1))
        return self.head(x)[..., :h, :w]


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
        from safetensors.torch import load_file

        folder = Path(path).expanduser()
        for needed in (folder / CONFIG_FILE, folder / WEIGHTS_FILE):
            if not needed.is_file():
                hint = f" Create it with: {MNIST_TRAIN_COMMAND}." if folder == MNIST_WEIGHTS else (
                    f" Pass a folder holding {CONFIG_FILE} and {WEIGHTS_FILE} written by MaskPredictorTask.export.")
                raise MethodUnavailable(f"mask predictor weights not found: {needed} does not exist.{hint}")
        config = json.loads((folder / CONFIG_FILE).read_text())
        net = MaskPredictorUNet(**config["architecture"])
        net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        chosen = config.get("threshold", 0.5) if threshold is None else threshold
        return cls(net.to(device), threshold=chosen)

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


def sample_mixed_masks(families: Mapping[str, Any], n: int, h: int, w: int, *,
                       generator: torch.Generator) -> torch.Tensor:
    """Masks for ``n`` images, each from a family drawn uniformly from ``families``.

    Args:
        families: name -> mask family (``family(n, h, w, generator=g)`` -> bool ``[n, 1, h, w]``).
        n, h, w: number of masks and their size in pixels.
        generator: draws the family of each image and then the masks (in ``families`` order).

    Returns:
        bool ``[n, 1, h, w]`` on the generator's device, True = hole.
    """
    return mixed_masks(list(families.values()), n, h, w, generator=generator)


def _create_families(names: Sequence[str]) -> dict[str, Any]:
    from inpaintbench.core.registry import mask_registry

    registry = mask_registry()
    return {name: registry.create(name) for name in names}


class MaskPredictorTask:
    """:class:`inpaintbench.methods.training.loop.TrainTask` of the hole predictor.

    Each batch: one mask per image from a family drawn uniformly from ``families`` (the
    harness's registry names), holes zero-filled with :func:`inpaintbench.core.images.apply_mask`
    (what blind methods receive), loss = binary cross-entropy of the predicted hole logits.

    Args:
        families: mask family names of the harness (``inpaintbench list``).
        in_channels, channels, norm_groups: :class:`MaskPredictorUNet` architecture.
        threshold: decision threshold written into the exported config.
        init_seed: seeds the initial weights (no global RNG).
    """

    def __init__(self, *, families: Sequence[str] = DEFAULT_FAMILIES, in_channels: int = 1,
                 channels: Sequence[int] = (16, 32, 64), norm_groups: int = 8, threshold: float = 0.5,
                 init_seed: int = 0):
        self.net = MaskPredictorUNet(in_channels, channels, norm_groups)
        seeded_init_(self.net, init_seed)
        self.families = _create_families(families)
        self.threshold = float(threshold)
        self.config = {"families": list(families), **self.net.config, "threshold": self.threshold,
                       "init_seed": init_seed}

    def modules(self) -> dict[str, torch.nn.Module]:
        """``{"predictor": MaskPredictorUNet}``."""
        return {"predictor": self.net}

    def loss(self, images: torch.Tensor, step: int, generator: torch.Generator):
        """Binary cross-entropy of the hole logits; also logs the batch's hole fraction.

        ``images``: float32 ``[B, C, H, W]`` in ``[0, 1]``; masks drawn from ``generator``.
        """
        b, _, h, w = images.shape
        holes = sample_mixed_masks(self.families, b, h, w, generator=generator).to(images.device)
        logits = self.net(apply_mask(images, holes))
        loss = F.binary_cross_entropy_with_logits(logits, holes.to(logits.dtype))
        return loss, {"hole_fraction": float(holes.float().mean())}

    def export(self, modules: dict[str, torch.nn.Module], out_dir: Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` (architecture, threshold, families)."""
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        net = modules["predictor"]
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
                  str(out_dir / WEIGHTS_FILE))
        config = {"architecture": net.config, "threshold": self.threshold,
                  "trained_on_families": self.config["families"]}
        (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def score_masks(predicted: torch.Tensor, true: torch.Tensor, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image scores of predicted hole masks.

    Args:
        predicted, true: bool ``[B, 1, H, W]``, True = hole.
        image: the ground truth, float32 ``[B, C, H, W]`` in ``[0, 1]``.

    Returns:
        float32 ``[B]`` tensors: ``iou`` (|P and T| / |P or T|; 1.0 when both masks are empty,
        the prediction then being exact), ``precision`` (1.0 when nothing is predicted),
        ``recall`` (1.0 when there is no hole), ``visible_recall`` (recall over the hole pixels
        whose ground truth is non-zero, i.e. those where a zero fill is wrong; 1.0 when there
        are none) and ``hole_fraction``.
    """
    check_mask_batch(predicted, image)
    check_mask_batch(true, image)

    def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        num, den = num.flatten(1).sum(1).float(), den.flatten(1).sum(1).float()
        return torch.where(den > 0, num / den.clamp(min=1), torch.ones_like(num))

    visible = true & (image != 0).any(dim=1, keepdim=True)
    return {
        "iou": ratio(predicted & true, predicted | true),
        "precision": ratio(predicted & true, predicted),
        "recall": ratio(predicted & true, true),
        "visible_recall": ratio(predicted & visible, visible),
        "hole_fraction": true.flatten(1).float().mean(1),
    }


def _first_images(dataset: Dataset, n: int) -> torch.Tensor:
    if not 0 < n <= len(dataset):  # type: ignore[arg-type]
        raise InputError(f"n must lie in [1, {len(dataset)}] (the dataset size), got {n}")  # type: ignore[arg-type]
    return torch.stack([dataset[i].image for i in range(n)])


def _family_scores(predictor: MaskPredictor, images: torch.Tensor, name: str, family: Any,
                   seed: int, batch_size: int) -> dict[str, torch.Tensor]:
    n, _, h, w = images.shape
    masks = family(n, h, w, generator=make_generator(seed, "mask-predictor-eval", name))
    device = next(predictor.net.parameters()).device
    parts: list[dict[str, torch.Tensor]] = []
    for start in range(0, n, batch_size):
        img = images[start:start + batch_size].to(device)
        true = masks[start:start + batch_size].to(device)
        predicted = predictor.predict(apply_mask(img, true))
        parts.append({k: v.cpu() for k, v in score_masks(predicted, true, img).items()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def evaluate_mask_predictor(predictor: MaskPredictor, dataset: Dataset, families: Sequence[str],
                            n: int, seed: int, *, batch_size: int = 256) -> dict[str, float]:
    """Mean IoU of the predicted holes, per mask family.

    Args:
        predictor: the trained predictor.
        dataset: items with ``.image`` float32 ``[C, H, W]`` in ``[0, 1]``; the first ``n`` are used.
        families: mask family names of the harness registry.
        n: images per family.
        seed: the masks of family ``f`` come from ``make_generator(seed, "mask-predictor-eval", f)``.

    Returns:
        ``{family: mean IoU over the n images}`` (IoU per image as in :func:`score_masks`).
    """
    images = _first_images(dataset, n)
    return {name: float(_family_scores(predictor, images, name, family, seed, batch_size)["iou"].mean())
            for name, family in _create_families(families).items()}


def mask_predictor_report(predictor: MaskPredictor, dataset: Dataset, families: Sequence[str],
                          n: int, seed: int, *, batch_size: int = 256):
    """All the :func:`score_masks` means per family as a ``pandas.DataFrame`` (one row per
    family, same masks as :func:`evaluate_mask_predictor`)."""
    import pandas as pd

    images = _first_images(dataset, n)
    rows = []
    for name, family in _create_families(families).items():
        scores = _family_scores(predictor, images, name, family, seed, batch_size)
        rows.append({"family": name, **{k: float(v.mean()) for k, v in scores.items()}})
    return pd.DataFrame(rows).set_index("family")


def _iou_markdown(table, *, weights: Path, split: str, n: int, seed: int) -> str:
    shown = table.rename(columns={
        "iou": "IoU", "precision": "precision", "recall": "recall",
        "visible_recall": "recall on non-zero hole pixels", "hole_fraction": "hole fraction"})
    return (
        "# Mask predictor: hole IoU per mask family\n\n"
        f"Predictor `{weights.name}`; MNIST {split} split, first {n} images, one mask per image "
        f"per family (seed {seed}); holes zero-filled as the harness gives them to blind methods. "
        "Means over images; IoU of an image with no hole and no predicted hole is 1.\n\n"
        "A zero-filled hole on MNIST's black background is indistinguishable from a known black "
        "pixel, so those hole pixels are undetectable by construction; they are also the ones "
        "whose zero fill is already correct. The last-but-one column is the recall over the hole "
        "pixels whose true value is non-zero (the pixels an inpainter must actually fix).\n\n"
        f"{shown.to_markdown(floatfmt='.3f')}\n\n"
        "Regenerate: `python -m inpaintbench.methods.feedforward.mask_predictor iou --data-root ../shared/data "
        f"--split {split} --n {n} --seed {seed}`\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m inpaintbench.methods.feedforward.mask_predictor iou ...``: print the per-family
    IoU table and write it as markdown (default ``reports/mask-predictor-iou.md``)."""
    parser = argparse.ArgumentParser(prog="python -m inpaintbench.methods.feedforward.mask_predictor",
                                     description="Evaluate the blind hole predictor.")
    sub = parser.add_subparsers(dest="command", required=True)
    iou = sub.add_parser("iou", help="IoU of the predicted holes per mask family (MNIST)")
    iou.add_argument("--weights", type=Path, default=MNIST_WEIGHTS, help="predictor folder")
    iou.add_argument("--data-root", default=None, help="folder holding MNIST/raw (default $INPAINTBENCH_MNIST_ROOT)")
    iou.add_argument("--split", default="test", choices=("train", "test"))
    iou.add_argument("--n", type=int, default=1000, help="images per family")
    iou.add_argument("--seed", type=int, default=0)
    iou.add_argument("--families", nargs="+", default=list(DEFAULT_FAMILIES))
    iou.add_argument("--threshold", type=float, default=None, help="override the saved threshold")
    iou.add_argument("--out", type=Path, default=Path("reports") / "mask-predictor-iou.md")
    args = parser.parse_args(argv)

    from inpaintbench.core.registry import dataset_registry

    try:
        predictor = MaskPredictor.from_pretrained(args.weights, threshold=args.threshold)
        dataset = dataset_registry().create("mnist", root=args.data_root, split=args.split)
        table = mask_predictor_report(predictor, dataset, args.families, args.n, args.seed)
    except (InputError, MethodUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = _iou_markdown(table, weights=args.weights, split=args.split, n=args.n, seed=args.seed)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
