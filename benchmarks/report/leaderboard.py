"""The leaderboard: one :class:`~inpaintbench.report.document.Document` built from results files
(nothing is recomputed), rendered to ``LEADERBOARD.md`` and ``LEADERBOARD.html``; and the
comparison grids of saved examples."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
# pandas stays a module import: every leaderboard builds frames (its records, its tables), so
# deferring it saves nothing. Matplotlib is imported by the plotting functions alone.
import pandas as pd

from inpaintbench.core.errors import InputError
from inpaintbench.core.io import atomic_write_text
from inpaintbench.metrics.fid import FIDScorer, FIDUnavailable, SetScore
from inpaintbench.metrics.table import SET_METRICS, metric_info
from inpaintbench.report.document import Block, BulletList, Details, Document, Figure, Heading, Section, Table, Text
from inpaintbench.report.fid_scores import SCORES_FILE, score_outputs
from inpaintbench.report.glance import Answer, answer_of, answer_text, glance_blocks, unanswered
from inpaintbench.report.html import render_html, viewer_data
from inpaintbench.report.markdown import render_markdown
from inpaintbench.report.plots import compose_grid, compute_plot, compute_points, hole_size_plot, save_png
from inpaintbench.report.statistics import (  # noqa: F401 - mean_ci: re-exported
    INFINITE_PSNR_NOTE,
    METHOD_NOTE,
    N_RESAMPLES,
    EVERY_IMAGE_EXACT,
    NO_UPPER_END,
    CommonSet,
    common_samples,
    mean_ci,
    summary_value,
)
from inpaintbench.report.tables import (
    binned,
    binned_table,
    compare_methods,
    comparison_table,
    ranking_metric,
    separation_counts,
    summary_table,
)
from inpaintbench.store.artifacts import example_path, load_examples, originals_path, safe_name
from inpaintbench.store.folder import ResultsFolder
from inpaintbench.store.records import RunRecord
from inpaintbench.store.results import LoadedRecords, harness_share, load_records

#: The intro paragraph that says how to read every table.
LEGEND = ("Quality metrics (PSNR, SSIM, LPIPS, hole PSNR) are computed per image on the composited output "
          "(known pixels pasted back); ± is the 95 % confidence interval (Student t). PSNR and hole PSNR of a set "
          "are the PSNR of its mean MSE, with exact reconstructions (inf dB) counted as MSE 0: nothing is dropped, "
          "and the interval [low, high] is the one of the mean MSE in dB. Known-region change and the boundary "
          "band (pixels within the run's band width of a hole's edge, both sides) are measured on the raw output: "
          "how much a method altered pixels it was given. Time is wall-clock per image of the method call alone "
          "(batched; after a warm-up call; CUDA synchronized). NFE = network evaluations per image. Rows are "
          "sorted by LPIPS (or PSNR without it). Each table also has a paired comparison, results by hole size "
          "when its holes vary, and quality against compute.")


def comparison_grid(results_dir: Path, dataset: str, mask: str, methods: list[str], out_path: Path,
                    max_rows: int = 6) -> Path | None:
    """Write the comparison grid of one table's saved examples as a PNG; None if none were saved.

    Columns: original | mask (white = known, black = hole) | masked input (hole black) | each
    method of ``methods`` that saved examples, in that order (the leaderboard passes one order
    for all its tables: :func:`display_order`); rows: the first ``max_rows``
    saved sample ids, labelled. An image a method has no output for is an empty grey tile. The
    picture is composed by :func:`inpaintbench.report.plots.compose_grid`: each image
    upscaled by an integer factor, nearest neighbour, so every tile holds the saved pixels.

    Args:
        results_dir: the folder of the results file (its ``examples/`` were saved by the run).
        dataset, mask: the table's dataset and condition labels.
        methods: method labels, in the order of the columns.
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
                      fid_weights: str | None = None, html: bool = True, n_resamples: int = N_RESAMPLES,
                      records: LoadedRecords | None = None) -> Path:
    """Regenerate ``report_dir/LEADERBOARD.md`` and ``LEADERBOARD.html`` (and their figures)
    from results files; returns the markdown's path.

    Nothing is recomputed: tables come from the records, grids and the per-sample view from
    the examples each run saved beside its results file. FID/KID columns appear when a run
    kept every composited output (suite option ``fid = true``); their Inception features are
    cached beside the outputs. The report is built once as a document and rendered twice. Its
    first screen is the answer of every table (best and tied, :mod:`inpaintbench.report.glance`);
    the explanations are folded below it.

    Args:
        reference: compare every method with this one instead of each table's best.
        fid_weights: the FID Inception file (else ``$INPAINTBENCH_FID_WEIGHTS``, else the
            original's download).
        html: also write the browsable page.
        n_resamples: bootstrap resamples of the paired comparisons.
        records: what :func:`~inpaintbench.store.results.load_records` returned for
            ``results_paths``, when the caller has read them already (the command that also
            writes the orderings or budgets pages reads them once).
    """
    frame, runs, unavailable = load_records(results_paths) if records is None else records
    if reference is not None and not frame.empty and reference not in set(frame["method"]):
        raise InputError(f"--reference {reference!r} is in none of the tables; their methods: "
                         f"{', '.join(sorted(set(frame['method'])))}")
    report_dir.mkdir(parents=True, exist_ok=True)
    context = _Context(report_dir, results_paths, reference, n_resamples, html,
                       frame.attrs.get("lpips_notes", {}), _FidScoring(fid_weights),
                       [] if frame.empty else display_order(frame))
    built = [] if frame.empty else [_table_section(context, *labels, group) for labels, group
                                     in frame.groupby(["task", "dataset", "mask"], sort=False)]
    document = Document(
        title=_title(runs),
        answer=glance_blocks([b.answer for b in built if b.answer is not None]),
        origin=(f"Generated by `inpaintbench report` from "
                f"{', '.join(f'`{_rel(p, report_dir)}`' for p in results_paths)}. Do not edit by hand."),
        intro=_intro(runs, [b.separation for b in built if b.separation is not None], no_results=frame.empty),
        sections=[b.section for b in built],
        outro=_outro(report_dir, frame.attrs.get("units", []), unavailable),  # after the figures are written
        companion="LEADERBOARD.html" if html else None)
    out = report_dir / "LEADERBOARD.md"
    atomic_write_text(out, render_markdown(document, report_dir))
    if html:
        atomic_write_text(report_dir / "LEADERBOARD.html", render_html(document, report_dir))
    return out


def display_order(frame: pd.DataFrame) -> list[str]:
    """Every method label of the records in the order it first appears (the suite's order): the
    one column order of every table's grid and per-sample view, whatever each table's ranking."""
    return list(dict.fromkeys(frame["method"]))


class _Separation(NamedTuple):
    """One table's paired comparison, counted: separated pairs, disjoint unpaired intervals, comparisons."""

    paired: int
    unpaired: int
    comparisons: int


@dataclass
class _FidScoring:
    """FID/KID columns of the tables whose runs kept their outputs, with one Inception network for
    the whole report (built at the first such table; its failure is each such table's note)."""

    weights: str | None
    scorer: FIDScorer | None = None
    problem: str | None = None

    def columns(self, results_dir: Path, dataset: str, mask: str, group: pd.DataFrame, methods: list[str],
                ids: list[str]) -> tuple[dict[str, list[str]], str | None]:
        """``({"FID ↓": cells, "KID ↓": cells, ...}, note)`` of one table (cells in ``methods`` order,
        "–" where a method kept no outputs); ``({}, None)`` when no outputs were kept or remembered."""
        if not methods or not (originals_path(results_dir, dataset).exists() or (results_dir / SCORES_FILE).exists()):
            return {}, None
        if self.scorer is None and self.problem is None:
            try:
                self.scorer = FIDScorer(self.weights)
            except FIDUnavailable as err:
                self.problem = str(err)
        if self.scorer is None:
            return {}, self.problem
        records = {m: rows for m, rows in group.groupby("method", sort=False) if m in methods}
        scores, remembered = score_outputs(self.scorer, results_dir, dataset, mask, records, ids)
        if not scores:
            return {}, None
        note = _fid_note(self.scorer.source, next(iter(scores.values())))
        if remembered:
            note += (f"; the scores of {len(remembered)} of these sets are those remembered in `{SCORES_FILE}` for "
                     "exactly these records (their kept outputs are not in this folder: rerun the suite to keep them)")
        return _set_columns(scores, methods), note


def _set_columns(scores: dict[str, SetScore], methods: list[str]) -> dict[str, list[str]]:
    """``{"FID ↓": cells, "KID ↓": cells, "P-IDS ↑": ..., "U-IDS ↑": ...}`` from the set-metric
    table, in ``methods`` order, "–" where a method has no value; a column no method has is left out."""
    columns = {}
    for metric in SET_METRICS:
        cells = []
        for method in methods:
            value = scores[method].value(metric.name) if method in scores else None
            cell = "–" if value is None else f"{value:.{metric.digits}f}"
            if metric.name == "kid" and value is not None:
                cell += f" ± {scores[method].kid_std:.{metric.digits}f}"
            cells.append(cell)
        if any(cell != "–" for cell in cells):
            columns[f"{metric.title} {metric.arrow}"] = cells
    return columns


def _fid_note(source: str, score: SetScore) -> str:
    """What the FID/KID (and P-IDS/U-IDS) columns are, and whether there are enough images to read them."""
    note = (f"FID/KID on the 2015-12-05 Inception ({source}), composited outputs against the originals of the "
            f"same {score.n} images; KID: mean ± standard deviation over 100 subsets of {score.kid_subset_size} "
            "images; KID is an unbiased estimate, so it can be slightly negative when the true distance is "
            "below its sampling noise (read it as 0: the sets are not told apart)"
            + (f"; {score.n} images are too few for FID to be meaningful (its 2048x2048 covariance is "
                        "singular below 2,048 images: read KID, and compare FIDs only within this table)"
                        if score.small else ""))
    if score.ids is not None:
        note += ("; P-IDS/U-IDS: a linear SVM (MAT's settings) on the same features, each output paired with its "
                 "own original by sample id" + ("" if score.ids.converged else
                                                 " (the SVM did not converge in 1,000 iterations, as can happen in MAT)"))
    elif score.ids_reason:
        note += f"; {score.ids_reason}"
    return note


@dataclass
class _Context:
    """What every table section of one report needs."""

    report_dir: Path
    results_paths: list[Path]
    reference: str | None
    n_resamples: int
    html: bool
    lpips_notes: dict[str, str]
    fid: _FidScoring
    order: list[str]


class _Built(NamedTuple):
    """One table's section, its paired comparison's counts and its first-screen answer."""

    section: Section
    separation: _Separation | None
    answer: Answer | None


def _table_section(context: _Context, task: str, dataset: str, mask: str, group: pd.DataFrame) -> _Built:
    """The section of one (task, dataset, condition) table, its paired comparison's counts and answer.

    Order: the answer (best and tied), the summary table (FID/KID columns when outputs were
    kept), its notes, the paired comparison, results by hole size, the comparison grid, quality
    against compute, failures.
    """
    results_dir = _results_dir_of(group, context.results_paths)
    common = common_samples(group)
    table = summary_table(group, common)
    if task == "super-resolution":  # the whole image is the "hole": hole PSNR = PSNR
        table = table.drop(columns=["hole PSNR ↑"], errors="ignore")
    methods = list(table["method"])
    key = ranking_metric(group)
    fid_columns, fid_note = context.fid.columns(results_dir, dataset, mask, group, methods, common.ids)
    infinite = table.map(lambda c: isinstance(c, str) and (NO_UPPER_END in c or EVERY_IMAGE_EXACT in c))
    notes = [note for note in (common.note(), fid_note, context.lpips_notes.get(dataset),
                               INFINITE_PSNR_NOTE if infinite.any().any() else None) if note]
    section = Section(safe_name(f"{task}_{dataset}_{mask}"), f"{task}: {dataset} · {mask}")
    paired, separation, answer = _paired_blocks(group, key, common, context, section.title, table)
    section.blocks = ([Text(answer_text(answer))] if answer else []) + [Table(table.assign(**fid_columns))]
    section.blocks += [Text(f"_{note}._") for note in notes]
    figures = context.report_dir / "figures"
    stem = f"{safe_name(task)}_{safe_name(dataset)}_{safe_name(mask)}"
    label = f"{dataset} · {mask}"
    section.blocks += paired + _hole_size_blocks(group, key, common, methods, figures / f"holes_{stem}.png", label)
    shown = [m for m in context.order if m in methods]  # one column order for every table
    grid = comparison_grid(results_dir, dataset, mask, shown, figures / f"grid_{stem}.png")
    if grid is not None:
        section.blocks.append(Figure(grid, label))
    compute = compute_plot(compute_points(group, common.ids, methods), figures / f"compute_{stem}.png", label)
    if compute is not None:
        section.blocks.append(Figure(compute, f"{label}: quality against compute", title="Quality against compute"))
    section.blocks += _failure_blocks(group, common)
    if context.html:
        section.viewer = viewer_data(results_dir, group, dataset, mask, shown)
    return _Built(section, separation, answer)


def _paired_blocks(group: pd.DataFrame, key: str, common: CommonSet, context: _Context, title: str,
                   table: pd.DataFrame) -> tuple[list[Block], _Separation | None, Answer | None]:
    """The paired comparison's captioned table, its counts and the table's answer (no table and
    no counts with < 2 methods or images; the answer then names the top row and why)."""
    comparison = compare_methods(group, key, common, context.reference, context.n_resamples)
    if comparison is None:
        return [], None, _unanswered(title, key, group, common, table)
    # The answer is always against the best: with a chosen reference, the same seeded resamples again.
    best = comparison if comparison.reference_is_best else compare_methods(group, key, common, None,
                                                                         context.n_resamples)
    answer = answer_of(title, best)
    separation = _Separation(*separation_counts(comparison, group, common))
    paired, unpaired, k = separation
    caption = (f"Paired comparison on {metric_info(key).title} ({comparison.n_images} images, "
               f"{comparison.n_resamples:,} bootstrap resamples; {k} comparisons with "
               f"`{comparison.reference}`, each interval at {100 * comparison.level:.2f} % (Bonferroni)). "
               f"The paired test separates {paired} of {k}; the unpaired 95 % intervals are disjoint for "
               f"{unpaired} of {k}.")
    return [Table(comparison_table(comparison), title="Paired comparison", caption=caption)], separation, answer


def _unanswered(title: str, key: str, group: pd.DataFrame, common: CommonSet, table: pd.DataFrame) -> Answer | None:
    """The answer of a table the bootstrap cannot compare: its top row, and why (None: no rows)."""
    if table.empty or key not in group:
        return None
    best = str(table["method"].iloc[0])
    ok = group[(group["status"] == "ok") & (group["method"] == best) & group["sample_id"].astype(str).isin(common.ids)]
    reason = "the only method" if len(table) < 2 else f"{len(common.ids)} image(s) in common: too few to compare"
    return unanswered(title, key, best, summary_value(ok[key], key), reason)


def _hole_size_blocks(group: pd.DataFrame, key: str, common: CommonSet, methods: list[str], figure: Path,
                      label: str) -> list[Block]:
    """Results by hole-size bin, a table and its plot (written to ``figure``); nothing when the
    table's holes do not vary."""
    data = binned(group, common)
    if data is None:
        return []
    caption = (f"By hole size ({metric_info(key).title}; bins of the hole fraction as in LaMa's evaluator, "
               "a fraction on an edge in the bin above):")
    hole_size_plot(data, methods, [k for k in ("lpips", "psnr") if k in group], figure, label)
    return [Table(binned_table(data, key, methods), title="By hole size", caption=caption),
            Figure(figure, f"{label} by hole size")]


def _failure_blocks(group: pd.DataFrame, common: CommonSet) -> list[Block]:
    """One list item per method that failed on some samples: how many, and its first error."""
    errors = group[group["status"] == "error"]
    failures = []
    for method, errs in errors.groupby("method", sort=False):
        n_all = group.loc[group["method"] == method, "sample_id"].nunique()
        what = ("failed on all samples" if method in common.failed_all
                else f"failed on {errs['sample_id'].nunique()} of {n_all} samples")
        failures.append(f"`{method}` {what}: {errs['error'].iloc[0]}")
    return [BulletList(tuple(failures))] if failures else []


def _title(runs: list[RunRecord]) -> str:
    suites = sorted({r.suite for r in runs} - {""})
    return "inpaintbench leaderboard" + (f": suite {', '.join(suites)}" if suites else "")


def _intro(runs: list[RunRecord], separations: list[_Separation], *, no_results: bool) -> list[Block]:
    """Folded: the provenance, then the legend, the statistics note and the separation counts
    over all tables (the first screen is the answer)."""
    blocks: list[Block] = []
    provenance = _provenance(runs)
    if provenance:
        blocks.append(Details("Runs, library versions and commands", tuple(provenance)))
    reading: list[Block] = [Text(LEGEND), Text(METHOD_NOTE)]
    if separations:
        paired, unpaired, k = (sum(column) for column in zip(*separations))
        reading.append(Text(f"Over the {len(separations)} tables: the paired test separates {paired} of the {k} "
                            f"comparisons with each table's reference; the unpaired 95 % intervals are disjoint "
                            f"for {unpaired} of them."))
    blocks.append(Details("How to read these tables (metrics, intervals, the paired comparison)", tuple(reading)))
    if no_results:
        blocks.append(Text("_No results yet._"))
    return blocks


def _outro(report_dir: Path, units: list, unavailable: list) -> list[Block]:
    """Links to the other studies and figures of the folder, the wall-time table, methods not available."""
    blocks: list[Block] = []
    studies = sorted(report_dir.glob("*/**/*.md"))  # other suites' leaderboards, sweeps
    figures = sorted(report_dir.glob("*.png"))
    if studies or figures:
        links = [f"[{p.relative_to(report_dir).parent.as_posix()}: {p.stem}]({p.relative_to(report_dir).as_posix()})"
                 for p in studies]
        links += [f"[{p.stem}]({p.name})" for p in figures]
        links += [f"[{p.stem}]({p.name})" for p in sorted(report_dir.glob("*.md")) if p.name != "LEADERBOARD.md"]
        blocks += [Heading("Studies and figures"), BulletList(tuple(links))]
    wall = _wall_time_table(units)
    if wall is not None:
        blocks += [Heading("Where the wall time went"),
                   Text("Where each method's wall time went (unit records): its timed calls, its warm-up calls "
                        "(once per process and image shape) and the harness (reading images, masks, metrics, "
                        "records, examples, heat maps)."), Table(wall)]
    if unavailable:
        reasons = {rec.method: rec.reason for rec in unavailable}  # the last reason of each method
        blocks += [Heading("Methods not available in these runs"),
                   BulletList(tuple(f"`{m}`: {reason}" for m, reason in reasons.items()))]
    return blocks


def _wall_time_table(units: list) -> pd.DataFrame | None:
    """The harness-share table of the report (None without timed unit records)."""
    shares = harness_share(units)
    if shares.empty:
        return None
    return pd.DataFrame({
        "method": shares["method"], "units": shares["units"],
        "wall s": shares["wall_s"].map("{:.2f}".format), "calls s": shares["method_s"].map("{:.2f}".format),
        "warm-up s": shares["warmup_s"].map("{:.2f}".format),
        "harness s": shares["harness_s"].map("{:.2f}".format),
        "harness share": shares["harness_share"].map("{:.1%}".format)})


def _rel(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:
        return str(path)


def _results_dir_of(group: pd.DataFrame, results_paths: list[Path]) -> Path:
    # Examples live beside the results file; with several files, the first that has them wins.
    for path in results_paths:
        root = ResultsFolder(path).root
        if example_path(root, group["dataset"].iloc[0], group["mask"].iloc[0], "_input").exists():
            return root
    return ResultsFolder(results_paths[0]).root


def _provenance(runs: list[RunRecord]) -> list[Block]:
    """The last 8 runs as a table, then the library versions and the LPIPS backbone of the latest."""
    if not runs:
        return []
    rows = []
    for run in runs[-8:]:
        resumed = f", resumed after {run.resumed} records" if run.resumed else ""
        cells = [f"{run.run_id} ({run.started}{resumed})", run.suite, run.device_name or run.device,
                 str(run.git_commit)[:12], run.versions.get("torch", ""), run.torch_threads, f"`{run.command}`"]
        rows.append([str(cell) for cell in cells])  # as written, whatever the types (no NaN for a None)
    table = pd.DataFrame(rows, columns=["run", "suite", "device", "commit", "torch", "threads", "command"])
    last = runs[-1]
    lines = [f"Library versions (latest run): {', '.join(f'{k} {v}' for k, v in last.versions.items())}."]
    lp = last.lpips
    if lp:
        lines.append(f"LPIPS ({lp.get('net')}): " + (f"pretrained backbone from {lp.get('source')}."
                     if lp.get("available") else f"unavailable, not reported: {lp.get('reason')}"))
    return [Table(table, compact=True), Text("\n".join(lines))]
