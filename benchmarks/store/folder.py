"""The results folder: work units as files, run files, the legacy single file, and their reader.

A run is planned as units, each one (method, dataset, task condition, shard of sample ids)
with a content hash of everything that decides its records (:func:`unit_hash`). Running a
unit is idempotent: its records are written to their own file, ``units/<name>.jsonl``,
through a temporary file and an atomic rename, so the file is either absent or whole. Any
number of processes or machines can therefore work on one results folder: a unit is claimed
by an exclusive lock on ``units/<name>.lock`` (held while it runs, dropped by the kernel when
its holder dies), a unit whose samples are all done is never run again, and a unit rerun
after failures replaces its file with one that keeps the earlier finished records.

Layout of a results folder::

    results.jsonl          records of the single-file runner (read, never written any more)
    runs/<run id>.jsonl    one per run: its RunRecord, DatasetRecords, UnavailableRecords
    units/<unit>.jsonl     one per unit: a UnitRecord, then its SampleRecords
    examples/...           example images and heat maps, keyed by sample id

:func:`read_records` merges all of them (and any other ``results.jsonl``-style file) and
refuses two finished records of one key whose metrics disagree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from inpaintbench.core.errors import InputError
from inpaintbench.core.io import atomic_write
from inpaintbench.store.artifacts import safe_name
from inpaintbench.core.io import FolderBusy, FolderLock
from inpaintbench.store.records import (
    DONE_STATUSES,
    ResultsStore,
    SampleRecord,
    UnitRecord,
    _json_safe,
    record_to_json,
)

#: The single-file results of earlier versions, still read (and resumed from) in a folder.
LEGACY_FILE = "results.jsonl"
UNITS_DIR = "units"
RUNS_DIR = "runs"

#: Two finished records of one key whose metrics differ by more than this (relative) conflict.
#: Batched networks agree to float rounding across batch sizes (about 1e-6 relative), so an
#: honest recomputation stays far inside it.
CONFLICT_RTOL = 1e-4




@dataclass(frozen=True, eq=False)
class WorkUnit:
    """One planned unit: a method on a shard of one (dataset, condition) pair.

    Attributes:
        method, dataset, condition: labels of the suite's specs / condition.
        indices: dataset indices of the shard (``start..stop-1``); ``sample_ids`` their ids.
        keys: the record key of each sample (:meth:`SampleRecord.key`), in order.
        hash: the content hash (:func:`unit_hash`); ``name`` the file stem.
        base: the record fields its samples share (method, config, hashes, seed, device).
        num_gpus: GPUs the unit asks its executor for (0 on the CPU).
        done: keys of its samples already finished in the folder when it was planned (in any
            file: an earlier run's single file, units of another shard size) from the data
            as it is now.
        content: the data digest of each sample (``sample_ids`` order;
            :mod:`inpaintbench.harness.data_identity`), stamped into its records.
    """

    method: str
    dataset: str
    condition: str
    indices: tuple[int, ...]
    sample_ids: tuple[str, ...]
    keys: tuple[tuple, ...]
    hash: str
    name: str
    base: dict[str, Any]
    num_gpus: float = 0.0
    done: frozenset = frozenset()
    content: tuple[str, ...] = ()


def unit_name(method: str, dataset: str, condition: str, shard: int, digest: str) -> str:
    """The file stem of a unit: readable labels, the shard number and the hash."""
    return f"{safe_name(method)}--{safe_name(dataset)}--{safe_name(condition)}--{shard:04d}-{digest}"


def _lines(records: Iterable[Any]) -> bytes:
    return "".join(json.dumps(_json_safe(record_to_json(r)), sort_keys=True) + "\n" for r in records).encode()


class ResultsFolder:
    """A results folder of unit files and run files (see the module docstring).

    Args:
        root: the folder (``--out``). A path to a ``results.jsonl`` inside it means the folder.
    """

    def __init__(self, root: str | os.PathLike):
        root = Path(root)
        self.root = root.parent if root.name == LEGACY_FILE or root.suffix == ".jsonl" else root
        self.units_dir = self.root / UNITS_DIR
        self.runs_dir = self.root / RUNS_DIR

    def unit_path(self, unit: WorkUnit) -> Path:
        return self.units_dir / f"{unit.name}.jsonl"

    @contextlib.contextmanager
    def claim(self, unit: WorkUnit, *, wait: bool) -> Iterator[bool]:
        """Hold the unit's lock for a block; yields False (without blocking) when another process
        holds it and ``wait`` is false."""
        self.units_dir.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(self.units_dir / f"{unit.name}.lock")
        try:
            lock.acquire(wait=wait)
        except FolderBusy:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
            # The lock file stays: removing it would race with the next claimant's open().

    def write_run(self, run_id: str, records: list[Any]) -> Path:
        """Write a run's own records (RunRecord, DatasetRecords, UnavailableRecords) at once,
        named by the start time so the folder lists runs in the order they started."""
        started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        path = self.runs_dir / f"{started}-{safe_name(run_id)}.jsonl"
        atomic_write(path, _lines(records))
        return path

    def unit_records(self, unit: WorkUnit) -> list[Any]:
        """The records of a unit's file (empty when it is not written yet), less the sample
        records computed from other data than the plan's (a file that changed since: stale)."""
        path = self.unit_path(unit)
        records = list(ResultsStore(path)) if path.exists() else []
        digests = dict(zip(unit.sample_ids, unit.content))
        return [r for r in records if not isinstance(r, SampleRecord) or r.data_sha256 is None
                or digests.get(r.sample_id, r.data_sha256) == r.data_sha256]

    def commit_unit(self, unit: WorkUnit, header: UnitRecord, samples: list[SampleRecord]) -> Path:
        """Make a unit's records visible, keeping the finished records of an earlier file of the
        same unit (a rerun after errors only recomputes what was not done) and adding the
        earlier header's times to ``header``'s. Malformed lines of
        the earlier file move to ``<unit>.jsonl.quarantine`` (see
        :meth:`~inpaintbench.store.records.ResultsStore.repair`). Call it holding the unit's claim."""
        path = self.unit_path(unit)
        if path.exists():
            ResultsStore(path).repair()
        earlier = self.unit_records(unit)
        kept = [r for r in earlier if isinstance(r, SampleRecord) and r.status in DONE_STATUSES]
        before = next((r for r in earlier if isinstance(r, UnitRecord)), None)
        if before is not None:  # the unit's time is the sum over the attempts that wrote it
            header = dataclasses.replace(header, wall_s=header.wall_s + before.wall_s,
                                         method_s=header.method_s + before.method_s,
                                         warmup_s=header.warmup_s + before.warmup_s)
        fresh = {r.key() for r in samples}
        merged = _stamped(unit, [r for r in kept if r.key() not in fresh], fresh=False) + _stamped(unit, samples)
        order = {key: i for i, key in enumerate(unit.keys)}
        merged.sort(key=lambda r: order.get(r.key(), len(order)))
        atomic_write(path, _lines([header, *merged]))
        return path

    def files(self) -> list[Path]:
        """Every records file of the folder: the legacy file, run files, unit files (sorted)."""
        legacy = [self.root / LEGACY_FILE] if (self.root / LEGACY_FILE).is_file() else []
        runs = sorted(self.runs_dir.glob("*.jsonl")) if self.runs_dir.is_dir() else []
        units = sorted(self.units_dir.glob("*.jsonl")) if self.units_dir.is_dir() else []
        return legacy + runs + units

    def done_keys(self) -> set[tuple]:
        """Keys of the folder's finished sample records (ok or skipped), from every file."""
        return set().union(*(ResultsStore(path).done_keys() for path in self.files()))

    def done_digests(self) -> dict[tuple, set]:
        """Keys of the folder's finished sample records -> the data digests they carry (None
        for a record written before digests existed), from every file."""
        out: dict[tuple, set] = {}
        for path in self.files():
            for r in ResultsStore(path):
                if isinstance(r, SampleRecord) and r.status in DONE_STATUSES:
                    out.setdefault(r.key(), set()).add(r.data_sha256)
        return out

    def exists(self) -> bool:
        return bool(self.files())


def _stamped(unit: WorkUnit, records: list[SampleRecord], *, fresh: bool = True) -> list[SampleRecord]:
    """``records`` with the unit's data digests: fresh ones were computed from the data as
    planned; kept ones without a digest (written before digests existed) were trusted by the
    plan, so they get it too, once, and a later change of their data is then seen. A kept
    record keeps its own digest."""
    if not unit.content:
        return list(records)
    digests = dict(zip(unit.sample_ids, unit.content))
    return [dataclasses.replace(r, data_sha256=digests.get(r.sample_id, r.data_sha256))
            if fresh or r.data_sha256 is None else r for r in records]


def _agree(a: dict[str, float], b: dict[str, float]) -> bool:
    for name in set(a) | set(b):
        x, y = a.get(name), b.get(name)
        if x is None or y is None:
            return False
        if isinstance(x, float) and isinstance(y, float) and (math.isnan(x) or math.isinf(x) or math.isinf(y)):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return False
            continue
        if not math.isclose(x, y, rel_tol=CONFLICT_RTOL, abs_tol=1e-9):
            return False
    return True


def records_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The records files named by ``paths``: a ``.jsonl`` file as it is (with its folder's run
    and unit files when it is a folder's ``results.jsonl``), a folder as all of its files.

    Raises:
        InputError: a path that does not exist, or a folder without results.
    """
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = ResultsFolder(path).files()
            if not found:
                raise InputError(f"results folder {path} holds no results (no results.jsonl, runs/ or units/)")
            files += found
        elif path.name == LEGACY_FILE and (path.exists() or ResultsFolder(path).exists()):
            files += ResultsFolder(path).files()
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"results file {path} does not exist; pass a results folder or a .jsonl file")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique


def read_records(paths: Iterable[str | os.PathLike]) -> list[Any]:
    """Every record of ``paths`` (see :func:`records_files`), with sample records merged.

    Within one file the last record of a key wins (a retried error is superseded, as before).
    Across files, a finished record beats an error; two finished records of one key are one
    result when their metrics agree (to :data:`CONFLICT_RTOL`) and a conflict otherwise.

    Raises:
        InputError: conflicting duplicates, naming the key, both files and a differing metric.
    """
    out: list[Any] = []
    samples: dict[tuple, tuple[SampleRecord, Path]] = {}
    for path in records_files(paths):
        within: dict[tuple, SampleRecord] = {}
        for record in ResultsStore(path):
            if isinstance(record, SampleRecord):
                within[record.key()] = record
            else:
                out.append(record)
        for key, record in within.items():
            if key not in samples:
                samples[key] = (record, path)
                continue
            held, where = samples[key]
            held_done, new_done = held.status in DONE_STATUSES, record.status in DONE_STATUSES
            if held_done and new_done:
                if held.status != record.status or not _agree(held.metrics, record.metrics):
                    differing = sorted(n for n in set(held.metrics) | set(record.metrics)
                                       if held.metrics.get(n) != record.metrics.get(n))
                    shown = differing[0] if differing else "status"
                    if None not in (held.data_sha256, record.data_sha256) and held.data_sha256 != record.data_sha256:
                        raise InputError(
                            f"results for {record.method} / {record.dataset} / {record.mask} / sample "
                            f"{record.sample_id!r} were computed from different data ({where}: data "
                            f"{held.data_sha256}, {path}: data {record.data_sha256}): its file changed between "
                            "runs with different shard sizes; delete the older file")
                    raise InputError(
                        f"conflicting results for {record.method} / {record.dataset} / {record.mask} / sample "
                        f"{record.sample_id!r} (config {record.config_hash}): {where} has {shown} = "
                        f"{held.metrics.get(shown, held.status)}, {path} has {record.metrics.get(shown, record.status)}; "
                        "they were computed differently: delete the file that is wrong (or report them separately)")
            elif new_done or not held_done:
                samples[key] = (record, path)
    out.extend(record for record, _ in samples.values())
    return out




def raw_records(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Every record line of ``paths`` (see :func:`records_files`) as a plain dict, in file order,
    nothing merged: a duplicate shows up twice (for tools that audit a folder, and tests)."""
    out = []
    for path in records_files(paths):
        with open(path, "rb") as handle:
            out += [json.loads(line) for line in handle if line.endswith(b"\n") and line.strip()]
    return out
