"""Methods compared at equal compute: paired tables per network-evaluation budget, and a pick.

A study of samplers at matched budgets labels each entry ``name@NFE`` (``ddnm@100``: DDNM at
about 100 network evaluations per image, see ``benchmarks/suites/solvers.toml``). This page
groups a results frame by that budget:

* one table per (dataset, mask, budget): every method of the budget on the images all of them
  completed, with the NFE and vector-Jacobian products it really recorded, its time per image,
  its LPIPS (the primary metric) and PSNR, and the paired bootstrap of
  :mod:`inpaintbench.report.statistics` against the budget's best (Bonferroni-corrected within
  the table): a method whose interval contains zero is *tied* with the best;
* a pick per budget, from the data alone: for each mask the best and those tied with it; the
  method best or tied on the most masks is the recommendation (ties: lower mean rank).

Labels without an ``@NFE`` suffix (a plain baseline) are left out of this page; the
leaderboard shows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inpaintbench.core.errors import InputError
from inpaintbench.report.markdown import grid_table
from inpaintbench.report.statistics import (
    LEVEL,
    N_RESAMPLES,
    common_samples,
    format_value,
    paired_comparison,
    value_matrix,
)

if TYPE_CHECKING:
    import pandas as pd

#: ``name@NFE``: the budget a label was configured for.
BUDGET_LABEL = re.compile(r"^(?P<name>.+)@(?P<nfe>\d+)$")
#: The metric a budget's methods are ranked and picked by, and the one shown beside it.
PRIMARY, SECONDARY = "lpips", "psnr"


def budget_of(label: str) -> tuple[str, int] | None:
    """``("ddnm", 100)`` for ``"ddnm@100"``; None for a label without a budget suffix."""
    match = BUDGET_LABEL.match(label)
    return (match["name"], int(match["nfe"])) if match else None


@dataclass
class BudgetTable:
    """One (dataset, mask, budget) comparison.

    ``rows``: one per method, best first (``method``, ``nfe``, ``vjp``, ``time_ms``, the primary
    summary and its difference to the best with the corrected interval, ``tied``, the secondary
    summary, ``rank``). ``best``: the label of the best; ``tied``: labels tied with it (best
    included); ``n_images``: the common images.
    """

    dataset: str
    mask: str
    budget: int
    n_images: int
    rows: pd.DataFrame
    best: str
    tied: list[str]
    note: str


def _mean(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].mean()) if column in frame and frame[column].notna().any() else float("nan")


def budget_tables(frame: pd.DataFrame, metric: str = PRIMARY) -> list[BudgetTable]:
    """Every (dataset, mask, budget) table of ``frame`` (records of :func:`load_records`).

    Args:
        frame: sample records, one row per (method label, dataset, mask, sample id).
        metric: the metric methods are compared by (its direction from the metric table).

    Returns:
        the tables in (dataset, mask, budget) order; a budget with fewer than two methods or
        fewer than two common images is left out.
    """
    import pandas as pd

    if metric not in frame:
        raise InputError(f"the results have no {metric!r} values; the budget comparison needs them "
                         "(LPIPS: pass --lpips-weights to the run)")
    frame = frame.assign(budget=[(budget_of(m) or (None, None))[1] for m in frame["method"]])
    frame = frame[frame["budget"].notna()]
    tables = []
    for (dataset, mask, budget), group in frame.groupby(["dataset", "mask", "budget"], sort=True):
        common = common_samples(group)
        methods = [m for m in dict.fromkeys(group["method"]) if m not in common.failed_all]
        if len(methods) < 2 or len(common.ids) < 2:
            continue
        values = value_matrix(group, metric, common.ids, methods)
        comparison = paired_comparison(values, metric)
        second = value_matrix(group, SECONDARY, common.ids, methods) if SECONDARY in group else None
        ok = group[(group["status"] == "ok") & group["sample_id"].astype(str).isin(common.ids)]
        rows = []
        for row in comparison.rows.itertuples():
            mine = ok[ok["method"] == row.method]
            rows.append({"method": row.method, "nfe": _mean(mine, "nfe"), "vjp": _mean(mine, "vjp"),
                         "time_ms": 1000 * _mean(mine, "time_s"), metric: row.value, "diff": row.diff,
                         "low": row.low, "high": row.high, "tied": bool(row.tied), "rank": int(row.rank),
                         SECONDARY: (_summary(second[row.method].to_numpy(float)) if second is not None
                                     else float("nan"))})
        table = pd.DataFrame(rows)
        tied = [r["method"] for r in rows if r["tied"]]
        tables.append(BudgetTable(str(dataset), str(mask), int(budget), len(common.ids), table,
                                  comparison.reference, tied, common.note()))
    return tables


def _summary(values: np.ndarray) -> float:
    from inpaintbench.report.statistics import summary_value

    return summary_value(values, SECONDARY)


@dataclass
class Pick:
    """The recommendation at one budget: ``method`` best or tied on ``wins`` of ``n_masks``
    masks (``per_mask``: mask -> best and tied labels), ``mean_rank`` over those masks."""

    budget: int
    dataset: str
    method: str
    wins: int
    n_masks: int
    mean_rank: float
    per_mask: dict[str, list[str]]


def picks(tables: list[BudgetTable]) -> list[Pick]:
    """The method to pick per (dataset, budget), from :func:`budget_tables` (see the module doc)."""
    by_budget: dict[tuple[str, int], list[BudgetTable]] = {}
    for table in tables:
        by_budget.setdefault((table.dataset, table.budget), []).append(table)
    result = []
    for (dataset, budget), group in sorted(by_budget.items()):
        wins: dict[str, int] = {}
        ranks: dict[str, list[int]] = {}
        for table in group:
            for row in table.rows.itertuples():
                ranks.setdefault(row.method, []).append(row.rank)
                wins[row.method] = wins.get(row.method, 0) + int(row.tied)
        method = min(wins, key=lambda m: (-wins[m], float(np.mean(ranks[m])), m))
        result.append(Pick(budget, dataset, method, wins[method], len(group), float(np.mean(ranks[method])),
                           {t.mask: t.tied for t in group}))
    return result


def _table_markdown(table: BudgetTable, metric: str) -> str:
    import pandas as pd

    shown = []
    for row in table.rows.itertuples():
        diff = "best" if row.method == table.best else (
            f"{format_value(row.diff, metric)} [{format_value(row.low, metric)}, {format_value(row.high, metric)}]"
            + ("" if row.tied else " *"))
        shown.append({"method": f"`{row.method}`", "NFE": f"{row.nfe:.0f}",
                      "VJP": "–" if np.isnan(row.vjp) else f"{row.vjp:.0f}",
                      "ms / image": f"{row.time_ms:.0f}", metric.upper(): format_value(getattr(row, metric), metric),
                      f"Δ {metric.upper()} to best": diff, SECONDARY.upper(): format_value(getattr(row, SECONDARY),
                                                                                        SECONDARY),
                      "tied with best": "yes" if row.tied else ""})
    return grid_table(pd.DataFrame(shown))


def budgets_markdown(frame: pd.DataFrame, title: str, command: str, metric: str = PRIMARY) -> str:
    """The BUDGETS page: the pick per budget first, then every (dataset, mask, budget) table."""
    tables = budget_tables(frame, metric)
    if not tables:
        raise InputError("no label of the results has an @NFE budget suffix (e.g. ddnm@100) with two or more "
                         "methods; the budget page compares methods at equal network evaluations")
    lines = [f"# {title}", "", f"Generated by `{command}`. Do not edit by hand.", ""]
    lines += ["## Which method at which budget", ""]
    for pick in picks(tables):
        masks = "; ".join(f"{mask}: " + ", ".join(f"`{m}`" for m in tied) for mask, tied in pick.per_mask.items())
        lines.append(f"- **about {pick.budget} NFE** ({pick.dataset}): `{pick.method}`, best or tied with the best "
                     f"on {metric.upper()} on {pick.wins} of {pick.n_masks} masks (mean rank {pick.mean_rank:.1f}). "
                     f"Best and tied per mask: {masks}.")
    lines += ["", "<details><summary>How to read these tables</summary>", "",
              f"Methods are grouped by the budget their label names (`name@NFE`). NFE and VJP are the network "
              f"evaluations and vector-Jacobian products each method recorded per image (a VJP costs about one "
              f"more evaluation and keeps the activations), ms / image its time per image. Each table compares "
              f"its methods on the images all of them completed: Δ is the difference to the table's best in "
              f"{metric.upper()} with its paired-bootstrap interval ({N_RESAMPLES:,} seeded resamples over "
              f"images, Bonferroni-corrected within the table, {100 * LEVEL:.0f} % together); `*` marks an "
              f"interval that excludes zero, *tied* rows include it. The pick per budget is the method best or "
              f"tied with the best on the most masks (ties broken by the mean rank).", "", "</details>", ""]
    for table in tables:
        lines += [f"## {table.dataset} · {table.mask} · about {table.budget} NFE", "",
                  f"{table.n_images} images; best `{table.best}`" + (f"; {table.note}" if table.note else "") + ".",
                  "", _table_markdown(table, metric), ""]
    return "\n".join(lines)

