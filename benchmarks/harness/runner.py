"""The runner: plans a suite as work units, checks everything, and has an executor run them.

A run is planned as units (method x dataset x task condition x shard of sample ids,
:mod:`inpaintbench.store.folder`); an executor (:mod:`inpaintbench.harness.executors`: in this
process, local worker processes, Ray actors) runs each through
:class:`~inpaintbench.harness.unit_runner.UnitRunner`, which streams the unit's images batch by
batch, times the method call and writes the unit's file. Nothing is stacked for the whole
dataset, so memory does not grow with the number of images. The runner never branches on the
task and imports no method.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from inpaintbench.core.errors import InpaintBenchError, InputError, MethodUnavailable
from inpaintbench.core.method import Method
from inpaintbench.harness.environment import device_name, git_commit, library_versions, resolve_device
from inpaintbench.metrics.table import compute_image_metrics
from inpaintbench.metrics.options import run_dists
from inpaintbench.core.notices import one_line, warn
from inpaintbench.core.registry import dataset_registry, mask_registry, method_registry
from inpaintbench.store.artifacts import check_output_dir
from inpaintbench.harness.data import DatasetView, open_dataset
from inpaintbench.harness.data_identity import is_current, plan_digests
from inpaintbench.harness.executors import LocalPool, WorkerSpec, check_executor, dispatch, run_in_process
from inpaintbench.store.records import DatasetRecord, RunRecord, SampleRecord, UnavailableRecord
from inpaintbench.harness.unit_runner import (
    NO_HOLE_NOTE,
    UnitOutcome,
    UnitRunner,
    accelerated_identity,
    build_lpips,
)
from inpaintbench.store.folder import ResultsFolder, WorkUnit, unit_name
from inpaintbench.core.identity import unit_hash
from inpaintbench.harness.suite import Spec, Suite
from inpaintbench.core.conditions import Condition, MaskCondition

__all__ = ["run_suite", "plan_suite", "refused_pairs", "Plan", "RunSummary", "RunInterrupted", "NO_HOLE_NOTE"]

#: Images read per dataset before the run to check masks, metrics and polarity.
PROBE_IMAGES = 64


@dataclass
class RunSummary:
    """Counts of what a run did (skipped = already done, by this or an earlier run).

    ``results_path`` is the results folder (``--out``): pass it to ``inpaintbench report``.
    """

    results_path: Path
    written: int = 0
    skipped: int = 0
    errors: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)
    refused: dict[tuple[str, str], str] = field(default_factory=dict)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: still a KeyboardInterrupt, carrying how many records this run wrote
    (all of them kept: a rerun resumes after them) and where."""

    def __init__(self, written: int, results_path: Path):
        super().__init__(f"interrupted; {written} records kept in {results_path}")
        self.written, self.results_path = written, results_path


def build_methods(specs: tuple[Spec, ...], device: torch.device) -> tuple[dict[str, Method], dict[str, str]]:
    """Build every method; those that cannot load here are returned with the reason.

    Raises:
        InputError: bad options, or a constructor that fails otherwise (a crashing plugin, a
            corrupt checkpoint): named with its options, before anything is written.
    """
    methods, unavailable = {}, {}
    for spec in specs:
        try:
            methods[spec.label] = method_registry().create(spec.name, **spec.config).to(device)
        except MethodUnavailable as err:
            unavailable[spec.label] = str(err)
        except InpaintBenchError:
            raise
        except Exception as err:
            given = "".join(f", {k}={v!r}" for k, v in spec.config.items())
            raise InputError(f"method {spec.label!r} (name {spec.name!r}{given}) could not be built: "
                             f"{type(err).__name__}: {one_line(err)}") from err
    return methods, unavailable



def _polarity_option(spec: Spec, condition: Condition) -> tuple[str, str] | None:
    """``(option, value)`` saying how the mask files of this pair were read, or None (drawn masks)."""
    if not isinstance(condition, MaskCondition):
        return None
    if condition.name == "files":
        return "polarity", str(condition.config.get("polarity", "white-known"))
    if condition.name == "dataset" and (spec.name == "paired" or "mask_polarity" in spec.config):
        return "mask_polarity", str(spec.config.get("mask_polarity", "white-known"))
    return None


def check_condition(spec: Spec, condition: Condition, images: torch.Tensor, ids: list[str],
                    dataset_masks: torch.Tensor | None, suite: Suite, n_total: int) -> set[str]:
    """Check one (dataset, condition) pair on its first images before anything is written; the
    ids of those without a hole.

    Args:
        images, ids, dataset_masks: the probe (the dataset's first images, at most
            :data:`PROBE_IMAGES`); ``n_total`` the number of images the run will use.

    The condition must make a task for these images (masks of this size, a dataset's own
    masks, a scale that divides them), the task must observe them, and the metrics must
    accept their size and the suite's band. Mask files whose holes cover most of the image
    (more than half, on average) are probably read with the wrong polarity: one warning per
    pair, naming the option to change. Images whose mask has no hole are named in one
    warning; the run records them as skipped.
    """
    try:
        task = condition.task_for(ids, tuple(images.shape), suite.seed, dataset_masks)
        first = images[:1]
        condition.task_for(ids[:1], tuple(first.shape), suite.seed,
                           None if dataset_masks is None else dataset_masks[:1]).observe(first)
        region = task.generated_region()
        compute_image_metrics(first, first, region[:1].to(first.device), band_px=suite.band_px, composited=first)
    except InputError as err:
        raise InputError(f"dataset {spec.label!r} with {condition.label!r}: {err}") from err
    fractions = region.float().mean(dim=(1, 2, 3))
    no_hole = {sid for sid, fraction in zip(ids, fractions.tolist()) if fraction == 0.0}
    polarity = _polarity_option(spec, condition)
    mean = float(fractions.mean())
    if polarity is not None and mean > 0.5:
        option, value = polarity
        other = "white-hole" if value == "white-known" else "white-known"
        white = "known" if value == "white-known" else "a hole"
        warn(f"the masks of {spec.label!r} · {condition.label!r} hide {mean:.0%} of each image on average, read "
             f"with {option}={value!r} (white = {white}); inpainting masks rarely hide most of an image: if white "
             f"means the opposite in these files, set {option}={other!r}")
    if no_hole:
        shown = ", ".join(repr(s) for s in sorted(no_hole)[:5]) + (", ..." if len(no_hole) > 5 else "")
        of = f"{len(ids)}" if len(ids) == n_total else f"the first {len(ids)} (of {n_total})"
        warn(f"{len(no_hole)} of {of} images of {spec.label!r} have no hole under {condition.label!r} "
             f"({shown}): recorded as skipped and left out of the means")
    return no_hole




def refused_pairs(methods: dict[str, Method], shapes: dict[str, tuple[int, int, int]]) -> dict[tuple[str, str], str]:
    """Ask every built method whether it takes each dataset's images (:meth:`Method.accepts`).

    Args:
        methods: built methods by label; shapes: ``(C, H, W)`` by dataset label.

    Returns:
        ``{(method label, dataset label): reason}`` of the pairs that refuse; the run leaves
        them out.

    Raises:
        InputError: an ``accepts`` that fails instead of answering (one line naming it).
    """
    refused = {}
    for label, method in methods.items():
        for dataset, shape in shapes.items():
            try:
                reason = method.accepts(*shape)
            except InputError as err:  # a declaration that raises its refusal instead of returning it
                reason = one_line(err)
            except Exception as err:
                raise InputError(f"method {label!r}: accepts{tuple(shape)} failed: {type(err).__name__}: "
                                 f"{one_line(err)}") from err
            if reason:
                refused[(label, dataset)] = one_line(reason)
    return refused


#: The largest side a dataset's ``size`` may give its images: a float32 RGB image of 8192 x 8192
#: is 0.8 GB, and a batch holds several copies of each (original, observation, output, composite).
MAX_IMAGE_SIDE = 8192


def check_dataset_sizes(specs: tuple[Spec, ...]) -> None:
    """Refuse a dataset ``size`` no run could hold, before any image is made that large.

    Raises:
        InputError: a ``size`` over :data:`MAX_IMAGE_SIDE`, one line with what one image
            would need.
    """
    for spec in specs:
        size = spec.config.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size > MAX_IMAGE_SIDE:
            gigabytes = size * size * 3 * 4 / 1e9
            raise InputError(f"dataset {spec.label!r}: size={size} is over the largest image side, "
                             f"{MAX_IMAGE_SIDE} px (one {size}x{size} RGB float32 image alone is {gigabytes:,.0f} GB); "
                             f"pass a smaller --size (e.g. 256)")


@dataclass
class Plan:
    """A checked, planned run: the units, and what building it learned.

    Attributes:
        units: every unit of the run, in execution order (method by method within a dataset,
            so a worker keeps one model loaded across consecutive units).
        methods: the methods built while checking (label -> Method); ``unavailable`` those
            that cannot be built here, with the reason.
        identities: ``label -> (effective config, config hash)``.
        views: the datasets (streamed). ``lpips``/``lpips_note``: the metric and its note;
            ``dists``: the DISTS metric when the suite asks for it (built here, on the device
            that builds the methods, so that missing weights are refused before anything runs).
        refused: ``{(method, dataset): reason}``: pairs left out because the method does not
            take the dataset's images (:meth:`Method.accepts`); they have no units.
    """

    suite: Suite
    out_dir: Path
    device: torch.device
    units: list[WorkUnit]
    methods: dict[str, Method]
    unavailable: dict[str, str]
    identities: dict[str, tuple[dict[str, Any], str]]
    views: dict[str, DatasetView]
    conditions: tuple[Condition, ...]
    lpips: Any
    lpips_note: dict[str, Any]
    applied: dict[str, Any]
    refused: dict[tuple[str, str], str] = field(default_factory=dict)
    dists: Any = None

    def pending(self) -> list[WorkUnit]:
        """Units with at least one sample not done at planning time."""
        return [u for u in self.units if len(u.done) < len(u.keys)]

    def done_count(self) -> int:
        """Samples of the plan already finished in the folder when it was planned."""
        return sum(len(u.done) for u in self.units)


def _unit_content(base: dict[str, Any], sample_ids: list[str]) -> dict[str, Any]:
    # Exactly what keys its records (SampleRecord.key): runs that differ only in how they
    # execute (batch size, memory budget, workers) share units instead of computing them twice.
    return {**{k: base[k] for k in ("task", "method", "config_hash", "dataset", "dataset_hash", "mask", "mask_hash",
                                    "seed")}, "sample_ids": sample_ids}


def plan_suite(suite: Suite, out_dir: str | Path, *, lpips_weights: str | None = None,
               executor: str = "inprocess", load_lpips: bool = True) -> Plan:
    """Check ``suite`` as far as it can be checked without running a method, build its methods
    and plan its units against the results folder ``out_dir`` (nothing is written).

    Everything that bad input can break (names, options, devices, data, masks, image size vs.
    metrics, task support, LPIPS weights asked for, the output folder) is checked here. For
    the pool executors (``local``, ``ray``) the methods are built on the CPU, only to check them
    and learn their identities (the workers build their own); a Ray driver needs no GPU of its
    own (``device = "cuda"`` names the workers' device).

    A method that does not take a dataset's images (:meth:`Method.accepts`: a grey model on
    RGB data, a prior trained at 28 px on 256-px photographs) is left out of that dataset,
    with the reason in ``Plan.refused``; when every pair refuses, nothing can run.
    ``load_lpips=False`` (``inpaintbench plan``) leaves LPIPS unloaded: nothing is downloaded.

    Raises:
        InputError: the first problem found, in one line.
    """
    for spec in suite.methods:
        method_registry().entry(spec.name)
    for spec in suite.datasets:
        dataset_registry().entry(spec.name)
    for spec in suite.masks:
        mask_registry().entry(spec.name)
    device = torch.device(suite.device) if executor == "ray" and suite.device != "auto" else \
        resolve_device(suite.device)
    build_device = device if executor == "inprocess" else torch.device("cpu")
    if suite.call_timeout_s is not None and device.type == "cuda":
        raise InputError("call_timeout_s (--call-timeout) runs each call in the method's sealed process (a "
                         "fork-server child), not yet checked with CUDA; run without a timeout here")
    conditions = suite.conditions()
    for condition in conditions:
        condition.validate()
    check_dataset_sizes(suite.datasets)
    views = {spec.label: open_dataset(spec, suite.n_images) for spec in suite.datasets}
    for spec in suite.datasets:
        view = views[spec.label]
        probe = list(range(min(len(view.ids), PROBE_IMAGES)))
        images, masks = view.load(probe)
        for condition in conditions:
            check_condition(spec, condition, images, view.ids[: len(probe)], masks, suite, len(view.ids))
    out_dir = Path(out_dir)
    if out_dir.suffix == ".jsonl":
        raise InputError(f"--out {out_dir} names a file; --out is a results folder (e.g. {out_dir.parent})")
    check_output_dir(out_dir, "results folder (--out)")
    dists = run_dists(suite.dists, lpips_weights, build_device)  # dists = true without its weights: refused now
    methods, unavailable = build_methods(suite.methods, build_device)
    if not methods:  # nothing could run: say what is missing instead of writing an empty run
        raise InputError(f"no method of suite {suite.name!r} can run here: "
                         + "; ".join(f"{label}: {reason}" for label, reason in unavailable.items()))
    task_name = conditions[0].task_name
    for label, method in methods.items():
        if task_name not in method.tasks:
            raise InputError(f"method {label!r} solves {list(method.tasks)}, not the suite's task {task_name!r}; "
                             "remove it from the suite or pick a suite of its task")
    refused = refused_pairs(methods, {spec.label: tuple(views[spec.label].shape) for spec in suite.datasets})
    if len(refused) == len(methods) * len(suite.datasets):
        raise InputError(f"no method of suite {suite.name!r} takes its data: "
                         + "; ".join(f"{m} on {d}: {reason}" for (m, d), reason in refused.items()))
    lpips_metric, lpips_note = build_lpips(suite.lpips_net, lpips_weights, build_device) if load_lpips else \
        (None, {"available": False, "net": suite.lpips_net, "reason": "not loaded by plan"})
    applied = {label: suite.acceleration.apply(method, device) for label, method in methods.items()}
    identities = {spec.label: accelerated_identity(spec.name, methods[spec.label], applied[spec.label])
                  for spec in suite.methods if spec.label in methods}
    done = ResultsFolder(out_dir).done_digests()
    content = plan_digests(views, conditions)  # a sample whose data changed is not done
    units = []
    for dataset_spec in suite.datasets:
        view = views[dataset_spec.label]
        for method_spec in suite.methods:
            if method_spec.label not in methods or (method_spec.label, dataset_spec.label) in refused:
                continue
            config, chash = identities[method_spec.label]
            for condition in conditions:
                base = dict(task=condition.task_name, method=method_spec.label, method_name=method_spec.name,
                            config=config, config_hash=chash, dataset=dataset_spec.label,
                            dataset_hash=dataset_spec.hash, mask=condition.label, mask_hash=condition.hash,
                            mask_config=condition.describe(), seed=suite.seed, device=str(device))
                for shard, start in enumerate(range(0, len(view.ids), suite.shard_size)):
                    indices = tuple(range(start, min(start + suite.shard_size, len(view.ids))))
                    ids = [view.ids[i] for i in indices]
                    keys = tuple(SampleRecord(**base, sample_id=sid, status="ok").key() for sid in ids)
                    digest = unit_hash(_unit_content(base, ids))
                    data = content[dataset_spec.label, condition.label][indices[0]:indices[-1] + 1]
                    units.append(WorkUnit(
                        method=method_spec.label, dataset=dataset_spec.label, condition=condition.label,
                        indices=indices, sample_ids=tuple(ids), keys=keys, hash=digest,
                        name=unit_name(method_spec.label, dataset_spec.label, condition.label, shard, digest),
                        base=base, num_gpus=1.0 if device.type == "cuda" else 0.0, content=data,
                        done=frozenset(key for key, d in zip(keys, data) if is_current(done, key, d))))
    return Plan(suite, out_dir, device, units, methods, unavailable, identities, views, conditions,
                lpips_metric, lpips_note, applied, refused, dists)


def run_suite(suite: Suite, out_dir: str | Path, *, progress: bool = True, lpips_weights: str | None = None,
              command: str = "", executor: str = "inprocess", workers: int | None = None,
              ray_address: str | None = None, max_retries: int | None = None,
              announce: Callable[[Plan], None] | None = None) -> RunSummary:
    """Run every (dataset, task condition, method) of ``suite`` into the results folder ``out_dir``.

    Samples already finished there (same record key, by any run) are skipped, so an
    interrupted run resumes where it stopped, and several runs (processes, machines) can work
    on one folder at once: each unit is claimed while it runs and written whole. A method that
    raises, returns NaN or out-of-range values, changes its inputs in place or runs past
    ``suite.call_timeout_s`` on a batch gets ``status="error"`` records for that batch and the
    run goes on. An image whose mask has no hole gets a ``"skipped"`` record
    (:data:`NO_HOLE_NOTE`). Everything is checked first (:func:`plan_suite`).

    Args:
        executor: ``"inprocess"`` (default), ``"local"`` (``workers`` processes, default one
            per GPU, else 2) or ``"ray"`` (``workers`` actors, default as many as the cluster
            holds: its CPUs / ``num_threads``, its GPUs; ``ray_address`` a cluster to join).
        max_retries: retries of a unit whose worker process died (default
            :data:`~inpaintbench.harness.executors.MAX_RETRIES`).
        announce: called with the checked :class:`Plan` before anything is written (the
            command line names the refused pairs there, once).

    Randomness: the masks of sample ``i`` come from ``(suite seed, mask label, sample id)``,
    a stochastic method's draws for it from ``(suite seed, method label, sample id)``
    (:class:`~inpaintbench.core.seeding.SampleRNG`), so no number depends on batching, sharding,
    executors or resuming.
    """
    check_executor(executor, workers)
    plan = plan_suite(suite, out_dir, lpips_weights=lpips_weights, executor=executor)
    if announce is not None:
        announce(plan)
    suite, out_dir, device = plan.suite, plan.out_dir, plan.device
    threads = suite.num_threads or 1
    run_id = uuid.uuid4().hex[:12]
    folder = ResultsFolder(out_dir)
    summary = RunSummary(out_dir, unavailable=plan.unavailable, refused=plan.refused)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        folder.write_run(run_id, [
            RunRecord(run_id=run_id, suite=suite.name, task=suite.task, command=command,
                      started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      git_commit=git_commit(), device=str(device), device_name=device_name(device),
                      versions=library_versions(), lpips=plan.lpips_note, seed=suite.seed, n_images=suite.n_images,
                      batch_size=suite.batch_size, torch_threads=threads, resumed=plan.done_count(),
                      executor=executor, workers=workers or 1, shard_size=suite.shard_size),
            *(UnavailableRecord(run_id, label, reason) for label, reason in plan.unavailable.items()),
            *(UnavailableRecord(run_id, label, f"refused on dataset {dataset!r}: {reason}")
              for (label, dataset), reason in plan.refused.items()),
            *(DatasetRecord(run_id, spec.label, list(plan.views[spec.label].shape), len(plan.views[spec.label].ids),
                            plan.lpips.resize_note(*plan.views[spec.label].shape[1:]) if plan.lpips else "")
              for spec in suite.datasets)])
        runner = UnitRunner(suite, out_dir, device, run_id, executor, lambda label: plan.methods[label],
                            {c.label: c for c in plan.conditions}, plan.identities, plan.lpips,
                            dists=plan.dists if executor == "inprocess" else None,  # workers build their own
                            methods=dict(plan.methods) if executor == "inprocess" else {},
                            applied=dict(plan.applied), datasets=dict(plan.views))
        outcomes: list[UnitOutcome] = []
        try:
            if executor == "inprocess":
                outcomes = run_in_process(runner, plan.units, progress=progress, sink=outcomes)
            else:
                plan.methods.clear()  # built on the CPU to be checked; the workers build their own
                pool = _pool(plan, executor, workers, ray_address, run_id, lpips_weights, threads)
                pending = plan.pending()
                summary.skipped += sum(len(u.keys) for u in plan.units if u not in pending)
                outcomes = dispatch(pool, pending, fail=runner.fail,
                                    progress=progress, sink=outcomes,
                                    **({} if max_retries is None else {"max_retries": max_retries}))
        except KeyboardInterrupt as err:
            raise RunInterrupted(sum(o.written for o in outcomes) + getattr(err, "written", 0), out_dir) from None
        for outcome in outcomes:
            summary.written += outcome.written
            summary.skipped += outcome.skipped
            summary.errors += outcome.errors
        return summary
    finally:
        torch.set_num_threads(threads_before)


def _pool(plan: Plan, executor: str, workers: int | None, ray_address: str | None, run_id: str,
          lpips_weights: str | None, threads: int):
    """The worker pool of a ``local`` or ``ray`` run."""
    suite, device = plan.suite, plan.device
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    weights = lpips_weights or os.environ.get("INPAINTBENCH_LPIPS_WEIGHTS")
    base = WorkerSpec(suite=suite, out_dir=plan.out_dir, device=str(device), run_id=run_id, executor=executor,
                      identities=plan.identities, lpips_weights=weights,
                      lpips_available=plan.lpips is not None, num_threads=threads)
    if executor == "local":
        size = workers or (gpus or 2)
        if device.type == "cuda":  # one GPU per worker, round robin when there are more workers
            return LocalPool(size, lambda slot: _with_device(base, f"cuda:{slot % gpus}"))
        return LocalPool(size, lambda slot: base)
    from inpaintbench.harness.ray_executor import RayPool

    spec = _with_device(base, "cuda:0") if device.type == "cuda" else base
    return RayPool(workers, spec, num_gpus=max((u.num_gpus for u in plan.units), default=0.0), num_cpus=threads,
                   address=ray_address or os.environ.get("RAY_ADDRESS"))


def _with_device(spec: WorkerSpec, device: str) -> WorkerSpec:
    from dataclasses import replace

    return replace(spec, device=device)
