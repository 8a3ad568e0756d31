"""Executors: who runs a plan's units. In this process (the default), local worker processes
(``--workers N``), or Ray actors (``--executor ray``, :mod:`inpaintbench.harness.ray_executor`).

Every executor runs units through :class:`~inpaintbench.harness.unit_runner.UnitRunner`, so the
records are the same whoever runs them. The pool executors share one dispatcher
(:func:`dispatch`): a worker is handed units of the method it ran last first (it keeps that
model loaded), a unit another process holds is retried after the others (waiting for its
claim then), and a worker that dies mid-unit (killed, out of memory, a segfault in an
extension) is replaced and its unit retried, at most ``max_retries`` times; after that the
unit's unfinished samples become error records naming the cause and the run goes on. A unit
that fails for its own reasons (a method raising) is error records from the start, as in
process.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue as queues
import signal
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import torch
from tqdm.auto import tqdm

from inpaintbench.core.errors import InpaintBenchError, InputError
from inpaintbench.harness.unit_runner import UnitOutcome, UnitRunner
from inpaintbench.store.folder import WorkUnit
from inpaintbench.harness.suite import Suite

#: Retries of a unit whose worker died before the unit becomes error records.
MAX_RETRIES = 2


class WorkerDied(Exception):
    """The worker running a unit ended without answering (the message says how)."""


class RunAborted(InpaintBenchError):
    """A worker hit an error that stops the whole run (bad data found while streaming, a full
    disk); the message is the worker's."""


@dataclass
class WorkerSpec:
    """Everything a fresh worker process needs to run units (picklable).

    Attributes:
        suite: the run's suite; ``out_dir`` its results folder (shared by all workers).
        device: ``"cpu"`` or ``"cuda:N"`` for this worker.
        run_id: the run's id; ``executor`` the executor's name for unit headers.
        identities: ``label -> (config, config hash)`` as planned.
        lpips_weights: the LPIPS weights the run resolved (None: unavailable / default).
        lpips_available: whether the run has LPIPS (a worker that cannot load it fails).
        num_threads: torch CPU threads of the worker.
    """

    suite: Suite
    out_dir: Path
    device: str
    run_id: str
    executor: str
    identities: dict[str, tuple[dict[str, Any], str]]
    lpips_weights: str | None
    lpips_available: bool
    num_threads: int

    def build_runner(self) -> UnitRunner:
        """The worker's :class:`UnitRunner` (sets its thread count; builds LPIPS)."""
        from inpaintbench.core.registry import method_registry
        from inpaintbench.harness.unit_runner import build_lpips
        from inpaintbench.metrics.options import run_dists

        torch.set_num_threads(self.num_threads)
        device = torch.device(self.device)
        specs = {spec.label: spec for spec in self.suite.methods}
        lpips = None
        if self.lpips_available:
            lpips, _ = build_lpips(self.suite.lpips_net, self.lpips_weights, device, required=True)

        def build(label: str):
            spec = specs[label]
            return method_registry().create(spec.name, **spec.config).to(device)

        return UnitRunner(self.suite, Path(self.out_dir), device, self.run_id, self.executor, build,
                          {c.label: c for c in self.suite.conditions()}, self.identities, lpips,
                          dists=run_dists(self.suite.dists, self.lpips_weights, device))


class Pool(Protocol):
    """Worker slots the dispatcher hands units to."""

    size: int

    def start(self, slot: int) -> None: ...

    def submit(self, slot: int, unit: WorkUnit, wait: bool, attempt: int) -> None: ...

    def next_result(self) -> tuple[int, UnitOutcome | WorkerDied]: ...

    def close(self) -> None: ...


@dataclass
class _Job:
    unit: WorkUnit
    attempt: int = 1
    wait: bool = False


def dispatch(pool: Pool, units: Iterable[WorkUnit], *, fail: Callable[[WorkUnit, str, int], UnitOutcome],
             max_retries: int = MAX_RETRIES, progress: bool = False,
             sink: list[UnitOutcome] | None = None) -> list[UnitOutcome]:
    """Run ``units`` on ``pool``'s workers (see the module docstring); the outcome of each unit.

    Args:
        fail: writes a unit's unfinished samples as errors once its retries are spent.
        sink: the list the outcomes are appended to as they come (an interrupted run still
            knows what it wrote); a new one when None.
    """
    jobs = deque(_Job(u) for u in units)
    total = len(jobs)
    running: dict[int, _Job] = {}
    last_method: dict[int, str] = {}
    outcomes = [] if sink is None else sink
    bar = tqdm(total=total, desc="units", disable=not progress, leave=False)
    try:
        for slot in range(min(pool.size, total)):
            pool.start(slot)
        idle = list(range(min(pool.size, total)))
        while jobs or running:
            while idle and jobs:
                slot = idle.pop()
                job = _take(jobs, last_method.get(slot))
                running[slot] = job
                last_method[slot] = job.unit.method
                pool.submit(slot, job.unit, job.wait, job.attempt)
            slot, result = pool.next_result()
            job = running.pop(slot)
            if isinstance(result, WorkerDied):
                last_method.pop(slot, None)
                if job.attempt > max_retries:
                    reason = (f"its worker died {job.attempt} times ({result}); gave up after {max_retries} "
                              "retries")
                    outcomes.append(fail(job.unit, reason, job.attempt))
                    bar.update(1)
                else:
                    jobs.appendleft(dataclasses.replace(job, attempt=job.attempt + 1, wait=True))
                if not jobs:
                    continue  # nothing left for this slot: no fresh worker
                pool.start(slot)  # a fresh worker: whatever the dead one held is gone
            elif result.busy:  # another process runs it: come back to it last, then wait for it
                jobs.append(dataclasses.replace(job, wait=True))
            else:
                outcomes.append(result)
                bar.update(1)
            idle.append(slot)
    finally:
        bar.close()
        pool.close()
    return outcomes


def _take(jobs: deque, method: str | None) -> _Job:
    """The first job of ``method`` (the worker holds that model) that is not a wait, else the first."""
    if method is not None:
        for i, job in enumerate(jobs):
            if job.unit.method == method and not job.wait:
                del jobs[i]
                return job
    return jobs.popleft()


def run_in_process(runner: UnitRunner, units: list[WorkUnit], *, progress: bool = False,
                   sink: list[UnitOutcome] | None = None) -> list[UnitOutcome]:
    """Run ``units`` here, one after the other; units another process holds are done last,
    waiting for their claim (then usually found finished). ``sink`` as for :func:`dispatch`."""
    outcomes, later = ([] if sink is None else sink), []
    bar = tqdm(total=len(units), desc="units", disable=not progress, leave=False)
    try:
        for unit in units:
            outcome = runner.run(unit)
            if outcome.busy:
                later.append(unit)
                continue
            outcomes.append(outcome)
            bar.update(1)
        for unit in later:
            outcomes.append(runner.run(unit, wait=True))
            bar.update(1)
    finally:
        bar.close()
        runner.close()  # its sealed children end with the run
    return outcomes


def _local_worker(spec: WorkerSpec, slot: int, inbox: Any, outbox: Any, parent: int) -> None:
    """The loop of one local worker process: run the units it is sent until it gets None, or
    until its parent (process ``parent``) is gone: a killed run leaves no worker behind (nor
    a sealed child of the worker's)."""
    # Ctrl-C reaches the whole process group: the run (the parent) stops its workers itself, so
    # a worker does not die mid-unit printing a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runners: list[UnitRunner] = []
    try:
        _serve_units(spec, slot, inbox, outbox, parent, runners)
    finally:
        for runner in runners:
            runner.close()


def _serve_units(spec: WorkerSpec, slot: int, inbox: Any, outbox: Any, parent: int,
                 runners: list[UnitRunner]) -> None:
    """:func:`_local_worker`'s loop; the runner it builds is appended to ``runners``."""
    while True:
        try:
            message = inbox.get(timeout=1.0)
        except queues.Empty:
            if os.getppid() != parent:
                return
            continue
        if message is None or os.getppid() != parent:  # units queued before the run was killed: not ours to run
            return
        unit, wait, attempt = message
        try:
            if not runners:
                runners.append(spec.build_runner())
            outcome = runners[0].run(unit, wait=wait, attempt=attempt)
        except InpaintBenchError as err:
            outbox.put((slot, "abort", str(err)))
            return
        except Exception as err:  # noqa: BLE001 - an unexpected harness error stops the run, named
            outbox.put((slot, "abort", f"{type(err).__name__}: {err}"))
            return
        outbox.put((slot, "done", outcome))


class LocalPool:
    """``size`` worker processes on this machine (spawned: no CUDA or lock state is inherited).

    Args:
        spec_for_slot: the :class:`WorkerSpec` of a slot (its device: one GPU per worker).
    """

    def __init__(self, size: int, spec_for_slot: Callable[[int], WorkerSpec]):
        self.size = size
        self._spec_for_slot = spec_for_slot
        self._context = multiprocessing.get_context("spawn")
        self._outbox = self._context.Queue()
        self._workers: dict[int, tuple[Any, Any]] = {}
        self._busy: set[int] = set()

    def start(self, slot: int) -> None:
        old = self._workers.pop(slot, None)
        if old is not None and old[0].is_alive():
            old[0].kill()
        inbox = self._context.Queue()
        process = self._context.Process(target=_local_worker, args=(self._spec_for_slot(slot), slot, inbox,
                                                                    self._outbox, os.getpid()),
                                        # not a daemon: a daemon may not start the sealed child
                                        # of a method; it ends with its parent (see the loop)
                                        name=f"inpaintbench-worker-{slot}", daemon=False)
        process.start()
        self._workers[slot] = (process, inbox)

    def submit(self, slot: int, unit: WorkUnit, wait: bool, attempt: int) -> None:
        self._busy.add(slot)
        self._workers[slot][1].put((unit, wait, attempt))

    def next_result(self) -> tuple[int, UnitOutcome | WorkerDied]:
        while True:
            try:
                slot, kind, payload = self._outbox.get(timeout=0.5)
            except queues.Empty:
                for slot in sorted(self._busy):
                    process = self._workers[slot][0]
                    if not process.is_alive():
                        self._busy.discard(slot)
                        return slot, WorkerDied(f"worker process {process.pid} exited with code {process.exitcode}")
                continue
            if kind == "abort":
                raise RunAborted(payload)
            self._busy.discard(slot)
            return slot, payload

    def close(self) -> None:
        for process, inbox in self._workers.values():
            if process.is_alive():
                try:
                    inbox.put(None)
                except (OSError, ValueError):
                    pass
        for process, _ in self._workers.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        self._workers.clear()


def check_executor(executor: str, workers: int | None) -> None:
    """Raise :class:`InputError` for an unknown executor or a worker count below 1."""
    if executor not in EXECUTORS:
        raise InputError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers must be an integer >= 1, got {workers!r}")


#: Executor names: in this process, local worker processes, Ray actors.
EXECUTORS = ("inprocess", "local", "ray")
