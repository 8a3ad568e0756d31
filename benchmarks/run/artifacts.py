"""Example images kept by a run so that reports can draw grids without recomputing."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch


def safe_name(label: str) -> str:
    """A file-system-safe version of a method / dataset / mask label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def example_path(root: Path, dataset: str, mask: str, what: str) -> Path:
    """``root/examples/<dataset>/<mask>/<what>.npz`` with safe names."""
    return root / "examples" / safe_name(dataset) / safe_name(mask) / f"{safe_name(what)}.npz"


def save_examples(path: Path, ids: list[str], **arrays: torch.Tensor) -> None:
    """Merge images into the npz at ``path``, keyed by sample id (existing ids are kept).

    Args:
        ids: sample ids, one per row of each array.
        arrays: tensors ``[N, C, H, W]`` in ``[0, 1]`` (stored as uint8) or bool masks.
    """
    stored = load_examples(path)
    for i, sample_id in enumerate(ids):
        if sample_id in stored:
            continue
        stored[sample_id] = {
            k: (v[i].cpu().numpy() if v.dtype == torch.bool
                else np.round(v[i].detach().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8))
            for k, v in arrays.items()
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {f"{sid}\x1f{k}": a for sid, parts in stored.items() for k, a in parts.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **flat)
    os.replace(tmp, path)  # atomic: an interrupt never leaves half a file


def load_examples(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{sample_id: {array name: uint8 [C,H,W] or bool [1,H,W]}}``; empty if absent."""
    if not path.exists():
        return {}
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            sample_id, _, name = key.partition("\x1f")
            out.setdefault(sample_id, {})[name] = data[key]
    return out


def heatmap_path(root: Path, dataset: str, mask: str, method: str) -> Path:
    """Where the per-pixel error accumulator of one (dataset, mask, method) lives."""
    return root / "examples" / safe_name(dataset) / safe_name(mask) / f"{safe_name(method)}.heat.npz"


def accumulate_heatmap(path: Path, abs_error: torch.Tensor, hole: torch.Tensor) -> None:
    """Add a batch to the running per-pixel sums of ``|raw output - original|`` and of the holes.

    Args:
        abs_error: float ``[B, C, H, W]`` absolute error of the raw output (averaged over C here).
        hole: bool ``[B, 1, H, W]``.

    The accumulator stores sums and a count, so a resumed run (which only processes samples
    not yet written) adds to it without double counting.
    """
    err = abs_error.detach().float().mean(dim=1).sum(dim=0).cpu().numpy().astype(np.float64)
    holes = hole.detach().float()[:, 0].sum(dim=0).cpu().numpy().astype(np.float64)
    count = abs_error.shape[0]
    if path.exists():
        with np.load(path) as old:
            err, holes, count = err + old["error_sum"], holes + old["hole_sum"], count + int(old["count"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, error_sum=err, hole_sum=holes, count=np.int64(count))
    os.replace(tmp, path)


def load_heatmap(path: Path) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``(mean |error| [H, W], hole frequency [H, W] in [0, 1], n images)`` or None if absent."""
    if not path.exists():
        return None
    with np.load(path) as data:
        count = int(data["count"])
        return data["error_sum"] / count, data["hole_sum"] / count, count
