"""The runner: wires datasets x mask families x methods, times the method call, writes records.

The path of one sample (see DESIGN.md): image -> seeded mask -> zero-filled input ->
``method.inpaint`` (timed) -> raw output -> composite -> metrics -> one JSON line.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from inpaintbench.methods.wrappers.super_resolution import downscale, super_resolve_holes

from inpaintbench.api import InputError, Method, MethodUnavailable, apply_mask, check_image_batch, check_mask_batch
from inpaintbench.environment import device_name, git_commit, library_versions, resolve_device
from inpaintbench.run.artifacts import accumulate_heatmap, example_path, heatmap_path, save_examples
from inpaintbench.metrics import compute_image_metrics
from inpaintbench.registry import dataset_registry, mask_registry, method_registry
from inpaintbench.run.records import ResultsStore, config_hash, record_key
from inpaintbench.seeding import make_generator
from inpaintbench.suite import Spec, Suite
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
    images = torch.stack([s.image for s in samples]).to(torch.float32)
    check_image_batch(images, f"dataset {spec.label!r} images")
    masks = None
    if all(s.mask is not None for s in samples):
        masks = torch.stack([s.mask for s in samples])
    return images, [s.sample_id for s in samples], masks


def make_masks(spec: Spec, seed: int, ids: list[str], shape: tuple[int, int],
               dataset_masks: torch.Tensor | None) -> torch.Tensor:
    """One mask per sample, seeded by (suite seed, sample id, mask label): bool ``[N,1,H,W]``."""
    if spec.name == "dataset":
        if dataset_masks is None:
            raise InputError("mask family 'dataset' needs a dataset that ships masks (e.g. 'paired')")
        return dataset_masks
    family = mask_registry().create(spec.name, **spec.config)
    h, w = shape
    masks = torch.cat([family(1, h, w, generator=make_generator(seed, "mask", spec.label, sid)) for sid in ids])
    check_mask_batch(masks)
    return masks


def build_methods(specs: tuple[Spec, ...], device: torch.device) -> tuple[dict[str, Method], dict[str, str]]:
    """Build every method; those that cannot load here are returned with the reason."""
    methods, unavailable = {}, {}
    for spec in specs:
        try:
            methods[spec.label] = method_registry().create(spec.name, **spec.config).to(device)
        except MethodUnavailable as err:
            unavailable[spec.label] = str(err)
    return methods, unavailable


def _validate_output(output: Any, expected: torch.Size) -> str | None:
    if not isinstance(output, torch.Tensor):
        return f"method returned {type(output).__name__}, not a tensor"
    if output.shape != expected:
        return f"method returned shape {list(output.shape)}, expected {list(expected)}"
    if not torch.isfinite(output).all():
        return "method returned NaN or inf values"
    return None


def run_suite(suite: Suite, out_dir: str | Path, *, progress: bool = True,
              lpips_weights: str | None = None, command: str = "") -> RunSummary:
    """Run every (dataset, mask, method) of ``suite``, appending records to ``out_dir/results.jsonl``.

    Records already present (same key) are skipped, so an interrupted run resumes where it
    stopped. A method that raises or returns NaN on a batch gets ``status="error"`` records for
    that batch and the run goes on. Names are validated before anything is written.
    """
    for spec in suite.methods:
        method_registry().entry(spec.name)
    for spec in suite.datasets:
        dataset_registry().entry(spec.name)
    for spec in suite.masks:
        mask_registry().entry(spec.name)

    # Everything that can fail on bad input happens before the first byte is written.
    loaded = {spec.label: load_dataset(spec, suite.n_images) for spec in suite.datasets}
    for spec in suite.masks:
        if spec.name != "dataset":
            mask_registry().create(spec.name, **spec.config)
    out_dir = Path(out_dir)
    device = resolve_device(suite.device)
    lpips_metric, lpips_note = _build_lpips(suite.lpips_net, lpips_weights, device)
    # A condition is a mask family (inpainting) or a scale (super-resolution); SR methods are
    # configured per scale, so each condition gets its own built methods.
    if suite.task == "super-resolution":
        conditions = tuple(Spec("scale", f"x{s}", {"scale": s}) for s in suite.scales)
        methods_for, unavailable = {}, {}
        for cond in conditions:
            scaled = tuple(Spec(m.name, m.label, {**m.config, "scale": cond.config["scale"]}) for m in suite.methods)
            methods_for[cond.label], missing = build_methods(scaled, device)
            unavailable.update(missing)
    else:
        conditions = suite.masks
        methods, unavailable = build_methods(suite.methods, device)
        methods_for = {cond.label: methods for cond in conditions}

    threads_before = torch.get_num_threads()
    if suite.num_threads:
        torch.set_num_threads(suite.num_threads)
    try:
        return _run_all(suite, out_dir, device, loaded, conditions, methods_for, unavailable,
                        lpips_metric, lpips_note, command, progress)
    finally:
        torch.set_num_threads(threads_before)


def _run_all(suite: Suite, out_dir: Path, device: torch.device, loaded: dict, conditions: tuple[Spec, ...],
             methods_for: dict[str, dict[str, Method]], unavailable: dict[str, str], lpips_metric: Any,
             lpips_note: dict[str, Any], command: str, progress: bool) -> RunSummary:
    """Write the run's records (see :func:`run_suite`, which validates and builds everything)."""
    store = ResultsStore(out_dir / RESULTS_FILE)
    done = store.done_keys()
    summary = RunSummary(store.path, unavailable=unavailable)
    run_id = uuid.uuid4().hex[:12]
    store.append([{
        "kind": "run", "run_id": run_id, "suite": suite.name, "task": suite.task, "command": command,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(), "device": str(device), "device_name": device_name(device),
        "versions": library_versions(), "lpips": lpips_note, "seed": suite.seed,
        "n_images": suite.n_images, "batch_size": suite.batch_size, "torch_threads": torch.get_num_threads(),
    }])
    store.append([{"kind": "unavailable", "run_id": run_id, "method": label, "reason": reason}
                  for label, reason in unavailable.items()])

    for dataset_spec in suite.datasets:
        images, ids, dataset_masks = loaded[dataset_spec.label]
        store.append([{"kind": "dataset", "run_id": run_id, "dataset": dataset_spec.label,
                       "shape": list(images.shape[1:]), "n": len(ids),
                       "lpips_note": lpips_metric.resize_note(*images.shape[2:]) if lpips_metric else ""}])
        for mask_spec in conditions:
            n_ex = min(suite.n_examples, len(ids))
            if suite.task == "super-resolution":
                # Scored on the whole image; the grid shows the zero-inserted input instead.
                masks = torch.ones(images.shape[0], 1, *images.shape[2:], dtype=torch.bool)
                shown = super_resolve_holes(n_ex, *images.shape[2:], mask_spec.config["scale"])
            else:
                masks = make_masks(mask_spec, suite.seed, ids, tuple(images.shape[2:]), dataset_masks)
                shown = masks[:n_ex]
            check_mask_batch(masks, images)
            save_examples(example_path(out_dir, dataset_spec.label, mask_spec.label, "_input"), ids[:n_ex],
                          original=images[:n_ex], mask=shown)
            methods = methods_for[mask_spec.label]
            for method_spec in suite.methods:
                if method_spec.label not in methods:
                    continue
                context = dict(run_id=run_id, task=suite.task, dataset=dataset_spec.label,
                               dataset_hash=dataset_spec.hash, mask=mask_spec.label, mask_hash=mask_spec.hash,
                               mask_config={"name": mask_spec.name, **mask_spec.config},
                               seed=suite.seed, device=str(device))
                _run_method(methods[method_spec.label], method_spec, images, masks, ids, context, suite,
                            store, done, summary, lpips_metric, out_dir, progress)
    return summary


def _run_method(method: Method, spec: Spec, images: torch.Tensor, masks: torch.Tensor, ids: list[str],
                context: dict[str, Any], suite: Suite, store: ResultsStore, done: set[tuple],
                summary: RunSummary, lpips_metric: Any, out_dir: Path, progress: bool) -> None:
    """Run one method over every pending sample of one (dataset, mask) pair."""
    config = {"name": spec.name, **method.config}
    base = dict(kind="sample", method=spec.label, method_name=spec.name, config=config,
                config_hash=config_hash(config), **context)
    pending = [i for i, sid in enumerate(ids) if record_key({**base, "sample_id": sid}) not in done]
    summary.skipped += len(ids) - len(pending)
    if not pending:
        return
    device = method.device
    example_ids = set(ids[: suite.n_examples])
    bar = tqdm(total=len(pending), desc=f"{spec.label} | {context['dataset']} | {context['mask']}",
               disable=not progress, leave=False)
    warmed_up = False
    for start in range(0, len(pending), suite.batch_size):
        index = pending[start: start + suite.batch_size]
        batch_ids = [ids[i] for i in index]
        original = images[index].to(device)
        mask = masks[index].to(device)
        generator = make_generator(suite.seed, "method", spec.label, batch_ids[0], device=device)
        records = []
        try:
            call = method_call(method, context["task"], original, mask)
            if not warmed_up:  # first call pays for lazy init, allocator growth, cuDNN autotune
                method_call(method, context["task"], original[:1], mask[:1])(
                    make_generator(suite.seed, "warmup", device=device))
                warmed_up = True
            timed = timed_call(lambda: call(generator), device)
            problem = _validate_output(timed.value, original.shape)
        except Exception as err:  # a failing method is a result, not the end of the run
            problem = f"{type(err).__name__}: {err}"
            log.warning("%s failed on %s/%s: %s", spec.label, context["dataset"], context["mask"], problem)
        if problem is not None:
            records = [{**base, "sample_id": sid, "status": "error", "error": problem} for sid in batch_ids]
            summary.errors += len(records)
        else:
            raw = timed.value.to(torch.float32).clamp(0.0, 1.0)
            metrics = compute_image_metrics(original, raw, mask, lpips=lpips_metric, band_px=suite.band_px)
            stats = method.call_stats()
            hole_fraction = mask.float().mean(dim=(1, 2, 3))
            per_image_s = timed.seconds / len(index)
            for j, sid in enumerate(batch_ids):
                records.append({
                    **base, "sample_id": sid, "status": "ok",
                    "metrics": {k: float(v[j]) for k, v in metrics.items()},
                    "time_s": per_image_s, "batch_size": len(index),
                    "peak_memory_bytes": timed.peak_memory_bytes, "hole_fraction": float(hole_fraction[j]),
                    **{k: float(v) for k, v in stats.items()},
                })
            accumulate_heatmap(heatmap_path(out_dir, context["dataset"], context["mask"], spec.label),
                               (raw - original).abs(), mask)
            keep = [j for j, sid in enumerate(batch_ids) if sid in example_ids]
            if keep:
                composited = torch.where(mask, raw, original)
                save_examples(example_path(out_dir, context["dataset"], context["mask"], spec.label),
                              [batch_ids[j] for j in keep], output=composited[keep])
        store.append(records)
        summary.written += len(records)
        bar.update(len(index))
    bar.close()


def method_call(method: Method, task: str, original: torch.Tensor,
                mask: torch.Tensor) -> Callable[[torch.Generator], torch.Tensor]:
    """The method call of one batch, inputs prepared outside the timed region.

    Inpainting: the method gets the zero-filled image and the mask (``None`` if it is blind).
    Super-resolution: it gets the area-downscaled image (``method.scale``).
    """
    if task == "super-resolution":
        low_res = downscale(original, method.scale)
        return lambda generator: method.upscale(low_res, method.scale, generator=generator)
    masked = apply_mask(original, mask)
    model_mask = None if method.blind else mask
    return lambda generator: method.inpaint(masked, model_mask, generator=generator)


def _build_lpips(net: str, weights: str | None, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """The LPIPS metric, or None with the reason it is unavailable (recorded in the run)."""
    from inpaintbench.lpips_metric import LPIPSMetric, LPIPSUnavailable

    try:
        metric = LPIPSMetric(net=net, weights=weights).to(device)
    except LPIPSUnavailable as err:
        return None, {"available": False, "net": net, "reason": str(err)}
    return metric, {"available": True, "net": net, "source": str(metric.source)}

