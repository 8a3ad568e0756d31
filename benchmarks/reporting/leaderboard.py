"""Leaderboards and comparison grids, regenerated from results files without recomputing."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np
# pandas stays a module import: every leaderboard builds frames (its records, its tables), so
# deferring it saves nothing. Matplotlib is imported by the plotting functions alone.
import pandas as pd

from inpaintbench.api import InputError
from inpaintbench.fid import FIDScorer, FIDUnavailable, originals_path, score_outputs
from inpaintbench.metrics import metric_info
from inpaintbench.reporting.html import Section, viewer_data, write_html
from inpaintbench.reporting.plots import compose_grid, compute_plot, compute_points, hole_size_plot, save_png
from inpaintbench.reporting.statistics import METHOD_NOTE, N_RESAMPLES, common_samples, mean_ci  # noqa: F401
from inpaintbench.reporting.tables import (  # noqa: F401  (COLUMNS, summary_table: public here too)
    COLUMNS,
    binned,
    binned_table,
    compare_methods,
    comparison_table,
    ranking_metric,
    separation_counts,
    summary_table,
)
from inpaintbench.run.artifacts import example_path, load_examples, safe_name
from inpaintbench.run.records import (
    KEY_FIELDS,
    DatasetRecord,
    ResultsStore,
    RunRecord,
    SampleRecord,
    UnavailableRecord,
)


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


def comparison_grid(results_dir: Path, dataset: str, mask: str, methods: list[str], out_path: Path,
                    max_rows: int = 6) -> Path | None:
    """Write the comparison grid of one table's saved examples as a PNG; None if none were saved.

    Columns: original | mask (white = known, black = hole) | masked input (hole black) | each
    method of ``methods`` that saved examples, in that order; rows: the first ``max_rows``
    saved sample ids, labelled. An image a method has no output for is an empty grey tile. The
    picture is composed by :func:`inpaintbench.reporting.plots.compose_grid`: each image
    upscaled by an integer factor, nearest neighbour, so every tile holds the saved pixels.

    Args:
        results_dir: the folder of the results file (its ``examples/`` were saved by the run).
        dataset, mask: the table's dataset and condition labels.
        methods: method labels, in the table's order.
        out_path: the PNG to write (its folder is created).
        max_rows: at most this many images (rows).
    """
    inputs = load_examples(example_path(results_dir, dataset, mask, "_input"))
    if not inputs:
        return None
    ids = list(inputs)[:max_rows]
    outputs = {m: load_examples(example_path(results_dir, dataset, mask, m)) for m in methods}
    outputs = {m: o for m, o in outputs.items() if o}  # a method that saved nothing gets no column
    cells = []
    for sid in ids:
        original = inputs[sid]["original"]
        hole = inputs[sid]["mask"][0]
        row = [original, np.where(hole, 0, 255).astype(np.uint8)[None], np.where(hole[None], 0, original)]
        row += [outputs[m][sid]["output"] if sid in outputs[m] else None for m in outputs]
        cells.append(row)
    image, _ = compose_grid(ids, ["original", "mask", "masked input", *outputs], cells,
                            f"{dataset} · {mask} (mask: black = hole)")
    return save_png(image, out_path)


def write_leaderboard(results_paths: list[Path], report_dir: Path, *, reference: str | None = None,
                      fid_weights: str | None = None, html: bool = True, n_resamples: int = N_RESAMPLES) -> Path:
    """Regenerate ``report_dir/LEADERBOARD.md`` and ``LEADERBOARD.html`` (and their figures)
    from results files.

    Nothing is recomputed: tables come from the records, grids and the per-sample view from
    the examples each run saved beside its results file. FID/KID columns appear when a run
    kept every composited output (suite option ``fid = true``); their Inception features are
    cached beside the outputs.

    Args:
        reference: compare every method with this one instead of each table's best.
        fid_weights: the FID Inception file (else ``$INPAINTBENCH_FID_WEIGHTS``, else the
            original's download).
        html: also write the browsable page.
        n_resamples: bootstrap resamples of the paired comparisons.
    """
    frame, runs, unavailable = load_records(results_paths)
    if reference is not None and not frame.empty and reference not in set(frame["method"]):
        raise InputError(f"--reference {reference!r} is in none of the tables; their methods: "
                         f"{', '.join(sorted(set(frame['method'])))}")
    report_dir.mkdir(parents=True, exist_ok=True)
    suites = sorted({r.suite for r in runs} - {""})
    title = "inpaintbench leaderboard" + (f": suite {', '.join(suites)}" if suites else "")
    source = ", ".join(f"`{_rel(p, report_dir)}`" for p in results_paths)
    lines = [f"# {title}", "", f"Generated by `inpaintbench report` from {source}. Do not edit by hand."
             + (" Browsable version (sortable tables, plots, per-sample view): [LEADERBOARD.html](LEADERBOARD.html)."
                if html else ""), ""]
    provenance = _provenance(runs)
    lines += provenance
    legend = ("Quality metrics (PSNR, SSIM, LPIPS, hole PSNR) are computed per image on the composited output "
              "(known pixels pasted back); ± is the 95 % confidence interval (Student t). PSNR and hole PSNR of a set "
              "are the PSNR of its mean MSE, with exact reconstructions (inf dB) counted as MSE 0: nothing is dropped, "
              "and the interval [low, high] is the one of the mean MSE in dB. Known-region change and the boundary "
              "band (pixels within the run's band width of a hole's edge, both sides) are measured on the raw output: "
              "how much a method altered pixels it was given. Time is wall-clock per image of the method call alone "
              "(batched; after a warm-up call; CUDA synchronized). NFE = network evaluations per image. Rows are "
              "sorted by LPIPS (or PSNR without it). Each table also has a paired comparison, results by hole size "
              "when its holes vary, and quality against compute.")
    lines += ["", legend, "", METHOD_NOTE, ""]
    totals_at = len(lines)
    sections: list[Section] = []
    totals = [0, 0, 0, 0]  # paired separated, unpaired disjoint, comparisons, tables
    scorer, fid_problem = None, None
    if frame.empty:
        lines.append("_No results yet._")
    else:
        for (task, dataset, mask), group in frame.groupby(["task", "dataset", "mask"], sort=False):
            results_dir = _results_dir_of(group, results_paths)
            heading = f"{task}: {dataset} · {mask}"
            section = Section(safe_name(f"{task}_{dataset}_{mask}"), heading)
            stem = f"{safe_name(task)}_{safe_name(dataset)}_{safe_name(mask)}"
            common = common_samples(group)
            table = summary_table(group, common)
            if task == "super-resolution":  # the whole image is the "hole": hole PSNR = PSNR
                table = table.drop(columns=["hole PSNR ↑"], errors="ignore")
            methods = list(table["method"])
            key = ranking_metric(group)
            notes = [common.note()] if common.note() else []
            if originals_path(results_dir, dataset).exists() and methods:
                if scorer is None and fid_problem is None:
                    try:
                        scorer = FIDScorer(fid_weights)
                    except FIDUnavailable as err:
                        fid_problem = str(err)
                if scorer is not None:
                    scores = score_outputs(scorer, results_dir, dataset, mask, methods, common.ids)
                    if scores:
                        table["FID ↓"] = [f"{scores[m].fid:.2f}" if m in scores else "–" for m in methods]
                        table["KID ↓"] = [f"{scores[m].kid:.4f} ± {scores[m].kid_std:.4f}" if m in scores else "–"
                                          for m in methods]
                        s = next(iter(scores.values()))
                        notes.append(f"FID/KID on the 2015-12-05 Inception ({scorer.source}), composited outputs against "
                                     f"the originals of the same {s.n} images; KID: mean ± standard deviation over "
                                     f"100 subsets of {s.kid_subset_size} images"
                                     + (f"; {s.n} images are too few for FID to be meaningful (its 2048x2048 covariance "
                                        "is singular below 2,048 images: read KID, and compare FIDs only within this "
                                        "table)" if s.small else ""))
                else:
                    notes.append(fid_problem)
            lines += [f"## {heading}", "", _markdown(table), ""]
            section.blocks.append(("table", table))
            note = frame.attrs.get("lpips_notes", {}).get(dataset)
            if note:
                notes.append(note)
            for text in notes:
                lines += [f"_{text}._", ""]
                section.blocks.append(("text", f"_{text}._"))
            comparison = compare_methods(group, key, common, reference, n_resamples)
            if comparison is not None:
                paired, unpaired, k = separation_counts(comparison, group, common)
                totals = [totals[0] + paired, totals[1] + unpaired, totals[2] + k, totals[3] + 1]
                metric_title = metric_info(key).title
                caption = (f"Paired comparison on {metric_title} ({comparison.n_images} images, "
                           f"{comparison.n_resamples:,} bootstrap resamples; {k} comparisons with "
                           f"`{comparison.reference}`, each interval at {100 * comparison.level:.2f} % (Bonferroni)). "
                           f"The paired test separates {paired} of {k}; the unpaired 95 % intervals are disjoint for "
                           f"{unpaired} of {k}.")
                ctable = comparison_table(comparison)
                lines += [f"**{caption}**", "", _markdown(ctable), ""]
                section.blocks += [("heading", "Paired comparison"), ("text", caption), ("table", ctable)]
            data = binned(group, common)
            if data is not None:
                btable = binned_table(data, key, methods)
                caption = (f"By hole size ({metric_info(key).title}; bins of the hole fraction as in LaMa's evaluator, "
                           "a fraction on an edge in the bin above)")
                fig_name = f"figures/holes_{stem}.png"
                hole_size_plot(data, methods, [k for k in ("lpips", "psnr") if k in group], report_dir / fig_name,
                               f"{dataset} · {mask}")
                lines += [f"**{caption}:**", "", _markdown(btable), "",
                          f"![{dataset} · {mask} by hole size]({fig_name})", ""]
                section.blocks += [("heading", "By hole size"), ("text", caption), ("table", btable),
                                   ("figure", report_dir / fig_name)]
            grid_name = f"figures/grid_{stem}.png"
            grid = comparison_grid(results_dir, dataset, mask, methods, report_dir / grid_name)
            if grid is not None:
                lines += [f"![{dataset} · {mask}]({grid_name})", ""]
                section.blocks.append(("figure", grid))
            compute_name = f"figures/compute_{stem}.png"
            if compute_plot(compute_points(group, common.ids, methods), report_dir / compute_name,
                            f"{dataset} · {mask}") is not None:
                lines += [f"![{dataset} · {mask}: quality against compute]({compute_name})", ""]
                section.blocks += [("heading", "Quality against compute"), ("figure", report_dir / compute_name)]
            errors = group[group["status"] == "error"]
            if len(errors):
                failures = []
                for method, errs in errors.groupby("method", sort=False):
                    n_all = group.loc[group["method"] == method, "sample_id"].nunique()
                    what = ("failed on all samples" if method in common.failed_all
                            else f"failed on {errs['sample_id'].nunique()} of {n_all} samples")
                    failures.append(f"`{method}` {what}: {errs['error'].iloc[0]}")
                lines += [f"- {f}" for f in failures] + [""]
                section.blocks.append(("list", failures))
            if html:
                section.viewer = viewer_data(results_dir, group, dataset, mask, methods)
            sections.append(section)
    if totals[3]:
        summary = (f"Over the {totals[3]} tables: the paired test separates {totals[0]} of the {totals[2]} comparisons "
                   f"with each table's reference; the unpaired 95 % intervals are disjoint for {totals[1]} of them.")
        lines[totals_at:totals_at] = [summary, ""]
    outro: list[tuple[str, object]] = []
    studies = sorted(report_dir.glob("*/**/*.md"))  # other suites' leaderboards, sweeps
    figures = sorted(p for p in report_dir.glob("*.png"))
    if studies or figures:
        links = [f"[{p.relative_to(report_dir).parent.as_posix()}: {p.stem}]({p.relative_to(report_dir).as_posix()})"
                 for p in studies]
        links += [f"[{p.stem}]({p.name})" for p in figures]
        links += [f"[{p.stem}]({p.name})" for p in sorted(report_dir.glob("*.md")) if p.name != "LEADERBOARD.md"]
        lines += ["## Studies and figures", ""] + [f"- {link}" for link in links] + [""]
        outro += [("heading", "Studies and figures"), ("list", links)]
    if unavailable:
        seen = {}
        for rec in unavailable:
            seen[rec.method] = rec.reason
        items = [f"`{m}`: {reason}" for m, reason in seen.items()]
        lines += ["## Methods not available in these runs", ""] + [f"- {i}" for i in items] + [""]
        outro += [("heading", "Methods not available in these runs"), ("list", items)]
    out = report_dir / "LEADERBOARD.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, out)
    if html:
        intro = [("text", f"Generated by inpaintbench report from {source}.")]
        intro += _provenance_blocks(provenance)
        intro += [("text", legend), ("text", METHOD_NOTE)]
        if totals[3]:
            intro.append(("text", summary))
        write_html(report_dir / "LEADERBOARD.html", title, intro, sections, outro)
    return out


def _provenance_blocks(lines: list[str]) -> list[tuple[str, object]]:
    """The provenance lines (a markdown table, then sentences) as page blocks."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    blocks: list[tuple[str, object]] = []
    if len(rows) > 2:
        blocks.append(("table", pd.DataFrame(rows[2:], columns=rows[0])))
    blocks += [("text", line) for line in lines if line and not line.startswith("|")]
    return blocks


def _markdown(table: pd.DataFrame) -> str:
    """``DataFrame.to_markdown`` with the pipes inside titles and cells escaped (``known max |Δ|``)."""
    def escape(value):
        return value.replace("|", "\\|") if isinstance(value, str) else value

    return table.rename(columns=escape).map(escape).to_markdown(index=False)


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
