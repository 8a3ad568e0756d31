"""The lock of a results folder: one writing run at a time.

A run holds an exclusive ``fcntl.flock`` on ``results.jsonl.lock`` beside its results file
from before its first write until it ends, so two runs into one folder can never interleave
records, side files (heat maps, examples) or the repair of the file's tail. A second run does
not wait: it refuses at once with one line naming the folder and the holder (waiting silently
behind a run that takes hours is worse than being told). The kernel drops the lock when the
holding process dies, so a crashed run never leaves the folder locked; the lock file itself
stays (removing it would race with the next run taking it).

Readers (``inpaintbench report``, sweeps, the gate) take no lock: they never write the results
file, records are appended whole, and a reader skips a last line still being written.
"""

from __future__ import annotations

import fcntl
import os
import socket
import weakref
from datetime import datetime, timezone
from pathlib import Path

from inpaintbench.api import InpaintBenchError

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
    """Another run is writing into the same results folder."""


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
            raise FolderBusy(
                f"results folder {self.path.parent} is in use by another run ({holder}); wait for it to "
                "finish or pass another --out") from None
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
