"""The runner: wires datasets x task conditions x methods, times the method call, writes records.

The path of one sample (see DESIGN.md): image -> the condition's task (a seeded mask, a
scale) -> the task's observation -> ``method.restore`` (timed) -> raw output -> the task's
composite -> metrics -> one record. The runner never branches on the task and imports no
method.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from inpaintbench.api import (
    InpaintBenchError,
    InputError,
    Method,
    MethodUnavailable,
    Restoration,
    SampleRNG,
    check_image_batch,
)
from inpaintbench.environment import device_name, git_commit, library_versions, resolve_device
from inpaintbench.fid import save_originals, save_outputs
from inpaintbench.metrics import compute_image_metrics
from inpaintbench.notices import one_line, warn
from inpaintbench.registry import dataset_registry, mask_registry, method_registry
from inpaintbench.run.artifacts import (
    accumulate_heatmap,
    check_output_dir,
    example_path,
    heatmap_path,
    save_examples,
)
from inpaintbench.run.records import (
    DatasetRecord,
    ResultsStore,
    RunRecord,
    SampleRecord,
    UnavailableRecord,
    method_identity,
)
from inpaintbench.run.worker import CallTimeout, WorkerFailed, call_in_fork, fork_available
from inpaintbench.suite import Spec, Suite
from inpaintbench.tasks import Condition, MaskCondition
from inpaintbench.timing import timed_call

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


@dataclass
class RunSummary:
    """Counts of what a run did (skipped = already in the results file)."""

    results_path: Path
    written: int = 0
    skipped: int = 0
    errors: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: still a KeyboardInterrupt, carrying how many records this run wrote
    (all of them kept: a rerun resumes after them) and where."""

    def __init__(self, written: int, results_path: Path):
        super().__init__(f"interrupted; {written} records kept in {results_path}")
        self.written, self.results_path = written, results_path


#: The ``note`` of the records of images whose mask has no hole (they are not run).
NO_HOLE_NOTE = "no hole: the mask leaves every pixel known; not run and left out of the means"


def load_dataset(spec: Spec, n_images: int) -> tuple[torch.Tensor, list[str], torch.Tensor | None]:
    """The first ``n_images`` of a dataset, stacked.

    Returns:
        images float32 ``[N, C, H, W]`` in [0, 1], their sample ids, and the dataset's own masks
        (bool ``[N, 1, H, W]``) when every sample ships one, else None.
    """
    dataset = dataset_registry().create(spec.name, **spec.config)
    n = min(n_images, len(dataset))
    if n == 0:
        raise InputError(f"dataset {spec.label!r} is empty")
    samples = [dataset[i] for i in range(n)]
    shapes = {tuple(s.image.shape) for s in samples}
    if len(shapes) != 1:
        raise InputError(f"dataset {spec.label!r} has images of different sizes {sorted(shapes)}; "
                         "give it a size= so they are resized to one")
    for sample in samples:
        if any(ord(c) < 32 or ord(c) == 127 for c in sample.sample_id):
            raise InputError(f"dataset {spec.label!r}: sample {sample.sample_id!r} has a control character in its "
                             "name (sample ids name records and example files); rename the file")
    images = torch.stack([s.image for s in samples]).to(torch.float32)
    check_image_batch(images, f"dataset {spec.label!r} images")
    masks = None
    if all(s.mask is not None for s in samples):
        masks = torch.stack([s.mask for s in samples])
    return images, [s.sample_id for s in samples], masks


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


#: How far outside [0, 1] a raw output may stray (float rounding of a network's last layer)
#: before it is an error instead of being clipped.
RANGE_TOLERANCE = 1e-3


def _validate_output(output: Any, expected: torch.Size) -> str | None:
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


def run_suite(suite: Suite, out_dir: str | Path, *, progress: bool = True,
              lpips_weights: str | None = None, command: str = "") -> RunSummary:
    """Run every (dataset, task condition, method) of ``suite``, appending records to
    ``out_dir/results.jsonl``.

    Records already present (same key) are skipped, so an interrupted run resumes where it
    stopped. A method that raises, returns NaN or out-of-range values, changes its inputs in
    place or runs past ``suite.call_timeout_s`` on a batch gets ``status="error"`` records for
    that batch and the run goes on. An image whose mask has no hole gets a ``"skipped"``
    record (:data:`NO_HOLE_NOTE`). Everything that bad input can break (names, options,
    devices, data, masks, image size vs. metrics, task support, LPIPS weights asked for, the
    output folder) is checked before anything is written. The run holds the folder's lock
    (:class:`~inpaintbench.run.lock.FolderLock`): a second run into it refuses at once.

    Randomness: the masks of sample ``i`` come from ``(suite seed, mask label, sample id)``,
    a stochastic method's draws for it from ``(suite seed, method label, sample id)``
    (:class:`~inpaintbench.api.SampleRNG`), so no number depends on batching or resuming.
    """
    for spec in suite.methods:
        method_registry().entry(spec.name)
    for spec in suite.datasets:
        dataset_registry().entry(spec.name)
    for spec in suite.masks:
        mask_registry().entry(spec.name)
    device = resolve_device(suite.device)
    if suite.call_timeout_s is not None and (device.type == "cuda" or not fork_available()):
        raise InputError("call_timeout_s (--call-timeout) runs each call in a forked worker process, which "
                         f"{'CUDA does not support' if device.type == 'cuda' else 'this platform cannot do'}; "
                         "run without a timeout here")
    conditions = suite.conditions()
    for condition in conditions:
        condition.validate()
    loaded = {spec.label: load_dataset(spec, suite.n_images) for spec in suite.datasets}
    no_hole = {(spec.label, condition.label): check_condition(spec, condition, *loaded[spec.label], suite)
               for spec in suite.datasets for condition in conditions}
    out_dir = Path(out_dir)
    check_output_dir(out_dir, "results folder (--out)")
    methods, unavailable = build_methods(suite.methods, device)
    if not methods:  # nothing could run: say what is missing instead of writing an empty run
        raise InputError(f"no method of suite {suite.name!r} can run here: "
                         + "; ".join(f"{label}: {reason}" for label, reason in unavailable.items()))
    task_name = conditions[0].task_name
    for label, method in methods.items():
        if task_name not in method.tasks:
            raise InputError(f"method {label!r} solves {list(method.tasks)}, not the suite's task {task_name!r}; "
                             "remove it from the suite or pick a suite of its task")
    lpips_metric, lpips_note = _build_lpips(suite.lpips_net, lpips_weights, device)

    threads_before = torch.get_num_threads()
    if suite.num_threads:
        torch.set_num_threads(suite.num_threads)
    try:
        store = ResultsStore(out_dir / RESULTS_FILE)
        summary = RunSummary(store.path, unavailable=unavailable)
        try:
            with store.writing():
                _run_all(suite, out_dir, device, loaded, conditions, methods, lpips_metric, lpips_note, command,
                         progress, store, summary, no_hole)
        except KeyboardInterrupt:
            raise RunInterrupted(summary.written, store.path) from None
        return summary
    finally:
        torch.set_num_threads(threads_before)


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
                    dataset_masks: torch.Tensor | None, suite: Suite) -> set[str]:
    """Check one (dataset, condition) pair before anything is written; the ids of images
    without a hole.

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
        warn(f"{len(no_hole)} of {len(ids)} images of {spec.label!r} have no hole under {condition.label!r} "
             f"({shown}): recorded as skipped and left out of the means")
    return no_hole


def _run_all(suite: Suite, out_dir: Path, device: torch.device, loaded: dict, conditions: tuple[Condition, ...],
             methods: dict[str, Method], lpips_metric: Any, lpips_note: dict[str, Any], command: str,
             progress: bool, store: ResultsStore, summary: RunSummary, no_hole: dict[tuple, set[str]]) -> None:
    """Write the run's records into ``store``, whose lock the caller holds (see :func:`run_suite`,
    which validates and builds everything)."""
    done = store.done_keys()
    unavailable = summary.unavailable
    run_id = uuid.uuid4().hex[:12]
    store.append([RunRecord(
        run_id=run_id, suite=suite.name, task=suite.task, command=command,
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        git_commit=git_commit(), device=str(device), device_name=device_name(device),
        versions=library_versions(), lpips=lpips_note, seed=suite.seed, n_images=suite.n_images,
        batch_size=suite.batch_size, torch_threads=torch.get_num_threads(), resumed=len(done))])
    store.append([UnavailableRecord(run_id, label, reason) for label, reason in unavailable.items()])
    identities = {label: method_identity(spec.name, methods[label]) for spec in suite.methods
                  if (label := spec.label) in methods}
    warmed: set[tuple] = set()

    for dataset_spec in suite.datasets:
        images, ids, dataset_masks = loaded[dataset_spec.label]
        store.append([DatasetRecord(run_id, dataset_spec.label, list(images.shape[1:]), len(ids),
                                    lpips_metric.resize_note(*images.shape[2:]) if lpips_metric else "")])
        if suite.fid:  # FID/KID need every original and every composited output (inpaintbench.fid)
            save_originals(out_dir, dataset_spec.label, ids, images)
        for condition in conditions:
            n_ex = min(suite.n_examples, len(ids))
            if n_ex:
                shown = condition.task_for(ids[:n_ex], (n_ex, *images.shape[1:]), suite.seed,
                                           None if dataset_masks is None else dataset_masks[:n_ex])
                save_examples(example_path(out_dir, dataset_spec.label, condition.label, "_input"), ids[:n_ex],
                              original=images[:n_ex], mask=shown.shown_mask())
            for method_spec in suite.methods:
                if method_spec.label not in methods:
                    continue
                config, chash = identities[method_spec.label]
                base = dict(run_id=run_id, task=condition.task_name, method=method_spec.label,
                            method_name=method_spec.name, config=config, config_hash=chash,
                            dataset=dataset_spec.label, dataset_hash=dataset_spec.hash, mask=condition.label,
                            mask_hash=condition.hash, mask_config=condition.describe(), seed=suite.seed,
                            device=str(device))
                _run_method(methods[method_spec.label], base, images, dataset_masks, ids, condition, suite,
                            store, done, summary, lpips_metric, out_dir, progress, warmed,
                            no_hole[(dataset_spec.label, condition.label)])


def _call(method: Method, condition: Condition, suite: Suite, original: torch.Tensor, observation: Any,
          rng: SampleRNG, batch_ids: list[str], first_mask: torch.Tensor | None, warm: bool) -> tuple:
    """``(restoration, seconds, peak bytes)`` of one timed call, after a warm-up call on the first
    image when ``warm`` (the first call pays for lazy init, allocator growth, cuDNN autotune)."""
    device = original.device
    if warm:
        first = condition.task_for(batch_ids[:1], (1, *original.shape[1:]), suite.seed, first_mask)
        method.restore(first.observe(original[:1]), SampleRNG.for_samples(
            suite.seed, "warmup", sample_ids=batch_ids[:1], device=device))
    timed = timed_call(lambda: method.restore(observation, rng), device)
    return timed.value, timed.seconds, timed.peak_memory_bytes


def _call_in_worker(method: Method, condition: Condition, suite: Suite, original: torch.Tensor, observation: Any,
                    rng: SampleRNG, batch_ids: list[str], first_mask: torch.Tensor | None) -> tuple:
    """:func:`_call` in a forked worker killed after ``suite.call_timeout_s``
    (:mod:`inpaintbench.run.worker`). Always warmed up: a worker starts from the parent's
    state, so what an earlier worker's warm-up did is gone."""
    def work() -> tuple:
        restoration, seconds, peak = _call(method, condition, suite, original, observation, rng, batch_ids,
                                           first_mask, warm=True)
        image = restoration.image
        if isinstance(image, torch.Tensor):  # an array crosses the pipe by value (a tensor: by shared memory)
            image = image.detach().cpu().numpy()
        return image, dict(restoration.stats), seconds, peak

    image, stats, seconds, peak = call_in_fork(work, suite.call_timeout_s)
    if hasattr(image, "shape") and not isinstance(image, torch.Tensor):
        image = torch.from_numpy(image).to(original.device)
    return Restoration(image, stats), seconds, peak


def _run_method(method: Method, base: dict[str, Any], images: torch.Tensor, dataset_masks: torch.Tensor | None,
                ids: list[str], condition: Condition, suite: Suite, store: ResultsStore, done: set[tuple],
                summary: RunSummary, lpips_metric: Any, out_dir: Path, progress: bool, warmed: set[tuple],
                no_hole: set[str]) -> None:
    """Run one method over every pending sample of one (dataset, condition) pair."""
    pending = [i for i, sid in enumerate(ids) if SampleRecord(**base, sample_id=sid, status="ok").key() not in done]
    summary.skipped += len(ids) - len(pending)
    holeless = [i for i in pending if ids[i] in no_hole]
    if holeless:  # nothing to inpaint: recorded once, never run, never averaged
        store.append([SampleRecord(**base, sample_id=ids[i], status="skipped", hole_fraction=0.0, note=NO_HOLE_NOTE)
                      for i in holeless])
        summary.written += len(holeless)
        pending = [i for i in pending if ids[i] not in no_hole]
    if not pending:
        return
    device = method.device
    label, dataset = base["method"], base["dataset"]
    example_ids = set(ids[: suite.n_examples])
    bar = tqdm(total=len(pending), desc=f"{label} | {dataset} | {condition.label}",
               disable=not progress, leave=False)
    for start in range(0, len(pending), suite.batch_size):
        index = pending[start: start + suite.batch_size]
        batch_ids = [ids[i] for i in index]
        original = images[index].to(device)
        task = condition.task_for(batch_ids, tuple(original.shape), suite.seed,
                                  None if dataset_masks is None else dataset_masks[index])
        observation = task.observe(original)
        rng = SampleRNG.for_samples(suite.seed, "method", label, sample_ids=batch_ids, device=device)
        first_mask = None if dataset_masks is None else dataset_masks[index[:1]]
        try:
            if suite.call_timeout_s is not None:
                restoration, seconds, peak = _call_in_worker(method, condition, suite, original, observation, rng,
                                                             batch_ids, first_mask)
            else:
                warm_key = (label, condition.task_name, tuple(original.shape[1:]))
                restoration, seconds, peak = _call(method, condition, suite, original, observation, rng, batch_ids,
                                                   first_mask, warm_key not in warmed)
                warmed.add(warm_key)
            problem = _validate_output(restoration.image, original.shape)
        except Exception as err:  # a failing method is a result, not the end of the run
            problem = one_line(err) if isinstance(err, (CallTimeout, WorkerFailed)) else \
                f"{type(err).__name__}: {one_line(err)}"
            log.warning("%s failed on %s/%s: %s", label, dataset, condition.label, problem)
        if problem is not None:
            records = [SampleRecord(**base, sample_id=sid, status="error", error=problem) for sid in batch_ids]
            summary.errors += len(records)
        else:
            raw = restoration.image.to(torch.float32).clamp(0.0, 1.0)
            region = task.generated_region().to(device)
            composited = task.composite(raw, original)
            metrics = compute_image_metrics(original, raw, region, lpips=lpips_metric, band_px=suite.band_px,
                                            composited=composited)
            hole_fraction = region.float().mean(dim=(1, 2, 3))
            per_image_s = seconds / len(index)
            records = [SampleRecord(
                **base, sample_id=sid, status="ok",
                metrics={k: float(v[j]) for k, v in metrics.items()},
                time_s=per_image_s, batch_size=len(index), peak_memory_bytes=peak,
                hole_fraction=float(hole_fraction[j]),
                counters={name: restoration.per_image(name, j) for name in restoration.stats},
            ) for j, sid in enumerate(batch_ids)]
            # Before the records, keyed by sample id: a crash in between makes the rerun redo
            # these samples, and the heat map adds each sample once.
            accumulate_heatmap(heatmap_path(out_dir, dataset, condition.label, label),
                               (raw - original).abs(), region, batch_ids)
            keep = [j for j, sid in enumerate(batch_ids) if sid in example_ids]
            if keep:
                save_examples(example_path(out_dir, dataset, condition.label, label),
                              [batch_ids[j] for j in keep], output=composited[keep])
            if suite.fid:
                save_outputs(out_dir, dataset, condition.label, label, batch_ids, composited)
        store.append(records)
        summary.written += len(records)
        bar.update(len(index))
    bar.close()


def _build_lpips(net: str, weights: str | None, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """The LPIPS metric, or None with the reason it is unavailable (recorded in the run)."""
    from inpaintbench.lpips_metric import LPIPSMetric, LPIPSUnavailable

    try:
        metric = LPIPSMetric(net=net, weights=weights).to(device)
    except LPIPSUnavailable as err:
        if weights is not None:  # asked for by name: failing is an error, not a silent drop
            raise LPIPSUnavailable(f"--lpips-weights: {one_line(err)}") from err
        warn(f"LPIPS unavailable, not reported in this run: {one_line(err)}")
        return None, {"available": False, "net": net, "reason": str(err)}
    return metric, {"available": True, "net": net, "source": str(metric.source)}

