"""The tables of a leaderboard: summary, paired comparison, results by hole size.

Every table is computed on the images all its methods completed
(:func:`~inpaintbench.report.statistics.common_samples`) and with the summary rules of
:mod:`inpaintbench.report.statistics` (PSNR of the mean MSE for dB metrics).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from inpaintbench.metrics.table import METRICS
from inpaintbench.report.statistics import (
    N_RESAMPLES,
    CommonSet,
    Comparison,
    common_samples,
    format_interval,
    format_value,
    paired_comparison,
    summary_interval,
    summary_value,
    unpaired_disjoint,
    value_matrix,
)

if TYPE_CHECKING:  # the table builders import pandas when they run: importing this module needs none
    import pandas as pd

#: (record key, column title, higher is better), from the one metric table in
#: :mod:`inpaintbench.metrics`.
COLUMNS: tuple[tuple[str, str, bool], ...] = tuple(
    (m.name, f"{m.title}{' (raw)' if m.output == 'raw' else ''} {m.arrow}", m.higher_is_better) for m in METRICS)

#: Hole-fraction bins, as LaMa's evaluator makes them (``np.linspace(0, 1, bins + 1)``, a
#: fraction on an edge goes to the bin above it, 100 % to the last bin).
HOLE_BIN_EDGES = np.linspace(0.0, 1.0, 11)


def ranking_metric(group: pd.DataFrame) -> str:
    """The metric a table is sorted and compared by: LPIPS when measured, else PSNR."""
    ok = group[group["status"] == "ok"]
    return "lpips" if "lpips" in ok and ok["lpips"].notna().any() else "psnr"


def _ok_on(group: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    ok = group[group["status"] == "ok"]
    return ok[ok["sample_id"].astype(str).isin(set(ids))]


def summary_table(frame: pd.DataFrame, common: CommonSet | None = None) -> pd.DataFrame:
    """One row per method of one (task, dataset, condition) group, on the images every method
    completed: summaries with 95 % intervals, cost, errors. Methods that failed on every
    image are left out (see :meth:`CommonSet.note`)."""
    import pandas as pd

    common = common or common_samples(frame)
    key = ranking_metric(frame)
    rows = []
    for method, group in frame.groupby("method", sort=False):
        if method in common.failed_all:
            continue
        ok = _ok_on(group, common.ids)
        row = {"method": method}
        for name, title, _ in COLUMNS:
            row[title] = format_interval(*summary_interval(ok[name], name), name) if name in ok else "–"
        row["time / image (ms)"] = f"{1000 * ok['time_s'].mean():.1f}" if len(ok) else "–"
        row["NFE"] = f"{ok['nfe'].mean():.3g}" if "nfe" in ok and ok["nfe"].notna().any() else "–"
        calls = ok["inner_calls"] if "inner_calls" in ok else pd.Series(dtype=float)
        row["inner calls"] = f"{calls.mean():.1f}" if calls.notna().any() else "–"
        if "peak_memory_bytes" in ok and ok["peak_memory_bytes"].notna().any():
            row["peak GPU MB"] = f"{ok['peak_memory_bytes'].max() / 2**20:.0f}"
        row["n"] = len(ok)
        row["errors"] = int((group["status"] == "error").sum())
        value = summary_value(ok[key], key) if key in ok else math.nan
        row["_sort"] = value if key == "lpips" else -value
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["method"])
    table = pd.DataFrame(rows).sort_values("_sort", na_position="last", kind="stable").drop(columns="_sort")
    # Columns no method has (known-region change in super-resolution, LPIPS without weights).
    empty = [c for c in table if (table[c].astype(str) == "–").all()]
    return table.drop(columns=empty).reset_index(drop=True)


def compare_methods(frame: pd.DataFrame, key: str, common: CommonSet | None = None, reference: str | None = None,
                    n_resamples: int = N_RESAMPLES, seed: int = 0) -> Comparison | None:
    """The paired comparison of a table on metric ``key`` (None with fewer than 2 methods or
    images). A ``reference`` not in this table falls back to the best."""
    common = common or common_samples(frame)
    methods = [m for m in dict.fromkeys(frame["method"]) if m not in common.failed_all]
    if key not in frame or len(methods) < 2 or len(common.ids) < 2:
        return None
    values = value_matrix(frame, key, common.ids, methods)
    values = values.dropna(axis=1, how="all")
    if values.shape[1] < 2 or values.isna().any().any():
        return None
    return paired_comparison(values, key, reference if reference in values.columns else None,
                             n_resamples=n_resamples, seed=seed)


def comparison_table(comparison: Comparison) -> pd.DataFrame:
    """The paired comparison as a table: method, summary, Δ [corrected CI], verdict, rank [CI]."""
    import pandas as pd

    key = comparison.metric
    ref = comparison.reference
    rows = []
    for row in comparison.rows.itertuples():
        if row.method == ref:
            delta, verdict = "(reference)", "best" if comparison.reference_is_best else "reference"
        else:
            mark = " *" if row.significant else ""
            delta = f"{row.diff:+.{_digits(key)}f} [{row.low:+.{_digits(key)}f}, {row.high:+.{_digits(key)}f}]{mark}"
            better = (row.diff > 0) == _higher(key)
            verdict = ("tied with best" if comparison.reference_is_best else "tied with reference") if row.tied \
                else ("better" if better else "worse")
        rank = f"{row.rank} [{_int(row.rank_low)}–{_int(row.rank_high)}]"
        rows.append({"method": row.method, _title(key): format_value(row.value, key),
                     f"Δ vs {ref}": delta, "verdict": verdict, "rank [95 % CI]": rank})
    return pd.DataFrame(rows)


def separation_counts(comparison: Comparison, frame: pd.DataFrame, common: CommonSet) -> tuple[int, int, int]:
    """``(paired separated, unpaired intervals disjoint, comparisons)`` against the reference."""
    values = value_matrix(frame, comparison.metric, common.ids, list(comparison.rows["method"]))
    ref = comparison.reference
    others = comparison.rows[comparison.rows["method"] != ref]
    paired = int(others["significant"].sum())
    unpaired = sum(unpaired_disjoint(values, comparison.metric, m, ref) for m in others["method"])
    return paired, int(unpaired), len(others)


def hole_bin_labels() -> list[str]:
    """``["0-10%", "10-20%", ..., "90-100%"]``."""
    edges = np.round(100 * HOLE_BIN_EDGES).astype(int)
    return [f"{a}-{b}%" for a, b in zip(edges[:-1], edges[1:])]


def hole_bin(fraction: pd.Series | np.ndarray) -> np.ndarray:
    """The bin index of each hole fraction (LaMa's rule: ``searchsorted(side="right") - 1``,
    1.0 into the last bin; NaN gives -1)."""
    fraction = np.asarray(fraction, dtype=float)
    index = np.searchsorted(HOLE_BIN_EDGES, fraction, side="right") - 1
    index = np.clip(index, 0, len(HOLE_BIN_EDGES) - 2)
    return np.where(np.isnan(fraction), -1, index)


def binned(frame: pd.DataFrame, common: CommonSet | None = None) -> pd.DataFrame | None:
    """Ok records of the common images with a ``hole_bin`` column, or None when the images
    fall into fewer than two bins (a fixed-size mask has nothing to show by hole size)."""
    common = common or common_samples(frame)
    if "hole_fraction" not in frame:
        return None
    ok = _ok_on(frame, common.ids)
    ok = ok[ok["hole_fraction"].notna()].copy()
    if ok.empty:
        return None
    ok["hole_bin"] = hole_bin(ok["hole_fraction"])
    return ok if ok["hole_bin"].nunique() >= 2 else None


def binned_table(data: pd.DataFrame, key: str, methods: list[str]) -> pd.DataFrame:
    """Metric ``key`` per method (rows, in ``methods`` order) and hole-size bin (columns,
    titled with the bin and its image count)."""
    import pandas as pd

    labels = hole_bin_labels()
    present = sorted(int(b) for b in data["hole_bin"].unique() if b >= 0)
    counts = data.groupby("hole_bin")["sample_id"].nunique()
    rows = []
    for method in methods:
        mine = data[data["method"] == method]
        row = {"method": method}
        for b in present:
            row[f"{labels[b]} (n={counts[b]})"] = format_value(summary_value(mine.loc[mine["hole_bin"] == b, key], key), key)
        rows.append(row)
    return pd.DataFrame(rows)


def _title(key: str) -> str:
    return next(t for k, t, _ in COLUMNS if k == key)


def _digits(key: str) -> int:
    return next(m.digits for m in METRICS if m.name == key)


def _higher(key: str) -> bool:
    return next(m.higher_is_better for m in METRICS if m.name == key)


def _int(value: float) -> str:
    return "–" if value is None or math.isnan(value) else str(int(value))
