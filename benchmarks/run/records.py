"""Append-only JSON-lines results: interrupt-safe writes, resume by record key."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

#: The fields that identify one sample's result; a rerun skips records whose key exists.
KEY_FIELDS = ("task", "method", "config_hash", "dataset", "dataset_hash", "mask", "mask_hash", "sample_id", "seed")


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable config (keys sorted)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def record_key(record: dict[str, Any]) -> tuple:
    """The identity of a sample record (see :data:`KEY_FIELDS`)."""
    return tuple(record.get(field) for field in KEY_FIELDS)


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

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records (JSON-serialisable dicts; inf/NaN floats are encoded as strings)."""
        text = "".join(json.dumps(_json_safe(r), sort_keys=True) + "\n" for r in records)
        if not text:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    yield _from_json(json.loads(line))

    def done_keys(self) -> set[tuple]:
        """Keys of successful sample records: a resumed run skips them and retries errors
        (the report keeps the last record of each key, so a retried error is superseded)."""
        return {record_key(r) for r in self if r.get("kind") == "sample" and r.get("status") == "ok"}
