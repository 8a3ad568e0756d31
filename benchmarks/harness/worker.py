"""A method call with a time limit: ``[run] call_timeout_s`` / ``--call-timeout``.

A Python thread cannot be stopped, and a torch operator does not look at signals, so the only
reliable way to end a stalled call is to end the process running it. A timed call therefore
runs in the method's sealed child (:mod:`inpaintbench.harness.sealed`, one mechanism for
sealing and timeouts): the harness waits ``call_timeout_s`` for its answer, then kills the
child and records the batch as errors; the next batch starts a fresh child (which builds the
method again and warms up again). Children come from a fork server, not from a fork of the
run, so TensorFlow methods and CUDA work with a timeout.
"""

from __future__ import annotations

import multiprocessing

from inpaintbench.harness.sealed import CallTimeout, WorkerFailed

__all__ = ["CallTimeout", "WorkerFailed", "fork_available"]


def fork_available() -> bool:
    """True where sealed children (and so call timeouts) can be started: a fork server or spawn."""
    return bool({"forkserver", "spawn"} & set(multiprocessing.get_all_start_methods()))
