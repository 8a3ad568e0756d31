"""The record schema and the append-only JSON-lines store.

One dataclass per kind of line (:class:`SampleRecord`, :class:`RunRecord`,
:class:`DatasetRecord`, :class:`UnavailableRecord`) is written by the runner and read back by
the report, the regression gate and sweeps through :func:`parse_record`; no module spells
the keys of a record by hand. Writes are interrupt-safe; a rerun resumes by record key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

from inpaintbench.core.errors import StorageError
from inpaintbench.core.notices import one_line, warn
from inpaintbench.core.io import FolderLock, atomic_write

#: The fields that identify one sample's result; a rerun skips records whose key exists.
KEY_FIELDS = ("task", "method", "config_hash", "dataset", "dataset_hash", "mask", "mask_hash", "sample_id", "seed")


@dataclass
class SampleRecord:
    """The result of one (method, dataset, task condition, sample).

    Attributes (identity): ``task`` name, ``method`` label and ``method_name`` (registry),
    ``config`` (effective) and ``config_hash``, ``dataset`` label and ``dataset_hash``,
    ``mask`` (the condition label: mask family or ``x<scale>``), ``mask_hash``,
    ``mask_config``, ``sample_id``, ``seed``.
    Attributes (outcome): ``status`` ``"ok"``, ``"error"`` (then ``error`` says why) or
    ``"skipped"`` (not run and left out of every mean; ``note`` says why, e.g. an image whose
    mask has no hole: ``hole_fraction == 0``),
    ``metrics`` ``{name: value}`` (see :data:`inpaintbench.metrics.table.METRICS`), ``time_s``
    seconds per image of the timed call, ``batch_size``, ``peak_memory_bytes`` (CUDA),
    ``hole_fraction``, ``counters`` per-image counters of the call (``nfe``...), ``run_id``,
    ``device``, ``data_sha256`` the digest of the data the sample was read from (not a key
    field: a plan compares it with the data now; None in records written before it existed).
    """

    kind: ClassVar[str] = "sample"
    task: str
    method: str
    method_name: str
    config: dict[str, Any]
    config_hash: str
    dataset: str
    dataset_hash: str
    mask: str
    mask_hash: str
    mask_config: dict[str, Any]
    sample_id: str
    seed: int
    status: str
    run_id: str = ""
    device: str = ""
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    time_s: float | None = None
    batch_size: int | None = None
    peak_memory_bytes: int | None = None
    hole_fraction: float | None = None
    counters: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    data_sha256: str | None = None

    def key(self) -> tuple:
        """The identity of the record (see :data:`KEY_FIELDS`)."""
        return tuple(getattr(self, f) for f in KEY_FIELDS)

    def flat(self) -> dict[str, Any]:
        """One table row: metrics and counters as columns, scalar method and mask settings as
        ``config.<key>`` / ``mask_config.<key>`` columns (sweeps plot against them)."""
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("metrics", "config", "mask_config", "counters")}
        row.update(self.metrics)
        row.update(self.counters)
        row.update({f"config.{k}": v for k, v in self.config.items() if isinstance(v, (int, float, str, bool))})
        row.update({f"mask_config.{k}": v for k, v in self.mask_config.items()
                    if isinstance(v, (int, float, str, bool))})
        return row


@dataclass
class RunRecord:
    """One run of the runner: when, where, with what (a resumed run adds one more, with
    ``resumed`` = the number of records it found done)."""

    kind: ClassVar[str] = "run"
    run_id: str
    suite: str
    task: str
    command: str
    started: str
    git_commit: str | None
    device: str
    device_name: str
    versions: dict[str, str]
    lpips: dict[str, Any]
    seed: int
    n_images: int
    batch_size: int
    torch_threads: int
    resumed: int = 0
    executor: str = "inprocess"
    workers: int = 1
    shard_size: int = 0


@dataclass
class DatasetRecord:
    """A dataset as the run saw it (image shape, count, how LPIPS treated its size)."""

    kind: ClassVar[str] = "dataset"
    run_id: str
    dataset: str
    shape: list[int]
    n: int
    lpips_note: str = ""


@dataclass
class UnavailableRecord:
    """A method that could not be built on this machine, and why."""

    kind: ClassVar[str] = "unavailable"
    run_id: str
    method: str
    reason: str


@dataclass
class UnitRecord:
    """The first line of a unit file: which unit, who ran it, where the wall time went.

    Attributes:
        unit: the unit's content hash; ``name`` its file stem; ``run_id`` the run that wrote it.
        method, dataset, mask: labels; ``sample_ids`` the shard, in order.
        host, pid, executor: who ran it (``inprocess``, ``local``, ``ray``); ``attempt``
            counts the tries of this unit by the executor (1 = first).
        wall_s: seconds from the start of the unit to its records (reading images, drawing
            masks, warm-up, calls, metrics, side files); ``method_s``: the timed method
            calls within it; the harness's share is ``1 - method_s / wall_s``.
        warmup_s: seconds of warm-up calls within ``wall_s`` (paid once per method and shape
            per process, so it is the process's cost, not the harness's).
        torch_threads: torch's CPU thread count while it ran.
    """

    kind: ClassVar[str] = "unit"
    unit: str
    name: str
    run_id: str
    method: str
    dataset: str
    mask: str
    sample_ids: list[str]
    host: str = ""
    pid: int = 0
    executor: str = ""
    attempt: int = 1
    wall_s: float = 0.0
    method_s: float = 0.0
    warmup_s: float = 0.0
    torch_threads: int = 0



RECORD_TYPES = {cls.kind: cls for cls in (SampleRecord, RunRecord, DatasetRecord, UnavailableRecord, UnitRecord)}


def record_to_json(record: Any) -> dict[str, Any]:
    """A record dataclass as the JSON object written to the store (with its ``kind``)."""
    return {"kind": record.kind, **dataclasses.asdict(record)}


def parse_record(data: dict[str, Any]) -> Any:
    """The record dataclass of one JSON object; unknown keys are ignored (written by a newer
    version), None for unknown kinds."""
    cls = RECORD_TYPES.get(data.get("kind"))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _json_safe(value: Any) -> Any:
    # JSON has no inf/NaN: PSNR of identical images is +inf, written as the string "inf".
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


#: Sample statuses a rerun does not redo (errors are retried).
DONE_STATUSES = ("ok", "skipped")

#: Malformed lines named one by one in warnings; the rest are counted.
_NAMED_BAD_LINES = 5


def _parse_line(raw: bytes) -> tuple[Any, str | None]:
    """``(record or None for an unknown kind, None)`` or ``(None, why the line is malformed)``."""
    try:
        data = json.loads(raw)
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        return None, f"not valid JSON ({err})"
    if not isinstance(data, dict):
        return None, f"not a JSON object but {type(data).__name__}"
    try:
        return parse_record(_from_json(data)), None
    except (TypeError, ValueError) as err:
        return None, f"not a valid {data.get('kind')!r} record ({one_line(err)})"


class ResultsStore:
    """A JSON-lines file of records (a unit file, a run file, the single ``results.jsonl`` of
    earlier versions): read without being written, appended whole.

    Writing: :meth:`append` holds the file's lock (``<file>.lock``, see
    :class:`~inpaintbench.core.io.FolderLock`); each append is one ``write`` + ``flush`` +
    ``fsync``, and one that fails (disk full) is cut back to the last whole record and raises
    :class:`~inpaintbench.core.errors.StorageError`. The runner itself writes unit and run files whole
    (:func:`inpaintbench.core.io.atomic_write`); before it replaces a unit file it
    repairs the old one (:meth:`repair`): a partial last line and malformed lines move to
    ``<file>.quarantine``, raw, and every good record stays, in order.

    Reading (iteration, :meth:`done_keys`) never writes: a last line without its newline is
    ignored (it is being written, or was cut), a malformed line is skipped with a warning
    naming the file and line number.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.lock = FolderLock(self.path.with_name(self.path.name + ".lock"))
        self.quarantine_path = self.path.with_name(self.path.name + ".quarantine")

    def _make_folder(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"cannot create the results folder {self.path.parent}: {err.strerror or err}") from err

    def repair(self) -> int:
        """Move malformed lines and a partial last line to the quarantine file; the number moved.

        Call it only while holding the file's lock or the claim of its unit.
        """
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0
        lines = self.path.read_bytes().split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        good, bad = [], []
        for number, raw in enumerate(lines, 1):
            problem = _parse_line(raw)[1]
            if problem is None:
                good.append(raw)
            else:
                bad.append((number, raw, problem))
        if tail:
            bad.append((len(lines) + 1, tail, "a partial last line (a write was interrupted)"))
        if not bad:
            return 0
        for number, _, problem in bad[:_NAMED_BAD_LINES]:
            warn(f"{self.path} line {number} is {problem}; moved to {self.quarantine_path.name}")
        if len(bad) > _NAMED_BAD_LINES:
            warn(f"{self.path}: {len(bad) - _NAMED_BAD_LINES} more malformed lines moved to {self.quarantine_path.name}")
        try:
            with open(self.quarantine_path, "ab") as handle:
                handle.write(b"".join(raw + b"\n" for _, raw, _ in bad))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise StorageError(f"cannot repair {self.path}: {err.strerror or err}; nothing was lost") from err
        atomic_write(self.path, b"".join(raw + b"\n" for raw in good))
        return len(bad)

    def append(self, records: Iterable[Any]) -> None:
        """Append record dataclasses (inf/NaN floats are encoded as strings).

        Raises:
            StorageError: the write failed; the file is cut back to its last whole record.
        """
        text = "".join(json.dumps(_json_safe(record_to_json(r)), sort_keys=True) + "\n" for r in records)
        if not text:
            return
        if self.lock.held:
            self._write(text.encode("utf-8"))
            return
        self._make_folder()
        self.lock.acquire(wait=True)
        try:
            if self._partial_tail():
                self.repair()
            self._write(text.encode("utf-8"))
        finally:
            self.lock.release()

    def _partial_tail(self) -> bool:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"

    def _write(self, data: bytes) -> None:
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            with open(self.path, "ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)  # back to the last whole record
            raise StorageError(
                f"cannot write {self.path}: {err.strerror or err}; every record before this one is kept; "
                "free space (or fix the folder) and rerun to resume") from err

    def __iter__(self) -> Iterator[Any]:
        """The records of the file as dataclasses (lines of unknown kinds are skipped silently,
        malformed lines with a warning naming the line)."""
        if not self.path.exists():
            return
        bad = 0
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                if not raw.endswith(b"\n"):
                    break  # still being written, or cut by a crash: the writer repairs it
                record, problem = _parse_line(raw)
                if problem is not None:
                    bad += 1
                    if bad <= _NAMED_BAD_LINES:
                        warn(f"{self.path} line {number} is {problem}; skipped")
                    continue
                if record is not None:
                    yield record
        if bad > _NAMED_BAD_LINES:
            warn(f"{self.path}: {bad - _NAMED_BAD_LINES} more malformed lines skipped")

    def done_keys(self) -> set[tuple]:
        """Keys of finished sample records (:data:`DONE_STATUSES`): a resumed run skips them and
        retries errors (the report keeps the last record of each key, so a retried error is
        superseded)."""
        return {r.key() for r in self if isinstance(r, SampleRecord) and r.status in DONE_STATUSES}
