"""Parameter sweeps: one method parameter and/or one mask parameter, run like any suite.

A sweep is an ordinary suite whose method (or mask) specs differ in one value, so its records
resume like any run's; the plots read the records' ``config.<param>`` / ``mask_config.<param>``.
"""

from __future__ import annotations

from dataclasses import replace

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from inpaintbench.api import InputError
from inpaintbench.run.artifacts import heatmap_path, load_heatmap
from inpaintbench.run.units import ResultsFolder
from inpaintbench.reporting.leaderboard import COLUMNS, load_records
from inpaintbench.reporting.plots import agg_subplots
from inpaintbench.reporting.statistics import summary_interval
from inpaintbench.suite import Spec, Suite

if TYPE_CHECKING:  # the plots draw on the Agg canvas (imported when they run), the frames come in built
    import pandas as pd


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (``0.5``, ``true``, ``[1, 2]``), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=false"]`` -> ``{"a": 1, "b": False}``; a clear error for anything else."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def sweep_suite(base: Suite, *, methods: Sequence[str], param: str | None, values: Sequence[Any],
                method_options: dict[str, Any], mask: str, mask_param: str | None,
                mask_values: Sequence[Any]) -> Suite:
    """The suite of a sweep: every method x every ``param`` value, every mask x ``mask_param`` value.

    Labels carry the fixed options and the swept value (``ddpm-paste{paste_known=False}[strength=0.5]``,
    ``disc[radius_fraction=0.2]``), so sweeps with different fixed options can share one
    results folder and still be told apart in the plots.
    """
    if param is not None and not values:
        raise InputError(f"--param {param} needs --values")
    if mask_param is not None and not mask_values:
        raise InputError(f"--mask-param {mask_param} needs --mask-values")
    if mask_param is not None and base.task != "inpainting":
        raise InputError(f"suite {base.name!r} is a {base.task} suite: it has no masks to sweep; sweep a method "
                         "option with --param")
    method_specs = []
    fixed = "{" + ",".join(f"{k}={v}" for k, v in sorted(method_options.items())) + "}" if method_options else ""
    for name in methods:
        for value in (values if param is not None else [None]):
            config = dict(method_options)
            label = name + fixed
            if param is not None:
                config[param] = value
                label = f"{label}[{param}={value}]"
            method_specs.append(Spec(name, label, config))
    mask_specs = [Spec(mask, mask if mask_param is None else f"{mask}[{mask_param}={v}]",
                       {} if mask_param is None else {mask_param: v})
                  for v in (mask_values if mask_param is not None else [None])]
    # Every other field of the base suite (task, scales, seed, sizes, device...) is kept:
    # a sweep of the super-resolution suite stays a super-resolution run.
    masks = base.masks if base.task == "super-resolution" else tuple(mask_specs)
    return replace(base, methods=tuple(method_specs), masks=masks)


def plot_sweep(frame: pd.DataFrame, x: str, line: str, out_path: Path,
               metrics: Sequence[str] = ("psnr", "lpips", "known_mse", "boundary_mae")) -> Path:
    """Metric against the swept parameter, one line per ``line`` value, 95 % CI as a band.

    Args:
        frame: sample rows from :func:`inpaintbench.reporting.leaderboard.load_records` (status ok only used).
        x: the column swept (e.g. ``config.strength``).
        line: the column naming the lines (e.g. ``method_name``).
    """
    ok = frame[frame["status"] == "ok"]
    titles = {key: title for key, title, _ in COLUMNS}
    shown = [m for m in metrics if m in ok and ok[m].notna().any()]
    fig, axes = agg_subplots(1, len(shown), figsize=(3.6 * len(shown), 3.0))
    for ax, metric in zip(axes[0], shown):
        for name, group in ok.groupby(line, sort=False):
            # the leaderboard's summaries (PSNR of the mean MSE) and intervals
            points = sorted((float(v), *summary_interval(g[metric], metric)) for v, g in group.groupby(x))
            xs, means, lows, highs = (np.array(p, dtype=float) for p in zip(*points))
            ax.plot(xs, means, marker="o", label=str(name))
            finite = np.isfinite(lows) & np.isfinite(highs)
            ax.fill_between(xs[finite], lows[finite], highs[finite], alpha=0.2)
        ax.set_xlabel(x.split(".", 1)[-1])
        ax.set_title(titles.get(metric, metric), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path


def plot_heatmaps(results_dir: Path, frame: pd.DataFrame, out_path: Path, top: int = 6) -> Path | None:
    """Mean |raw output - original| per pixel for the ``top`` settings with the largest
    known-region change, hole outlined (where the hole frequency crosses 50 %)."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return None
    ranked = (ok.groupby(["dataset", "mask", "method"])["known_mse"].mean()
              .sort_values(ascending=False).head(top))
    maps = []
    for (dataset, mask, method), value in ranked.items():
        loaded = load_heatmap(heatmap_path(results_dir, dataset, mask, method))
        if loaded is not None:
            maps.append((f"{method}\n{mask}\nknown MSE {value:.2e}", *loaded))
    if not maps:
        return None
    vmax = max(float(m[1].max()) for m in maps) or 1.0
    fig, axes = agg_subplots(1, len(maps), figsize=(2.6 * len(maps), 2.9))
    for ax, (title, error, holes, count) in zip(axes[0], maps):
        image = ax.imshow(error, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        if 0 < holes.max():
            ax.contour(holes, levels=[0.5], colors="cyan", linewidths=0.8)
        ax.set_title(f"{title}\n(n={count})", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="mean |output − original|")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path


def write_sweep_report(results_path: Path, report_dir: Path, x: str, line: str, title: str) -> Path:
    """``report_dir/SWEEP.md`` with the sweep plot and the error heatmaps, from the records alone."""
    frame, runs, _ = load_records([results_path])
    if frame.empty:
        raise InputError(f"no results in {results_path}")
    # One line per method and fixed options: the label without its "[param=value]" suffix.
    frame["line"] = frame["method"].str.replace(r"\[[^\]]*\]$", "", regex=True)
    if x not in frame:
        raise InputError(f"the records have no column {x!r}; known: {sorted(c for c in frame if '.' in c)}")
    plot_sweep(frame, x, line, report_dir / "sweep.png")
    heat = plot_heatmaps(ResultsFolder(results_path).root, frame, report_dir / "heatmaps.png")
    lines = [f"# Sweep: {title}", "", f"Generated by `inpaintbench sweep` from `{results_path}`; x = `{x}`, "
             f"one line per `{line}`, band = 95 % CI of the mean over images. Known-region change and the "
             "boundary band are measured on the raw output.", ""]
    if runs:
        last = runs[-1]
        lines += [f"Device: {last.device_name}; commit {str(last.git_commit)[:12]}; "
                  f"command: `{last.command}`.", ""]
    lines += ["![sweep](sweep.png)", ""]
    if heat is not None:
        lines += ["Per-pixel mean |raw output − original| for the settings with the largest known-region change "
                  "(hole outlined in cyan where at least half the images have a hole):", "", "![heatmaps](heatmaps.png)", ""]
    table = (frame[frame["status"] == "ok"].groupby([line, x])[[c for c in ("psnr", "lpips", "known_mse", "known_maxabs")
                                                                  if c in frame]].mean().reset_index())
    lines += [table.to_markdown(index=False, floatfmt=".4g"), ""]
    out = report_dir / "SWEEP.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out
