"""A method call with a time limit: ``[run] call_timeout_s`` / ``--call-timeout``.

A Python thread cannot be stopped, and a torch operator does not look at signals, so the only
reliable way to end a stalled call is to end the process running it. When a suite sets a
timeout, each batch's call (its warm-up included) runs in a child process forked from the
runner: the child inherits the built method, the batch and its generators without pickling
anything (a fork costs milliseconds; building a method anew per call would cost seconds), runs
the call and sends back the raw output as a numpy array with its counters and timing. When
the child has not answered after the timeout, it is killed and the batch becomes error
records; the next batch forks again from the untouched parent. Without a timeout nothing of
this runs: calls stay in the runner's process.

Limits (stated in the README): fork only (Linux, macOS); not on CUDA, which cannot be used in
a forked child (the run refuses the combination before writing anything); a method keeping
state across calls (caches) loses what a child learned, so each child warms up on its batch's
first image before the timed call.
"""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable

from inpaintbench.core.errors import InpaintBenchError


class CallTimeout(InpaintBenchError):
    """A method call ran past ``call_timeout_s`` and was killed."""


class WorkerFailed(RuntimeError):
    """The call raised in its worker (the message names the original exception) or the worker
    died without answering (its exit code is named)."""


def fork_available() -> bool:
    """True where a process can be forked (the timeout needs it)."""
    return "fork" in multiprocessing.get_all_start_methods()


def call_in_fork(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()`` in a forked child; its (picklable) return value, or an exception.

    Raises:
        CallTimeout: the child did not answer within ``timeout_s`` seconds (it is killed).
        WorkerFailed: ``fn`` raised (the message names the original exception) or the child
            died without answering (its exit code is named).
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        try:
            answer = ("ok", fn())
        except BaseException as err:  # noqa: BLE001 - everything goes back to the parent as text
            answer = ("error", f"{type(err).__name__}: {err}")
        try:
            send.send(answer)
        except Exception as err:  # an unpicklable result
            send.send(("error", f"the call's result could not be sent back: {type(err).__name__}: {err}"))

    process = context.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout_s):
            process.kill()
            raise CallTimeout(f"call did not finish within call_timeout_s = {timeout_s:g} s; its worker was killed")
        try:
            status, value = receive.recv()
        except EOFError:
            process.join(5)
            raise WorkerFailed(f"the call's worker process died without an answer (exit code {process.exitcode})") \
                from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receive.close()
    if status != "ok":
        raise WorkerFailed(value)
    return value
