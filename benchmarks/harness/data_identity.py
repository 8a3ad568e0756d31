"""Content identity of samples: the sha256 of what each sample is read from.

A record's key names the dataset by its configuration (label, options hash) and the sample by
its id; that alone would let an image file whose pixels changed keep its old metrics. So each
planned sample also gets a *data digest* (16 hex digits): the sha256 of the bytes the sample is
read from (its image file, its mask file, the mask files of a ``files`` condition), or, for a
dataset held in memory (the embedded MNIST sample, torchvision's MNIST), of its image row as
read. The digest is stored in each record (``SampleRecord.data_sha256``) and compared at plan
time: a finished record whose digest differs from the sample's digest now is not done, so
exactly the changed samples are recomputed (their unit is rerun for them alone). Unit hashes
and record keys do not include the digest, so results folders written before digests existed
still resume: their records carry none and are trusted as they are (and stamped with the
current digest when their unit file is rewritten anyway).

File hashes are cached by ``(path, size, mtime_ns)`` in a user cache file
(:func:`cache_path`), so a rerun stats its files instead of reading them; touching a file
without changing it re-hashes it once and recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.identity import file_sha256
from inpaintbench.core.io import FolderLock, atomic_write

#: Environment variable naming the folder of the hash cache (default: the user cache folder).
CACHE_ENV = "INPAINTBENCH_CACHE_DIR"
CACHE_FILE = "content-sha256.json"
#: Entries kept in the cache file (the most recently hashed win); a few MB of JSON at most.
MAX_ENTRIES = 200_000
#: Length of a data digest in hex digits (as the other short hashes of a record).
DIGEST_LENGTH = 16


def cache_path() -> Path:
    """The hash cache file: ``$INPAINTBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/inpaintbench``,
    else ``~/.cache/inpaintbench``, holding :data:`CACHE_FILE`."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                            "inpaintbench")
    return Path(root) / CACHE_FILE


def _hash_file(path: Path) -> str:
    """sha256 hex of one file's bytes: the only place files are read for their identity (tests
    count its calls)."""
    return file_sha256(path)


class ContentCache:
    """sha256 of files, remembered by ``(absolute path, size, mtime_ns)`` across processes.

    Args:
        path: the cache file (default :func:`cache_path`). An unreadable or malformed file is an
            empty cache; an unwritable one is not saved (a cache never fails a run).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else cache_path()
        self._entries = self._read()
        self._new: dict[str, list] = {}

    def _read(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_bytes())
            files = data.get("files", {}) if isinstance(data, dict) else {}
            return {k: v for k, v in files.items() if isinstance(v, list) and len(v) == 3}
        except (OSError, ValueError):
            return {}

    def sha256(self, path: str | os.PathLike) -> str:
        """The sha256 hex digest of the file ``path`` (read only when its size or modification
        time differs from the cached entry).

        Raises:
            InputError: the file cannot be read (named).
        """
        path = Path(path).absolute()
        try:
            st = path.stat()
            key = str(path)
            held = self._new.get(key) or self._entries.get(key)
            if held is not None and held[0] == st.st_size and held[1] == st.st_mtime_ns:
                return str(held[2])
            digest = _hash_file(path)
        except OSError as err:
            raise InputError(f"cannot read data file {path}: {err.strerror or err}; "
                             "keep the dataset's files in place while a run uses them") from err
        self._new[key] = [st.st_size, st.st_mtime_ns, digest]
        return digest

    def save(self) -> None:
        """Merge the entries hashed here into the cache file (under its lock, atomically)."""
        if not self._new:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = FolderLock(self.path.with_name(self.path.name + ".lock"))
            lock.acquire(wait=True)  # another run saving: merge after it, never over it
            try:
                merged = {**self._read(), **self._new}
                if len(merged) > MAX_ENTRIES:  # dict order is insertion order: keep the newest
                    merged = dict(list(merged.items())[-MAX_ENTRIES:])
                atomic_write(self.path, json.dumps({"version": 1, "files": merged}).encode())
            finally:
                lock.release()
        except OSError:
            return  # a read-only home: hashes are recomputed next time, nothing else changes
        self._entries.update(self._new)
        self._new = {}


def _digest(parts: Iterable[bytes | str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:DIGEST_LENGTH]


def sample_sources(dataset: Any, index: int) -> list[Path] | None:
    """The files item ``index`` of ``dataset`` is read from, or None when unknown.

    A dataset may say so itself with ``source_files(index) -> list of paths``; otherwise the
    built-in layouts are recognised: a ``files`` list (one file per item: folders, CelebA) or
    a ``pairs`` list of tuples holding paths (image + mask folders).
    """
    getter = getattr(dataset, "source_files", None)
    if callable(getter):
        return [Path(p) for p in getter(index)]
    for name in ("files", "pairs"):
        items = getattr(dataset, name, None)
        if isinstance(items, (list, tuple)) and len(items) == len(dataset):
            item = items[index]
            paths = [p for p in (item if isinstance(item, tuple) else (item,)) if isinstance(p, (str, os.PathLike))]
            if paths and all(isinstance(p, os.PathLike) for p in paths):
                return [Path(p) for p in paths]
    return None


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().to("cpu").contiguous().numpy().tobytes()


def sample_digests(dataset: Any, n: int, cache: ContentCache) -> list[str]:
    """The data digests of items ``0..n-1`` of ``dataset`` (see the module docstring).

    Files are hashed through ``cache``; a dataset held in memory as an ``images`` tensor of one
    row per item is hashed row by row; any other dataset (a plugin's) is read item by item
    and its image and mask tensors hashed.
    """
    rows = getattr(dataset, "images", None)
    in_memory = isinstance(rows, torch.Tensor) and rows.ndim >= 1 and rows.shape[0] == len(dataset)
    digests = []
    for index in range(n):
        files = sample_sources(dataset, index)
        if files is not None:
            digests.append(_digest(["files", *(cache.sha256(f) for f in files)]))
        elif in_memory:
            digests.append(_digest(["tensor", str(rows.dtype), str(tuple(rows[index].shape)), _tensor_bytes(rows[index])]))
        else:
            sample = dataset[index]
            mask = getattr(sample, "mask", None)
            digests.append(_digest(["sample", str(tuple(sample.image.shape)), _tensor_bytes(sample.image),
                                    b"" if mask is None else _tensor_bytes(mask)]))
    return digests


def _condition_files(condition: Any) -> list[Path]:
    """The mask files a condition reads (a ``files`` mask family), sorted; empty otherwise."""
    family = getattr(condition, "family", None)
    if not callable(family) or getattr(condition, "name", None) in (None, "dataset"):
        return []
    files = getattr(family(), "files", None)
    return [Path(p) for p in files] if isinstance(files, (list, tuple)) else []


def condition_digests(condition: Any, ids: Sequence[str], digests: Sequence[str], cache: ContentCache) -> tuple[str, ...]:
    """The data digests of samples ``ids`` under ``condition``: each sample's own digest, with
    the mask file it reads added for a ``files`` family matched by sample, or all of the
    family's files (as one folder digest) when each mask picks one at random."""
    files = _condition_files(condition)
    if not files:
        return tuple(digests)
    family = condition.family()
    if getattr(family, "per_sample", False) and len(files) > 1:
        by_stem = {p.stem: p for p in files}
        out = []
        for sid, digest in zip(ids, digests):
            path = by_stem.get(sid.rsplit("/", 1)[-1])
            out.append(digest if path is None else _digest([digest, "mask", cache.sha256(path)]))
        return tuple(out)
    folder = _digest(["masks", *(cache.sha256(p) for p in files)])
    return tuple(_digest([digest, folder]) for digest in digests)


def plan_digests(views: Mapping[str, Any], conditions: Sequence[Any],
                 cache: ContentCache | None = None) -> dict[tuple[str, str], tuple[str, ...]]:
    """``(dataset label, condition label) -> data digest of each planned sample`` (in the
    views' id order), hashing through ``cache`` (default: the user cache, saved afterwards).

    Args:
        views: :class:`~inpaintbench.harness.data.DatasetView` by label (``dataset``, ``ids``).
        conditions: the suite's task conditions.
    """
    cache = cache if cache is not None else ContentCache()
    out = {}
    for label, view in views.items():
        own = sample_digests(view.dataset, len(view.ids), cache)
        for condition in conditions:
            out[label, condition.label] = condition_digests(condition, view.ids, own, cache)
    cache.save()
    return out


def is_current(done: Mapping[tuple, set], key: tuple, digest: str | None) -> bool:
    """Whether a finished record of ``key`` stands for the sample's data as it is now.

    Args:
        done: finished record keys -> the data digests their records carry (None: a record
            written before digests existed).
        digest: the sample's digest now.

    A record with this digest is current; records that all lack one are trusted (legacy
    folders resume); a record with another digest means the data changed: not current.
    """
    held = done.get(key)
    if not held:
        return False
    return digest in held or held == {None}
