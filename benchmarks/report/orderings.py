"""Published orderings checked on our own results: "method A beats method B on this metric".

A claims file (TOML) lists the orderings a paper reports::

    [[claims]]
    title = "RePaint beats LaMa on super-resolve 2x"
    source = "RePaint, Table 1 (CelebA-HQ, LPIPS): 0.029 vs 0.177"
    dataset = "celeba-val"          # the results' dataset label
    mask = "super-resolve"          # the condition label (mask family or x<scale>)
    metric = "lpips"
    better = "repaint"              # the method the paper found better ...
    worse = "lama-ffc"              # ... than this one; expect = "tie" for a reported tie

Each claim is tested on the images both methods completed, by the paired bootstrap of
:mod:`inpaintbench.report.statistics` (2,000 seeded resamples, 95 % interval of the
difference; one comparison per claim, so no correction): **reproduced** when the interval
lies on the claimed side of zero (for a tie: when it contains zero), **contradicted** when it
lies on the other side, **not separated** otherwise (too few images or too small a gap).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpaintbench.core.errors import InputError
from inpaintbench.metrics.table import metric_info
from inpaintbench.report.markdown import grid_table
from inpaintbench.report.statistics import format_value, paired_comparison, value_matrix

if TYPE_CHECKING:  # loading and checking a claims file needs no pandas; the page builder imports it
    import pandas as pd


@dataclass(frozen=True)
class Claim:
    """One published ordering (see the module docstring for the fields)."""

    title: str
    source: str
    dataset: str
    mask: str
    metric: str
    better: str
    worse: str
    expect: str = "better"

    def __post_init__(self) -> None:
        metric_info(self.metric)  # an unknown metric is an InputError naming the known ones
        if self.expect not in ("better", "tie"):
            raise InputError(f"claim {self.title!r}: expect must be 'better' or 'tie', got {self.expect!r}")


def load_claims(path: str | Path) -> list[Claim]:
    """The ``[[claims]]`` of a TOML file; :class:`InputError` naming a bad or missing field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"claims file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"claims file {path} is not valid TOML: {err}") from err
    claims = []
    for i, item in enumerate(data.get("claims", [])):
        try:
            claims.append(Claim(**item))
        except TypeError as err:
            raise InputError(f"{path}: claim {i + 1} is malformed ({err})") from err
    if not claims:
        raise InputError(f"claims file {path} has no [[claims]]")
    return claims


def check_claim(frame: pd.DataFrame, claim: Claim) -> dict[str, Any]:
    """Test one claim on a results frame (:func:`inpaintbench.report.leaderboard.load_records`).

    Returns:
        a row: the claim's fields, ``n`` images, both summaries, the difference
        ``better - worse`` with its interval (in the metric's units), and the ``verdict``.
    """
    group = frame[(frame["dataset"] == claim.dataset) & (frame["mask"] == claim.mask)]
    row: dict[str, Any] = {"claim": claim.title, "source": claim.source, "setting": f"{claim.dataset} · {claim.mask}",
                           "metric": claim.metric}
    missing = [m for m in (claim.better, claim.worse) if m not in set(group["method"])]
    if missing or claim.metric not in group:
        row.update(n=0, verdict=f"not measured ({', '.join(missing) or claim.metric} absent)")
        return row
    ok = group[group["status"] == "ok"]
    ids = sorted(set(ok[ok["method"] == claim.better]["sample_id"]) & set(ok[ok["method"] == claim.worse]["sample_id"]))
    values = value_matrix(group, claim.metric, ids, [claim.better, claim.worse]).dropna()
    if len(values) < 2:
        row.update(n=len(values), verdict="not measured (fewer than 2 common images)")
        return row
    comparison = paired_comparison(values, claim.metric, reference=claim.worse)
    stats = comparison.rows.set_index("method")
    diff, low, high = (float(stats.loc[claim.better, k]) for k in ("diff", "low", "high"))
    higher = metric_info(claim.metric).higher_is_better
    # "better" means a positive difference for higher-is-better metrics, a negative one otherwise.
    sign = 1.0 if higher else -1.0
    lo, hi = sorted((sign * low, sign * high))
    if claim.expect == "tie":
        verdict = "reproduced (tied)" if lo <= 0 <= hi else "not reproduced (separated)"
    elif lo > 0:
        verdict = "reproduced"
    elif hi < 0:
        verdict = "contradicted"
    else:
        verdict = "not separated"
    row.update(n=len(values), better=f"{claim.better} {format_value(float(stats.loc[claim.better, 'value']), claim.metric)}",
               worse=f"{claim.worse} {format_value(float(stats.loc[claim.worse, 'value']), claim.metric)}",
               difference=_interval(diff, low, high), verdict=verdict)
    return row


def _interval(diff: float, low: float, high: float) -> str:
    if any(math.isinf(v) or math.isnan(v) for v in (diff, low, high)):
        return f"{diff:+.4g} [{low:+.4g}, {high:+.4g}]"
    return f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]"


def orderings_markdown(frame: pd.DataFrame, claims: list[Claim], title: str, command: str) -> str:
    """The ORDERINGS page: one row per claim (see :func:`check_claim`) and how to read it."""
    import pandas as pd

    table = pd.DataFrame([check_claim(frame, c) for c in claims])
    counts = table["verdict"].value_counts().to_dict()
    lines = [f"# {title}", "", f"Generated by `{command}`. Do not edit by hand.", "",
             "Each row tests an ordering a paper reports on this suite's results, on the images both methods "
             "completed: difference = better − worse in the metric's units with its paired-bootstrap 95 % "
             "interval (2,000 seeded resamples over images; one comparison per row). **reproduced**: the "
             "interval lies on the claimed side of zero (for a reported tie: it contains zero); "
             "**contradicted**: on the other side; **not separated**: it contains zero.", "",
             "Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".", "",
             grid_table(table), ""]
    return "\n".join(lines)

