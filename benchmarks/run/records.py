"""The record schema and the append-only JSON-lines store.

One dataclass per kind of line (:class:`SampleRecord`, :class:`RunRecord`,
:class:`DatasetRecord`, :class:`UnavailableRecord`) is written by the runner and read back by
the report, the regression gate and sweeps through :func:`parse_record`; no module spells
the keys of a record by hand. Writes are interrupt-safe; a rerun resumes by record key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

#: The fields that identify one sample's result; a rerun skips records whose key exists.
KEY_FIELDS = ("task", "method", "config_hash", "dataset", "dataset_hash", "mask", "mask_hash", "sample_id", "seed")


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable config (keys sorted)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(path: str | os.PathLike) -> str:
    """sha256 of a weight file, or of a folder's files (relative names and contents, sorted).

    Cached per (path, size, modification time): rewriting a file gives a new hash.
    """
    path = Path(path)
    if path.is_file():
        st = path.stat()
        return _sha256_of(str(path), st.st_size, st.st_mtime_ns)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".md"):
        st = child.stat()
        digest.update(child.relative_to(path).as_posix().encode() + b"\0")
        digest.update(_sha256_of(str(child), st.st_size, st.st_mtime_ns).encode())
    return digest.hexdigest()


def method_identity(name: str, method: Any) -> tuple[dict[str, Any], str]:
    """The effective configuration of a built method and its hash.

    The config is the registry name, :meth:`~inpaintbench.api.Method.effective_config`
    (registry defaults included, inner methods of wrappers included) and the sha256 of every
    weight file the method loaded, so retraining a model changes the hash of its records.
    TRAINING.md notes beside weights do not count.
    """
    config = {"name": name, **method.effective_config()}
    files = method.weight_files()
    if files:
        config["weights_sha256"] = [content_sha256(f)[:16] for f in files]
    return config, config_hash(config)


@dataclass
class SampleRecord:
    """The result of one (method, dataset, task condition, sample).

    Attributes (identity): ``task`` name, ``method`` label and ``method_name`` (registry),
    ``config`` (effective) and ``config_hash``, ``dataset`` label and ``dataset_hash``,
    ``mask`` (the condition label: mask family or ``x<scale>``), ``mask_hash``,
    ``mask_config``, ``sample_id``, ``seed``.
    Attributes (outcome): ``status`` ``"ok"`` or ``"error"`` (then ``error`` says why),
    ``metrics`` ``{name: value}`` (see :data:`inpaintbench.metrics.METRICS`), ``time_s``
    seconds per image of the timed call, ``batch_size``, ``peak_memory_bytes`` (CUDA),
    ``hole_fraction``, ``counters`` per-image counters of the call (``nfe``...), ``run_id``,
    ``device``.
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


RECORD_TYPES = {cls.kind: cls for cls in (SampleRecord, RunRecord, DatasetRecord, UnavailableRecord)}


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


class ResultsStore:
    """A JSON-lines file of records, each written whole or not at all.

    Each record is one ``write`` of one line followed by ``flush`` + ``fsync``. A run killed
    mid-write can leave at most one partial last line; opening the store cuts it off, so the
    file always holds complete records and a resumed run redoes only that one.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_tail()

    def _drop_partial_tail(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, records: Iterable[Any]) -> None:
        """Append record dataclasses (inf/NaN floats are encoded as strings)."""
        text = "".join(json.dumps(_json_safe(record_to_json(r)), sort_keys=True) + "\n" for r in records)
        if not text:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def __iter__(self) -> Iterator[Any]:
        """The records of the file as dataclasses (lines of unknown kinds are skipped)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    record = parse_record(_from_json(json.loads(line)))
                    if record is not None:
                        yield record

    def done_keys(self) -> set[tuple]:
        """Keys of successful sample records: a resumed run skips them and retries errors
        (the report keeps the last record of each key, so a retried error is superseded)."""
        return {r.key() for r in self if isinstance(r, SampleRecord) and r.status == "ok"}
