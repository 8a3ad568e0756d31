"""Example images kept by a run so that reports can draw grids without recomputing."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.notices import warn
from inpaintbench.core.io import FolderLock, atomic_write


def safe_name(label: str) -> str:
    """A file-system-safe version of a method / dataset / mask label.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_`` (so no
    separator survives), and a name that is empty or starts with a dot (``.``, ``..``, hidden
    files) gets a leading ``_``: no label can name a parent folder, every path built from
    labels stays under the results folder.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(label))
    return name if name and not name.startswith(".") else f"_{name}"


def check_output_dir(path: str | os.PathLike, what: str) -> None:
    """Raise :class:`InputError` unless ``path`` is a directory that can be written, or can be
    created (nothing is created here: call it before writing anything).

    Args:
        what: how the message names the folder, e.g. ``"results folder (--out)"``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} is a file, not a directory; pass a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{what} {path} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path} is not writable ({existing} does not allow writing); pass another folder")


def _atomic_savez(path: Path, **arrays: Any) -> None:
    """Write a compressed npz with :func:`~inpaintbench.core.io.atomic_write`."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def _read_npz(path: Path, what: str, *, rebuild: bool) -> dict[str, np.ndarray] | None:
    """The arrays of an npz side file; None when absent or corrupt. A corrupt file is a
    warning: a writer (``rebuild``) moves it aside to ``<name>.corrupt`` and starts it anew, a
    reader ignores it."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as err:  # noqa: BLE001 - BadZipFile, ValueError, OSError, EOFError: all mean corrupt
        reason = f"{type(err).__name__}: {err}"
        if rebuild:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            warn(f"{what} {path} is corrupt ({reason}); moved to {aside.name} and rebuilt from this run's images")
        else:
            warn(f"{what} {path} is corrupt ({reason}); ignored")
        return None


@contextlib.contextmanager
def _updating(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` around a read-modify-write of a side file: units of one (dataset,
    mask, method) may run in several processes at once, and each merges into the same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(path.with_name(path.name + ".lock"))
    lock.acquire(wait=True)
    try:
        yield
    finally:
        lock.release()


def example_path(root: Path, dataset: str, mask: str, what: str) -> Path:
    """``root/examples/<dataset>/<mask>/<what>.npz`` with safe names."""
    return root / "examples" / safe_name(dataset) / safe_name(mask) / f"{safe_name(what)}.npz"


#: The npz entry naming the configuration a side file's images or sums were made with.
CONFIG_ENTRY = "_made_by_config"


def _made_by(data: dict[str, np.ndarray] | None) -> str | None:
    return None if data is None or CONFIG_ENTRY not in data else str(data[CONFIG_ENTRY])


def save_examples(path: Path, ids: list[str], *, made_by: str | None = None, **arrays: torch.Tensor) -> None:
    """Merge images into the npz at ``path``, keyed by sample id (existing ids are kept).

    Args:
        ids: sample ids, one per row of each array.
        made_by: what made them (a method's config hash, a mask's hash): a file made by
            something else (a method changed since, in a resumed folder) is started anew, so
            grids never show an older configuration's outputs beside the newer one's numbers.
        arrays: tensors ``[N, C, H, W]`` in ``[0, 1]`` (stored as uint8) or bool masks.
    """
    with _updating(path):
        _merge_examples(path, ids, arrays, made_by)


def _merge_examples(path: Path, ids: list[str], arrays: dict[str, torch.Tensor], made_by: str | None) -> None:
    data = _read_npz(path, "example file", rebuild=True)
    stored = {} if made_by is not None and data is not None and _made_by(data) != made_by else _split(data)
    for i, sample_id in enumerate(ids):
        if sample_id in stored:
            continue
        stored[sample_id] = {
            k: (v[i].cpu().numpy() if v.dtype == torch.bool
                else np.round(v[i].detach().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8))
            for k, v in arrays.items()
        }
    flat = {f"{sid}\x1f{k}": a for sid, parts in stored.items() for k, a in parts.items()}
    if made_by is not None:
        flat[CONFIG_ENTRY] = np.array(made_by)
    _atomic_savez(path, **flat)  # an interrupt never leaves half a file


def _split(data: dict[str, np.ndarray] | None) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, array in (data or {}).items():
        if key == CONFIG_ENTRY:
            continue
        sample_id, _, name = key.rpartition("\x1f")  # array names never hold the separator; ids may
        out.setdefault(sample_id, {})[name] = array
    return out


def load_examples(path: Path, *, rebuild: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """``{sample_id: {array name: uint8 [C,H,W] or bool [1,H,W]}}``; empty if absent or
    corrupt (a warning; ``rebuild``: the writer moves the file aside)."""
    return _split(_read_npz(path, "example file", rebuild=rebuild))


def heatmap_path(root: Path, dataset: str, mask: str, method: str) -> Path:
    """Where the per-pixel error accumulator of one (dataset, mask, method) lives."""
    return root / "examples" / safe_name(dataset) / safe_name(mask) / f"{safe_name(method)}.heat.npz"


def accumulate_heatmap(path: Path, abs_error: torch.Tensor, hole: torch.Tensor,
                       sample_ids: list[str] | None = None, *, made_by: str | None = None) -> None:
    """Add a batch to the running per-pixel sums of ``|raw output - original|`` and of the holes.

    Args:
        abs_error: float ``[B, C, H, W]`` absolute error of the raw output (averaged over C here).
        hole: bool ``[B, 1, H, W]``.
        sample_ids: the batch's ids. The accumulator stores the ids it holds and adds a sample
            only once, so it can be written before the batch's records: a crash between the
            two makes the rerun redo the samples and the heat map skip them (exactly once,
            never 36 images for 32). A file of the first version (no ids) keeps adding.
        made_by: the method's config hash: sums of another configuration start anew.

    A corrupt file is moved aside with a warning and the accumulator starts anew.
    """
    with _updating(path):
        _add_to_heatmap(path, abs_error, hole, sample_ids, made_by)


def _add_to_heatmap(path: Path, abs_error: torch.Tensor, hole: torch.Tensor, sample_ids: list[str] | None,
                    made_by: str | None) -> None:
    old = _read_npz(path, "heat map", rebuild=True)
    if old is not None and made_by is not None and _made_by(old) != made_by:
        old = None  # another configuration's sums: this one's start here
    if old is not None and not {"error_sum", "hole_sum", "count"} <= set(old):
        warn(f"heat map {path} lacks its sums; rebuilt from this run's images")
        old = None
    errors = abs_error.detach().float().mean(dim=1).cpu().numpy().astype(np.float64)  # [B, H, W]
    holes = hole.detach().float()[:, 0].cpu().numpy().astype(np.float64)
    if old is not None and old["error_sum"].shape != errors.shape[1:]:
        warn(f"heat map {path} is for {old['error_sum'].shape} images, this run's are {errors.shape[1:]}; rebuilt")
        old = None
    keyed = sample_ids is not None and (old is None or "ids" in old)
    seen = set(old["ids"].tolist()) if keyed and old is not None else set()
    keep = [j for j in range(errors.shape[0]) if not keyed or str(sample_ids[j]) not in seen]
    if not keep:
        return
    error_sum, hole_sum, count = errors[keep].sum(axis=0), holes[keep].sum(axis=0), len(keep)
    ids = [str(sample_ids[j]) for j in keep] if keyed else []
    if old is not None:
        error_sum, hole_sum, count = error_sum + old["error_sum"], hole_sum + old["hole_sum"], count + int(old["count"])
        ids = [*(old["ids"].tolist() if keyed else []), *ids]
    arrays = dict(error_sum=error_sum, hole_sum=hole_sum, count=np.int64(count))
    if keyed:
        arrays["ids"] = np.array(ids, dtype=str)
    if made_by is not None:
        arrays[CONFIG_ENTRY] = np.array(made_by)
    _atomic_savez(path, **arrays)


def load_heatmap(path: Path) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``(mean |error| [H, W], hole frequency [H, W] in [0, 1], n images)``; None if absent or
    corrupt (a warning)."""
    data = _read_npz(path, "heat map", rebuild=False)
    if data is None or not {"error_sum", "hole_sum", "count"} <= set(data) or int(data["count"]) < 1:
        return None
    count = int(data["count"])
    return data["error_sum"] / count, data["hole_sum"] / count, count


def outputs_path(root: Path, dataset: str, mask: str, method: str) -> Path:
    """Where a FID run keeps every composited output of one (dataset, condition, method)."""
    return Path(root) / "outputs" / safe_name(dataset) / safe_name(mask) / f"{safe_name(method)}.npz"


def originals_path(root: Path, dataset: str) -> Path:
    """Where a FID run keeps the originals of a dataset (the real set)."""
    return Path(root) / "outputs" / safe_name(dataset) / "_original.npz"


def save_outputs(root: Path, dataset: str, mask: str, method: str, ids: list[str], composited: torch.Tensor,
                 made_by: str | None = None) -> None:
    """Keep composited outputs ``[B, C, H, W]`` in ``[0, 1]`` (uint8 npz, merged by sample id;
    ``made_by``: the method's config hash, see :func:`save_examples`)."""
    save_examples(outputs_path(root, dataset, mask, method), ids, made_by=made_by, output=composited)


def save_originals(root: Path, dataset: str, ids: list[str], images: torch.Tensor) -> None:
    """Keep a dataset's originals (the real set of its FIDs)."""
    save_examples(originals_path(root, dataset), ids, original=images)


class SideOutputs:
    """The side files a run keeps beside its records, written through one object so the unit
    runner only measures: example images (the first ``n_examples`` sample ids of a dataset),
    heat maps of the absolute error inside the holes (every sample), and, for FID/KID, every
    original and composited output.

    Each write is keyed by sample id and records the configuration that made it, so a crash
    between a side file and the records never counts an image twice, and a changed method
    starts its side files anew.

    Args:
        root: the results folder.
        example_ids: the sample ids whose images are kept as examples.
        keep_all: also keep every original and composited output (suite option ``fid``).
    """

    def __init__(self, root: Path, example_ids: set[str], *, keep_all: bool = False):
        self.root, self.example_ids, self.keep_all = Path(root), set(example_ids), keep_all

    def inputs(self, dataset: str, condition: str, ids: list[str], images: torch.Tensor, shown_mask: torch.Tensor,
               made_by: str) -> None:
        """Keep the originals ``[B, C, H, W]`` and the masks shown in grids ``[B, 1, H, W]`` of
        the example ids among ``ids``."""
        keep = [j for j, sid in enumerate(ids) if sid in self.example_ids]
        if keep:
            save_examples(example_path(self.root, dataset, condition, "_input"), [ids[j] for j in keep],
                          made_by=made_by, original=images[keep], mask=shown_mask[keep])

    def outputs(self, dataset: str, condition: str, method: str, ids: list[str], *, original: torch.Tensor,
                raw: torch.Tensor, composited: torch.Tensor, region: torch.Tensor, made_by: str) -> None:
        """Keep one batch's outputs of ``method``: heat map of ``|raw - original|`` over
        ``region`` (bool ``[B, 1, H, W]``), the example ids' composited outputs, and with
        ``keep_all`` every original and composited output (all ``[B, C, H, W]`` in ``[0, 1]``)."""
        accumulate_heatmap(heatmap_path(self.root, dataset, condition, method), (raw - original).abs(), region,
                           ids, made_by=made_by)
        keep = [j for j, sid in enumerate(ids) if sid in self.example_ids]
        if keep:
            save_examples(example_path(self.root, dataset, condition, method), [ids[j] for j in keep],
                          made_by=made_by, output=composited[keep])
        if self.keep_all:
            save_originals(self.root, dataset, ids, original.cpu())
            save_outputs(self.root, dataset, condition, method, ids, composited, made_by)
