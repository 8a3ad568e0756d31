"""Evaluation of the hole predictor: per-image scores of predicted holes, per-family means, the
markdown report and its command line.

A zero-filled hole is indistinguishable from a genuinely black known pixel: on MNIST (white
digits on black) every hole pixel on the background is undetectable, and the IoU reported by
:func:`evaluate_mask_predictor` says so honestly. Those pixels are also the ones whose zero fill
is already correct, which is why :func:`score_masks` reports recall on the non-zero hole pixels
as well.

Command line::

    python -m inpaintbench.methods.feedforward.mask_predictor_eval iou --data-root ../shared/data \
        --n 1000 --seed 0 --out reports/mask-predictor-iou.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.images import apply_mask, check_mask_batch
from inpaintbench.methods.feedforward.mask_predictor import MNIST_WEIGHTS, MaskPredictor
from inpaintbench.methods.feedforward.mask_predictor_train import DEFAULT_FAMILIES, create_families
from inpaintbench.core.seeding import make_generator


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
            for name, family in create_families(families).items()}


def mask_predictor_report(predictor: MaskPredictor, dataset: Dataset, families: Sequence[str],
                          n: int, seed: int, *, batch_size: int = 256):
    """All the :func:`score_masks` means per family as a ``pandas.DataFrame`` (one row per
    family, same masks as :func:`evaluate_mask_predictor`)."""
    import pandas as pd

    images = _first_images(dataset, n)
    rows = []
    for name, family in create_families(families).items():
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
        "Regenerate: `python -m inpaintbench.methods.feedforward.mask_predictor_eval iou --data-root ../shared/data "
        f"--split {split} --n {n} --seed {seed}`\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m inpaintbench.methods.feedforward.mask_predictor_eval iou ...``: print the per-family
    IoU table and write it as markdown (default ``reports/mask-predictor-iou.md``)."""
    parser = argparse.ArgumentParser(prog="python -m inpaintbench.methods.feedforward.mask_predictor_eval",
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
