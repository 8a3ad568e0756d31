"""Running one work unit: read its images batch by batch, call the method (timed), write its file.

The path of one sample (see ARCHITECTURE.md at the repository root): image -> the condition's task (a seeded mask, a
scale) -> the task's observation -> ``method.restore`` (timed) -> raw output -> the task's
composite -> metrics -> one record. :class:`UnitRunner` is what one process (the run itself,
a local worker, a Ray actor) keeps between units: the built datasets, the method it last ran
(a worker keeps a loaded model across units of the same method), LPIPS and what it has
warmed up. It never branches on the task and imports no method.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from inpaintbench.harness.acceleration import Acceleration, AppliedAcceleration, auto_batch_size
from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Method, Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.metrics.table import compute_image_metrics
from inpaintbench.core.notices import one_line
from inpaintbench.store.artifacts import SideOutputs
from inpaintbench.harness.data import DatasetView, open_dataset
from inpaintbench.store.records import DONE_STATUSES, SampleRecord, UnitRecord
from inpaintbench.core.identity import config_hash, method_identity
from inpaintbench.store.folder import ResultsFolder, WorkUnit
from inpaintbench.harness.worker import CallTimeout, WorkerFailed, call_in_fork
from inpaintbench.harness.suite import Suite
from inpaintbench.core.conditions import Condition
from inpaintbench.harness.timing import timed_call

log = logging.getLogger(__name__)

#: The ``note`` of the records of images whose mask has no hole (they are not run).
NO_HOLE_NOTE = "no hole: the mask leaves every pixel known; not run and left out of the means"

#: How far outside [0, 1] a raw output may stray (float rounding of a network's last layer)
#: before it is an error instead of being clipped.
RANGE_TOLERANCE = 1e-3


class UnitInterrupted(KeyboardInterrupt):
    """Ctrl-C inside a unit: its finished batches were written (``written`` records)."""

    def __init__(self, written: int):
        super().__init__(f"interrupted; {written} records of the unit kept")
        self.written = written


@dataclass
class UnitOutcome:
    """What running one unit did. ``busy``: another process holds the unit (nothing done)."""

    unit: str
    busy: bool = False
    written: int = 0
    skipped: int = 0
    errors: int = 0


def validate_output(output: Any, expected: torch.Size) -> str | None:
    """None if ``output`` is a finite tensor of shape ``expected`` in ``[0, 1]`` (up to
    :data:`RANGE_TOLERANCE`); else why not."""
    if not isinstance(output, torch.Tensor):
        return f"method returned {type(output).__name__}, not a tensor"
    if output.shape != expected:
        return f"method returned shape {list(output.shape)}, expected {list(expected)}"
    if not torch.isfinite(output).all():
        return "method returned NaN or inf values"
    lo, hi = float(output.min()), float(output.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        return f"method returned values in [{lo:.4g}, {hi:.4g}], outside [0, 1] (tolerance {RANGE_TOLERANCE})"
    return None


@dataclass
class _Timing:
    method_s: float = 0.0
    warmup_s: float = 0.0


def accelerated_identity(name: str, method: Method, applied: AppliedAcceleration) -> tuple[dict[str, Any], str]:
    """:func:`~inpaintbench.core.identity.method_identity` plus what acceleration was applied,
    when it is not plain fp32 (so default records keep their hash)."""
    config, chash = method_identity(name, method)
    described = applied.describe()
    if described != Acceleration().describe():
        config = {**config, "acceleration": described}
        chash = config_hash(config)
    return config, chash


def _call(method: Method, condition: Condition, suite: Suite, original: torch.Tensor, observation: Any,
          rng: SampleRNG, batch_ids: list[str], first_mask: torch.Tensor | None, warm: bool,
          timing: _Timing, applied: AppliedAcceleration | None = None) -> tuple:
    """``(restoration, seconds, peak bytes)`` of one timed call, after a warm-up call on the first
    image when ``warm`` (the first call pays for lazy init, allocator growth, cuDNN autotune,
    ``torch.compile``); both under the method's autocast when ``applied`` asks for one."""
    device = original.device

    def restore(obs: Any, generators: SampleRNG) -> Any:
        with applied.autocast() if applied is not None else contextlib.nullcontext():
            return method.restore(obs, generators)

    if warm:
        start = time.perf_counter()
        first = condition.task_for(batch_ids[:1], (1, *original.shape[1:]), suite.seed, first_mask)
        restore(first.observe(original[:1]), SampleRNG.for_samples(
            suite.seed, "warmup", sample_ids=batch_ids[:1], device=device))
        timing.warmup_s += time.perf_counter() - start
    timed = timed_call(lambda: restore(observation, rng), device)
    timing.method_s += timed.seconds
    return timed.value, timed.seconds, timed.peak_memory_bytes


def _call_in_worker(method: Method, condition: Condition, suite: Suite, original: torch.Tensor, observation: Any,
                    rng: SampleRNG, batch_ids: list[str], first_mask: torch.Tensor | None,
                    timing: _Timing, applied: AppliedAcceleration | None = None) -> tuple:
    """:func:`_call` in a forked child killed after ``suite.call_timeout_s``
    (:mod:`inpaintbench.harness.worker`). Always warmed up: a child starts from the parent's
    state, so what an earlier child's warm-up did is gone."""
    def work() -> tuple:
        child = _Timing()
        restoration, seconds, peak = _call(method, condition, suite, original, observation, rng, batch_ids,
                                           first_mask, True, child, applied)
        image = restoration.image
        if isinstance(image, torch.Tensor):  # an array crosses the pipe by value (a tensor: by shared memory)
            image = image.detach().cpu().numpy()
        return image, dict(restoration.stats), seconds, peak, child.warmup_s

    image, stats, seconds, peak, warmup = call_in_fork(work, suite.call_timeout_s)
    timing.method_s += seconds
    timing.warmup_s += warmup
    if hasattr(image, "shape") and not isinstance(image, torch.Tensor):
        image = torch.from_numpy(image).to(original.device)
    return Restoration(image, stats), seconds, peak


@dataclass
class UnitRunner:
    """Runs units in one process, keeping what is costly to rebuild between them.

    Args:
        suite: the run's suite.
        out_dir: the results folder (shared by every process of the run).
        device: where methods and metrics run.
        run_id: the run the records belong to.
        executor: its name, written into each unit's header.
        build_method: ``label -> Method`` (built and moved to ``device``); called when a unit
            needs a method this process does not hold; the suite's acceleration is applied to it.
        methods: methods built already (the in-process run passes the ones it built to check
            them), kept for the whole run, with ``applied`` their acceleration; others are built
            on demand, one at a time.
        lpips: the LPIPS metric or None (unavailable).
        conditions: the suite's conditions by label.
        identities: ``label -> (config, config hash)`` the run planned with; a method built
            here that hashes otherwise (other weights on this machine) fails its units.
    """

    suite: Suite
    out_dir: Path
    device: torch.device
    run_id: str
    executor: str
    build_method: Callable[[str], Method]
    conditions: dict[str, Condition]
    identities: dict[str, tuple[dict[str, Any], str]]
    lpips: Any = None
    dists: Any = None  # the DISTS metric when the suite asks for it (metrics.options.run_dists)
    methods: dict[str, Method] = field(default_factory=dict)
    applied: dict[str, AppliedAcceleration] = field(default_factory=dict)
    datasets: dict[str, DatasetView] = field(default_factory=dict)
    warmed: set = field(default_factory=set)
    batch_sizes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = ResultsFolder(self.out_dir)
        self._pinned = set(self.methods)

    def method(self, label: str) -> Method:
        """The built method of ``label``: one given at construction, or built now (dropping the
        previous one built here, so a worker holds one model at a time).

        Raises:
            InputError: the method built here hashes otherwise than the plan (other weights).
        """
        if label in self.methods:
            return self.methods[label]
        for other in [k for k in self.methods if k not in self._pinned]:
            del self.methods[other]
            self.applied.pop(other, None)
        method = self.build_method(label)
        applied = self.suite.acceleration.apply(method)
        planned_config, planned_hash = self.identities[label]
        _, chash = accelerated_identity(planned_config["name"], method, applied)
        if chash != planned_hash:
            raise InputError(f"method {label!r} built on {socket.gethostname()} hashes to {chash}, the run planned "
                             f"{planned_hash}: its options or weight files differ on this machine")
        self.methods[label], self.applied[label] = method, applied
        return method

    def dataset(self, label: str) -> DatasetView:
        if label not in self.datasets:
            spec = next(s for s in self.suite.datasets if s.label == label)
            self.datasets[label] = open_dataset(spec, self.suite.n_images)
        return self.datasets[label]

    def run(self, unit: WorkUnit, *, wait: bool = False, attempt: int = 1) -> UnitOutcome:
        """Run ``unit`` unless another process holds it (then ``busy``, unless ``wait``) or all of
        its samples are done (at planning, ``unit.done``, or in its own file now).

        Raises:
            InputError: bad data found while streaming (an image of another size).
        """
        base = {**unit.base, "run_id": self.run_id}
        with self.folder.claim(unit, wait=wait) as claimed:
            if not claimed:
                return UnitOutcome(unit.hash, busy=True)
            finished = self._finished(unit)
            pending = [i for i, key in enumerate(unit.keys) if key not in finished]
            outcome = UnitOutcome(unit.hash, skipped=len(unit.keys) - len(pending))
            if not pending:
                return outcome
            start = time.perf_counter()
            timing = _Timing()
            records: list[SampleRecord] = []
            try:
                self._execute(unit, base, pending, timing, records)
            except KeyboardInterrupt:  # Ctrl-C: keep the finished batches; the rerun does the rest
                if records:
                    self.folder.commit_unit(unit, self._header(unit, attempt, start, timing), records)
                raise UnitInterrupted(len(records)) from None
            header = self._header(unit, attempt, start, timing)
            self.folder.commit_unit(unit, header, records)
            outcome.written = len(records)
            outcome.errors = sum(r.status == "error" for r in records)
            return outcome

    def fail(self, unit: WorkUnit, reason: str, attempt: int) -> UnitOutcome:
        """Record every unfinished sample of ``unit`` as an error (its worker kept dying)."""
        base = {**unit.base, "run_id": self.run_id}
        with self.folder.claim(unit, wait=True):
            finished = self._finished(unit)
            records = [SampleRecord(**base, sample_id=sid, status="error", error=reason)
                       for sid, key in zip(unit.sample_ids, unit.keys) if key not in finished]
            self.folder.commit_unit(unit, self._header(unit, attempt), records)
        return UnitOutcome(unit.hash, written=len(records), errors=len(records))

    def _finished(self, unit: WorkUnit) -> set[tuple]:
        """Keys of ``unit`` finished at planning or in its file now (read under its claim)."""
        return set(unit.done) | {r.key() for r in self.folder.unit_records(unit)
                                 if isinstance(r, SampleRecord) and r.status in DONE_STATUSES}

    def _header(self, unit: WorkUnit, attempt: int, start: float | None = None,
                timing: _Timing | None = None) -> UnitRecord:
        """The unit's header: who ran it, and its times since ``start`` (perf_counter s)."""
        timing = timing or _Timing()
        return UnitRecord(unit=unit.hash, name=unit.name, run_id=self.run_id, method=unit.method,
                          dataset=unit.dataset, mask=unit.condition, sample_ids=list(unit.sample_ids),
                          host=socket.gethostname(), pid=os.getpid(), executor=self.executor, attempt=attempt,
                          torch_threads=torch.get_num_threads(),
                          wall_s=0.0 if start is None else time.perf_counter() - start,
                          method_s=timing.method_s, warmup_s=timing.warmup_s)

    def _execute(self, unit: WorkUnit, base: dict[str, Any], pending: list[int], timing: _Timing,
                 records: list[SampleRecord]) -> None:
        """Append the records of ``pending`` (positions in the unit) to ``records``, batch by batch."""
        suite, view, condition = self.suite, self.dataset(unit.dataset), self.conditions[unit.condition]
        side = SideOutputs(self.out_dir, set(view.ids[: suite.n_examples]), keep_all=suite.fid)
        try:
            method = self.method(unit.method)
        except Exception as err:  # a worker that cannot build the method: its samples fail, the run goes on
            problem = f"could not build the method here: {type(err).__name__}: {one_line(err)}"
            records += [SampleRecord(**base, sample_id=unit.sample_ids[j], status="error", error=problem)
                        for j in pending]
            return
        device = method.device
        sized, budget = (unit.method, condition.task_name, view.shape), self._budget_bytes(device)
        position = 0
        while position < len(pending):
            # With a memory budget, a method's first call on a shape takes one image, whose peak
            # memory sizes the batches after it (auto_batch_size); else the suite's batch size.
            size = self.batch_sizes.get(sized, 1 if budget else suite.batch_size)
            chunk = pending[position: position + size]
            position += len(chunk)
            index = [unit.indices[j] for j in chunk]
            batch_ids = [unit.sample_ids[j] for j in chunk]
            images, dataset_masks = view.load(index, batch_ids)
            task = condition.task_for(batch_ids, tuple(images.shape), suite.seed, dataset_masks)
            holes = task.generated_region().float().mean(dim=(1, 2, 3))
            holeless = [j for j, fraction in enumerate(holes.tolist()) if fraction == 0.0]
            records += [SampleRecord(**base, sample_id=batch_ids[j], status="skipped", hole_fraction=0.0,
                                     note=NO_HOLE_NOTE) for j in holeless]
            if holeless:  # nothing to inpaint: recorded once, never run, never averaged
                keep = [j for j in range(len(batch_ids)) if j not in holeless]
                if not keep:
                    continue
                batch_ids, images = [batch_ids[j] for j in keep], images[keep]
                dataset_masks = None if dataset_masks is None else dataset_masks[keep]
                task = condition.task_for(batch_ids, tuple(images.shape), suite.seed, dataset_masks)
            side.inputs(unit.dataset, condition.label, batch_ids, images, task.shown_mask(),
                        made_by=f"{unit.base['dataset_hash']}/{unit.base['mask_hash']}")
            resident = torch.cuda.memory_allocated(device) if budget else 0
            done = self._batch(method, device, unit, base, condition, task, images, dataset_masks, batch_ids,
                               side, timing)
            peak = done[0].peak_memory_bytes
            if budget and sized not in self.batch_sizes and len(done) == 1 and peak is not None:
                self.batch_sizes[sized] = auto_batch_size(peak, budget, suite.batch_size, resident_bytes=resident)
            records += done

    def _budget_bytes(self, device: torch.device) -> int | None:
        """The suite's memory budget in bytes on CUDA (None elsewhere or when unset)."""
        if self.suite.memory_budget_gb is None or device.type != "cuda":
            return None
        return int(self.suite.memory_budget_gb * 2**30)

    def _batch(self, method: Method, device: torch.device, unit: WorkUnit, base: dict[str, Any],
               condition: Condition, task: Any, images: torch.Tensor, dataset_masks: torch.Tensor | None,
               batch_ids: list[str], side: SideOutputs, timing: _Timing) -> list[SampleRecord]:
        suite, label = self.suite, unit.method
        original = images.to(device)
        observation = task.observe(original)
        rng = SampleRNG.for_samples(suite.seed, "method", label, sample_ids=batch_ids, device=device)
        first_mask = None if dataset_masks is None else dataset_masks[:1]
        try:
            if suite.call_timeout_s is not None:
                restoration, seconds, peak = _call_in_worker(method, condition, suite, original, observation, rng,
                                                             batch_ids, first_mask, timing, self.applied.get(label))
            else:
                warm_key = (label, condition.task_name, tuple(original.shape[1:]))
                restoration, seconds, peak = _call(method, condition, suite, original, observation, rng, batch_ids,
                                                   first_mask, warm_key not in self.warmed, timing,
                                                   self.applied.get(label))
                self.warmed.add(warm_key)
            problem = validate_output(restoration.image, original.shape)
        except Exception as err:  # a failing method is a result, not the end of the run
            problem = one_line(err) if isinstance(err, (CallTimeout, WorkerFailed)) else \
                f"{type(err).__name__}: {one_line(err)}"
            log.warning("%s failed on %s/%s: %s", label, unit.dataset, condition.label, problem)
        if problem is not None:
            return [SampleRecord(**base, sample_id=sid, status="error", error=problem) for sid in batch_ids]
        raw = restoration.image.to(torch.float32).clamp(0.0, 1.0)
        region = task.generated_region().to(device)
        composited = task.composite(raw, original)
        metrics = compute_image_metrics(original, raw, region, lpips=self.lpips, band_px=suite.band_px,
                                        composited=composited, dists=self.dists)
        hole_fraction = region.float().mean(dim=(1, 2, 3))
        per_image_s = seconds / len(batch_ids)
        # Before the records, keyed by sample id: a crash in between makes the rerun redo these
        # samples, and the heat map adds each sample once.
        side.outputs(unit.dataset, condition.label, label, batch_ids, original=original, raw=raw,
                     composited=composited, region=region, made_by=base["config_hash"])
        return [SampleRecord(
            **base, sample_id=sid, status="ok",
            metrics={k: float(v[j]) for k, v in metrics.items()},
            time_s=per_image_s, batch_size=len(batch_ids), peak_memory_bytes=peak,
            hole_fraction=float(hole_fraction[j]),
            counters={name: restoration.per_image(name, j) for name in restoration.stats},
        ) for j, sid in enumerate(batch_ids)]


def build_lpips(net: str, weights: str | None, device: torch.device, *,
                required: bool = False) -> tuple[Any, dict[str, Any]]:
    """The LPIPS metric and the note the run records, or None with the reason it is unavailable.

    Args:
        weights: backbone weights asked for (else ``$INPAINTBENCH_LPIPS_WEIGHTS`` / download).
        required: a worker of a run that has LPIPS: failing to load it is an error, never a
            silent drop of the metric in some units.
    Raises:
        LPIPSUnavailable: weights were asked for (or ``required``) and do not load.
    """
    from inpaintbench.metrics.lpips_metric import LPIPSMetric, LPIPSUnavailable
    from inpaintbench.core.notices import warn

    try:
        metric = LPIPSMetric(net=net, weights=weights).to(device)
    except LPIPSUnavailable as err:
        if weights is not None or required:  # asked for: failing is an error, not a silent drop
            raise LPIPSUnavailable(f"--lpips-weights: {one_line(err)}") from err
        warn(f"LPIPS unavailable, not reported in this run: {one_line(err)}")
        return None, {"available": False, "net": net, "reason": str(err)}
    return metric, {"available": True, "net": net, "source": str(metric.source)}
