"""Leaderboards and comparison grids, regenerated from results files without recomputing."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from inpaintbench.run.artifacts import example_path, load_examples, safe_name  # noqa: E402
from inpaintbench.metrics import METRICS, metric_info  # noqa: E402
from inpaintbench.run.records import (  # noqa: E402
    KEY_FIELDS,
    DatasetRecord,
    ResultsStore,
    RunRecord,
    SampleRecord,
    UnavailableRecord,
)

#: (record key, column title, higher is better), from the one metric table in
#: :mod:`inpaintbench.metrics`.
COLUMNS: tuple[tuple[str, str, bool], ...] = tuple(
    (m.name, f"{m.title}{' (raw)' if m.output == 'raw' else ''} {m.arrow}", m.higher_is_better) for m in METRICS)


def load_records(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """Read results files.

    Returns:
        one row per sample record (the last record of each key wins: a retried error is
        superseded), metrics flattened into columns and scalar method / mask settings into
        ``config.<key>`` / ``mask_config.<key>`` columns (:meth:`SampleRecord.flat`); the run
        records; the unavailable records (dataclasses of :mod:`inpaintbench.run.records`).
    """
    samples, runs, unavailable, notes = [], [], [], {}
    for path in paths:
        for record in ResultsStore(path):
            if isinstance(record, SampleRecord):
                samples.append(record.flat())
            elif isinstance(record, RunRecord):
                runs.append(record)
            elif isinstance(record, UnavailableRecord):
                unavailable.append(record)
            elif isinstance(record, DatasetRecord) and record.lpips_note:
                notes[record.dataset] = record.lpips_note
    frame = pd.DataFrame(samples)
    if not frame.empty:
        frame = frame.drop_duplicates(subset=[k for k in KEY_FIELDS if k in frame], keep="last")
    frame.attrs["lpips_notes"] = notes
    return frame, runs, unavailable


def mean_ci(values: pd.Series) -> tuple[float, float]:
    """Mean and the half-width of its 95 % Student-t confidence interval (NaN if n < 2).

    Infinite values (PSNR of a perfect reconstruction) make the mean infinite on purpose.
    """
    values = values.dropna().astype(float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    if n < 2 or not np.isfinite(values).all():
        return mean, math.nan
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, half


def _fmt(mean: float, half: float, key: str) -> str:
    if math.isnan(mean):
        return "–"
    if math.isinf(mean):
        return "inf" if mean > 0 else "-inf"
    digits = metric_info(key).digits
    text = f"{mean:.{digits}f}"
    return text if math.isnan(half) else f"{text} ± {half:.{digits}f}"


def _fmt_column(values: pd.Series, key: str) -> str:
    """Mean ± CI; for PSNR, images reconstructed exactly (inf dB) are counted, not averaged:
    one exact image would otherwise turn the whole mean into inf."""
    values = values.dropna().astype(float)
    exact = int(np.isposinf(values).sum())
    if metric_info(key).unit == "dB" and exact:
        finite = values[np.isfinite(values)]
        text = _fmt(*mean_ci(finite), key) if len(finite) else "inf"
        return f"{text} (+{exact} exact)" if len(finite) else text
    return _fmt(*mean_ci(values), key)


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per method of one (task, dataset, mask) group: means ± 95 % CI, cost, errors."""
    rows = []
    for method, group in frame.groupby("method", sort=False):
        ok = group[group["status"] == "ok"]
        row = {"method": method}
        for key, title, _ in COLUMNS:
            row[title] = _fmt_column(ok[key], key) if key in ok else "–"
        row["time / image (ms)"] = f"{1000 * ok['time_s'].mean():.1f}" if len(ok) else "–"
        row["NFE"] = f"{ok['nfe'].mean():.3g}" if "nfe" in ok and ok["nfe"].notna().any() else "–"
        calls = ok["inner_calls"] if "inner_calls" in ok else pd.Series(dtype=float)
        row["inner calls"] = f"{calls.mean():.1f}" if calls.notna().any() else "–"
        if "peak_memory_bytes" in ok and ok["peak_memory_bytes"].notna().any():
            row["peak GPU MB"] = f"{ok['peak_memory_bytes'].max() / 2**20:.0f}"
        row["n"] = len(ok)
        row["errors"] = int((group["status"] == "error").sum())
        row["_sort"] = ok["lpips"].mean() if "lpips" in ok and ok["lpips"].notna().any() else -ok["psnr"].mean()
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("_sort", na_position="last").drop(columns="_sort")
    # Columns no method has (known-region change in super-resolution, LPIPS without weights).
    empty = [c for c in table if (table[c].astype(str) == "–").all()]
    return table.drop(columns=empty).reset_index(drop=True)


def comparison_grid(results_dir: Path, dataset: str, mask: str, methods: list[str], out_path: Path,
                    max_rows: int = 6) -> Path | None:
    """Draw original | mask | masked input | each method for the saved examples; None if none saved."""
    inputs = load_examples(example_path(results_dir, dataset, mask, "_input"))
    if not inputs:
        return None
    ids = list(inputs)[:max_rows]
    outputs = {m: load_examples(example_path(results_dir, dataset, mask, m)) for m in methods}
    outputs = {m: o for m, o in outputs.items() if o}
    columns = ["original", "mask", "masked input", *outputs]
    fig, axes = plt.subplots(len(ids), len(columns), figsize=(1.3 * len(columns), 1.3 * len(ids) + 0.4),
                             squeeze=False)
    for r, sid in enumerate(ids):
        original = inputs[sid]["original"]
        hole = inputs[sid]["mask"][0]
        masked = np.where(hole[None], 0, original)
        cells = [original, (~hole).astype(np.uint8)[None] * 255, masked]
        cells += [outputs[m][sid]["output"] if sid in outputs[m] else None for m in outputs]
        for c, image in enumerate(cells):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if image is not None:
                ax.imshow(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0),
                          cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            if r == 0:
                ax.set_title(columns[c], fontsize=7)
    fig.suptitle(f"{dataset} · {mask} (mask: black = hole)", fontsize=8)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def write_leaderboard(results_paths: list[Path], report_dir: Path) -> Path:
    """Regenerate ``report_dir/LEADERBOARD.md`` (and its grids) from results files.

    Nothing is recomputed: tables come from the records, grids from the examples each run
    saved beside its results file.
    """
    frame, runs, unavailable = load_records(results_paths)
    report_dir.mkdir(parents=True, exist_ok=True)
    suites = sorted({r.suite for r in runs} - {""})
    title = "inpaintbench leaderboard" + (f": suite {', '.join(suites)}" if suites else "")
    lines = [f"# {title}", "", "Generated by `inpaintbench report` from "
             + ", ".join(f"`{_rel(p, report_dir)}`" for p in results_paths) + ". Do not edit by hand.", ""]
    lines += _provenance(runs)
    lines += ["", "Quality metrics (PSNR, SSIM, LPIPS, hole PSNR) are computed per image on the composited output "
              "(known pixels pasted back) and averaged over images; ± is the 95 % confidence interval of the mean "
              "(Student t); for PSNR, images reconstructed exactly (inf dB) are counted as \"+k exact\" and the mean is over the others. Known-region change and the boundary band (pixels within the run's band width of a hole's "
              "edge, both sides) are measured on the raw output: how much a method altered pixels it was given. "
              "Time is wall-clock per image of the method call alone (batched; after a warm-up call; CUDA "
              "synchronized). NFE = network evaluations per image. Rows are sorted by LPIPS (or PSNR without it).", ""]
    if frame.empty:
        lines.append("_No results yet._")
    else:
        for (task, dataset, mask), group in frame.groupby(["task", "dataset", "mask"], sort=False):
            results_dir = _results_dir_of(group, results_paths)
            lines += [f"## {task}: {dataset} · {mask}", ""]
            table = summary_table(group)
            if task == "super-resolution":  # the whole image is the "hole": hole PSNR = PSNR
                table = table.drop(columns=["hole PSNR ↑"], errors="ignore")
            lines += [table.to_markdown(index=False), ""]
            note = frame.attrs.get("lpips_notes", {}).get(dataset)
            if note:
                lines += [f"_{note}._", ""]
            grid_name = f"figures/grid_{safe_name(task)}_{safe_name(dataset)}_{safe_name(mask)}.png"
            grid = comparison_grid(results_dir, dataset, mask, list(table["method"]), report_dir / grid_name)
            if grid is not None:
                lines += [f"![{dataset} · {mask}]({grid_name})", ""]
            errors = group[group["status"] == "error"]
            if len(errors):
                for method, err in errors.groupby("method")["error"].first().items():
                    lines.append(f"- `{method}` failed on some samples: {err}")
                lines.append("")
    studies = sorted(report_dir.glob("*/**/*.md"))  # other suites' leaderboards, sweeps
    figures = sorted(p for p in report_dir.glob("*.png"))
    if studies or figures:
        lines += ["## Studies and figures", ""]
        lines += [f"- [{p.relative_to(report_dir).parent.as_posix()}: {p.stem}]({p.relative_to(report_dir).as_posix()})"
                  for p in studies]
        lines += [f"- [{p.stem}]({p.name})" for p in figures]
        lines += [f"- [{p.stem}]({p.name})" for p in sorted(report_dir.glob("*.md")) if p.name != "LEADERBOARD.md"]
        lines.append("")
    if unavailable:
        lines += ["## Methods not available in these runs", ""]
        seen = {}
        for rec in unavailable:
            seen[rec.method] = rec.reason
        lines += [f"- `{m}`: {reason}" for m, reason in seen.items()] + [""]
    out = report_dir / "LEADERBOARD.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, out)
    return out


def _rel(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:
        return str(path)


def _results_dir_of(group: pd.DataFrame, results_paths: list[Path]) -> Path:
    # Examples live beside the results file; with several files, the first that has them wins.
    for path in results_paths:
        if example_path(path.parent, group["dataset"].iloc[0], group["mask"].iloc[0], "_input").exists():
            return path.parent
    return results_paths[0].parent


def _provenance(runs: list[RunRecord]) -> list[str]:
    if not runs:
        return []
    lines = ["| run | suite | device | commit | torch | threads | command |", "|---|---|---|---|---|---|---|"]
    for run in runs[-8:]:
        resumed = f", resumed after {run.resumed} records" if run.resumed else ""
        lines.append(f"| {run.run_id} ({run.started}{resumed}) | {run.suite} | {run.device_name or run.device} | "
                     f"{str(run.git_commit)[:12]} | {run.versions.get('torch', '')} | {run.torch_threads} | "
                     f"`{run.command}` |")
    last = runs[-1]
    versions = ", ".join(f"{k} {v}" for k, v in last.versions.items())
    lines += ["", f"Library versions (latest run): {versions}."]
    lp = last.lpips
    if lp:
        lines.append(f"LPIPS ({lp.get('net')}): " + (f"pretrained backbone from {lp.get('source')}."
                     if lp.get("available") else f"unavailable, not reported: {lp.get('reason')}"))
    return lines
