"""Running one work unit: read its images batch by batch, call the method (timed), write its file.

The path of one sample (see ARCHITECTURE.md at the repository root): image -> the condition's task (a seeded mask, a
scale) -> the task's observation -> ``method.restore`` (timed) -> raw output -> the task's
composite -> metrics -> one record. :class:`UnitRunner` is what one process (the run itself,
a local worker, a Ray actor) keeps between units: the built datasets, the method it last ran
(a worker keeps a loaded model across units of the same method), LPIPS and what it has
warmed up. It never branches on the task and imports no method.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from inpaintbench.harness.acceleration import AppliedAcceleration, auto_batch_size
from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Method
from inpaintbench.metrics.table import compute_image_metrics
from inpaintbench.core.notices import one_line
from inpaintbench.store.artifacts import SideOutputs
from inpaintbench.harness.data import DatasetView, open_dataset
from inpaintbench.store.records import DONE_STATUSES, SampleRecord, UnitRecord
from inpaintbench.core.registry import Entry, UnknownName, method_registry
from inpaintbench.store.folder import ResultsFolder, WorkUnit
from inpaintbench.harness.sealed import (BadOutput, CallTimeout, Recipe, SealedMethod, Seeds, WorkerFailed,
                                        accelerated_identity, call_method, observation_on, recipe_target,
                                        start_fork_server, warmup_observation)
from inpaintbench.harness.suite import Suite
from inpaintbench.core.conditions import Condition

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


#: Which methods run sealed when the suite does not say (``sealed`` unset): ``"plugins"`` (the
#: methods of entry points) or ``"all"``. Sealing all would be the default at <= 3 % of the
#: default run's wall time; ``benchmarks/perf/test_perf_sealed.py`` measured far more (one child
#: per method: its imports, weights and TensorFlow again; 934 s vs 491 s on 2 busy cores), so
#: plugins only, ``--sealed`` for all.
SEALED_BY_DEFAULT = "plugins"


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

    A sealed method (:meth:`is_sealed`) is not called here: its calls go to a child process
    that builds it from its registry entry (:mod:`inpaintbench.harness.sealed`); this runner
    keeps one such child at a time, like one model.
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
        self._children: dict[str, SealedMethod] = {}
        # a runner dropped without close() (a test, a notebook) leaves no child behind
        self._finalizer = weakref.finalize(self, _close_children, self._children)
        if any(self.is_sealed(spec.label) for spec in self.suite.methods):
            start_fork_server()

    def close(self) -> None:
        """Stop the sealed children this runner started."""
        _close_children(self._children)

    def is_sealed(self, label: str) -> bool:
        """Whether method ``label`` runs in a sealed child: always with a call timeout (the
        child is what gets killed), else as the suite's ``sealed`` says, else
        :data:`SEALED_BY_DEFAULT` (methods of entry points, or all)."""
        if self.suite.call_timeout_s is not None:
            return True
        choice = getattr(self.suite, "sealed", None)
        if choice is not None:
            return bool(choice)
        entry = self._entry(label)
        return SEALED_BY_DEFAULT == "all" or (entry is not None and entry.group == "plugin")

    def _entry(self, label: str) -> Entry | None:
        """The registry entry of method ``label`` (None: this process's registry lacks it)."""
        spec = next(s for s in self.suite.methods if s.label == label)
        try:
            return method_registry().entry(spec.name)
        except UnknownName:
            return None

    def child(self, label: str) -> SealedMethod:
        """The sealed child of ``label``, started now (its method built from its registry entry
        and options) unless running; a child of another method is stopped first.

        Raises:
            InputError: its method hashes otherwise than the plan.
            WorkerFailed: the method could not be built in the child.
        """
        running = self._children.get(label)
        if running is not None and running.alive:
            return running
        _close_children(self._children)
        spec = next(s for s in self.suite.methods if s.label == label)
        entry = self._entry(label)
        # a method a test registered in this process only: its class is the target
        target, defaults = (entry.target, dict(entry.defaults)) if entry is not None else \
            (type(self.build_method(label)), {})
        reference, module_file = recipe_target(target)
        recipe = Recipe(spec.name, reference, defaults, dict(spec.config), str(self.device),
                        torch.get_num_threads(), self.suite.acceleration, module_file)
        self._children[label] = SealedMethod(recipe, self.identities[label][1])
        return self._children[label]

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
        sealed = self.is_sealed(unit.method)
        try:
            method = self.child(unit.method) if sealed else self.method(unit.method)
        except Exception as err:  # a worker that cannot build the method: its samples fail, the run goes on
            problem = f"could not build the method here: {type(err).__name__}: {one_line(err)}"
            records += [SampleRecord(**base, sample_id=unit.sample_ids[j], status="error", error=problem)
                        for j in pending]
            return
        device = self.device if sealed else method.device
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

    def _batch(self, method: Method | SealedMethod, device: torch.device, unit: WorkUnit, base: dict[str, Any],
               condition: Condition, task: Any, images: torch.Tensor, dataset_masks: torch.Tensor | None,
               batch_ids: list[str], side: SideOutputs, timing: _Timing) -> list[SampleRecord]:
        suite, label = self.suite, unit.method
        original = images.to(device)
        observation = task.observe(original)
        seeds = Seeds((suite.seed, "method", label), tuple(batch_ids))
        first_mask = None if dataset_masks is None else dataset_masks[:1]
        shape = tuple(original.shape[1:])
        warmed = method.warmed if isinstance(method, SealedMethod) else self.warmed
        warm_key = (label, condition.task_name, shape)
        # The warm-up never sees the batch: the first sample's task (its mask) on synthetic noise.
        warmup = None if warm_key in warmed else warmup_observation(
            lambda: condition.task_for(batch_ids[:1], (1, *shape), suite.seed, first_mask), shape, suite.seed)
        try:
            if isinstance(method, SealedMethod):
                restoration, seconds, peak, warmup_s = method.call(
                    observation, seeds, None if warmup is None else observation_on(warmup, device), suite.call_timeout_s)
            else:
                restoration, seconds, peak, warmup_s = call_method(
                    method, self.applied.get(label), observation, seeds,
                    None if warmup is None else observation_on(warmup, device), device)
            warmed.add(warm_key)
            timing.method_s += seconds
            timing.warmup_s += warmup_s
            problem = validate_output(restoration.image, original.shape)
        except Exception as err:  # a failing method is a result, not the end of the run
            problem = one_line(err) if isinstance(err, (CallTimeout, WorkerFailed, BadOutput)) else \
                f"{type(err).__name__}: {one_line(err)}"
            log.warning("%s failed on %s/%s: %s", label, unit.dataset, condition.label, problem)
        if problem is not None:
            return [SampleRecord(**base, sample_id=sid, status="error", error=problem) for sid in batch_ids]
        raw = restoration.image.to(device=device, dtype=torch.float32).clamp(0.0, 1.0)
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


def _close_children(children: dict[str, SealedMethod]) -> None:
    """Stop every sealed child of ``children`` and forget it."""
    for label in list(children):
        children.pop(label).close()


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
