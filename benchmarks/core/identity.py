"""Identity: every hash that says what a result is (effective config, file content, work unit).

Records are keyed by these hashes, so they must never change for the same content: committed
results folders resume on them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def json_digest(content: Any, length: int) -> str:
    """The first ``length`` hex digits of the sha256 of ``content`` as JSON (keys sorted,
    non-JSON values through ``str``): the one rule every identity hash of the suite follows."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:length]


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash (12 hex digits) of a JSON-serialisable config (keys sorted)."""
    return json_digest(config, 12)


def unit_hash(content: dict[str, Any]) -> str:
    """The hash (16 hex digits) of what identifies a work unit's records: the key fields its
    samples share (task, method label and config hash, which covers weights and acceleration,
    dataset and mask labels and hashes, seed) and its sample ids. Execution settings (batch
    size, memory budget, executor) are left out: runs differing only in those share units."""
    return json_digest(content, 16)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of one file's bytes, read in 1 MiB blocks (not cached)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


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

    The config is the registry name, :meth:`~inpaintbench.core.method.Method.effective_config`
    (registry defaults included, inner methods of wrappers included) and the sha256 of every
    weight file the method loaded, so retraining a model changes the hash of its records.
    TRAINING.md notes beside weights do not count.
    """
    config = {"name": name, **method.effective_config()}
    files = method.weight_files()
    if files:
        config["weights_sha256"] = [content_sha256(f)[:16] for f in files]
    return config, config_hash(config)
