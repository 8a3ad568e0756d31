"""File io every writer of the suite shares: the one atomic write and the exclusive locks.

:func:`atomic_write` (and :func:`atomic_write_text`) write through a temporary file, fsync and
an atomic rename, so a reader sees the old file or the whole new one, never part of it: unit
files, run files, side files (examples, heat maps, feature caches), pages and figures.

Exclusive file locks of a results folder: the claim of a work unit, a side file's update.

A process running a unit holds an exclusive ``fcntl.flock`` on ``units/<unit>.lock`` until its
file is renamed into place, so two processes never compute one unit at once (the second
skips it, or waits for it when nothing else is left); a read-modify-write of a shared side
file (an example npz, a heat map) holds ``<file>.lock``; :meth:`ResultsStore.append
<inpaintbench.store.records.ResultsStore.append>` holds ``<file>.lock``. A lock taken without
waiting raises :class:`FolderBusy` naming the holder (the file holds "pid N on HOST since
..."). The kernel drops a lock when its holder dies, so a crashed worker never leaves a unit
claimed; the lock files stay (removing one would race with the next claimant's ``open``).

Readers (``inpaintbench report``, sweeps, the gate) take no lock: files are replaced whole by
an atomic rename, and a reader skips a last line still being written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import weakref
from datetime import datetime, timezone
from pathlib import Path

from inpaintbench.core.errors import InpaintBenchError, StorageError

#: Locks held by this process. A forked child (a timed method call) closes its copies of their
#: descriptors at once, so a stalled child outliving a killed run never keeps the folder locked.
_HELD: "weakref.WeakSet[FolderLock]" = weakref.WeakSet()


def _close_in_child() -> None:
    for lock in list(_HELD):
        if lock._handle is not None:
            try:
                os.close(lock._handle.fileno())
            except OSError:
                pass
            lock._handle = None


os.register_at_fork(after_in_child=_close_in_child)


class FolderBusy(InpaintBenchError):
    """Another process holds the lock (a unit's claim)."""


class FolderLock:
    """An exclusive lock on ``path`` (created if missing); not re-entrant.

    Args:
        path: the lock file (``<results file>.lock``).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, *, wait: bool = False) -> None:
        """Take the lock; with ``wait=False`` raise :class:`FolderBusy` if another holds it."""
        if self._handle is not None:
            return
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderBusy(f"{self.path} is held by {holder}") from None
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
        handle.flush()
        self._handle = handle
        _HELD.add(self)

    def release(self) -> None:
        """Drop the lock (the file stays)."""
        handle, self._handle = self._handle, None
        _HELD.discard(self)
        if handle is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_UN)
            finally:
                handle.close()

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it, fsync and an atomic rename:
    a reader sees the old file or the whole new one, never part of it. Parent folders are made.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        StorageError: the write failed (disk full, read-only folder); nothing is left behind and
            the old file, if any, is unchanged.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {path}: {err.strerror or err}; everything written before it is kept; "
                           "free space (or fix the folder) and rerun to resume") from err
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of ``text`` encoded as UTF-8."""
    return atomic_write(path, text.encode("utf-8"))
