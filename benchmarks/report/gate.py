"""The regression gate: a run's records compared against a committed quality baseline.

The run itself is the harness's (``inpaintbench check`` in :mod:`inpaintbench.cli.check` runs
the gate suite afresh); this module only reads records through the store and compares.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from inpaintbench.core.errors import InputError
from inpaintbench.metrics.table import METRICS, metric_info
from inpaintbench.store.results import load_records
from inpaintbench.report.statistics import summary_value

#: Allowed worsening per gated metric (absolute, in the metric's units), from the one metric table.
TOLERANCES: dict[str, float] = {m.name: m.gate_tolerance for m in METRICS if m.gate_tolerance is not None}
#: A method may get this many times slower, relative to the reference workload timed in the same
#: run (:func:`~inpaintbench.harness.timing.reference_workload_seconds`), before the gate fails:
#: a busy machine slows both, a method made twice as slow fails.
TIME_RATIO = 1.75
#: Times per image under this many seconds are not gated: microsecond fills jitter by 10x, and
#: millisecond methods (biharmonic at 2-4 ms) by x1.2-1.45 between two quiet runs back to back.
TIME_FLOOR_S = 5e-3


#: The gates ``inpaintbench check`` runs: (suite, committed baseline file, needs a data root).
#: The faces gate reads CelebA from ``--data-root`` / ``$INPAINTBENCH_DATA_ROOT``; without one it
#: is skipped with that reason, so the RGB models are gated wherever the data is (CI has it).
GATES: tuple[tuple[str, str, bool], ...] = (
    ("check", "quality_baseline.json", False),
    ("check-faces", "quality_baseline_faces.json", True),
)


def default_baseline_path(suite: str = "check") -> Path:
    """The committed baseline of a gate suite, shipped in the package
    (``inpaintbench/quality_baseline.json`` for ``check``)."""
    files = {name: file for name, file, _ in GATES}
    return Path(str(resources.files("inpaintbench") / files.get(suite, f"quality_baseline_{suite}.json")))


@dataclass(frozen=True)
class CheckResult:
    """The comparison table and whether anything regressed.

    Attributes:
        slow: the ``"method | mask"`` keys that failed on time alone (a rerun may confirm them).
        speed: how much slower this machine ran the reference workload than the baseline's
            (1 when the baseline has no reference time).
    """

    table: pd.DataFrame
    failed: bool
    slow: frozenset = frozenset()
    speed: float = 1.0


def summarize(results_path: Path) -> dict[str, dict[str, float]]:
    """Mean metrics and time per ``"method | mask"`` from a results file (ok records only)."""
    frame, _, _ = load_records([results_path])
    ok = frame[frame["status"] == "ok"]
    out = {}
    for (method, mask), group in ok.groupby(["method", "mask"]):
        # The leaderboard's summaries: PSNR of the set = PSNR of its mean MSE (exact images count);
        # a summary that is inf (every image exact) is not gated: inf - inf has no direction.
        values = {m: summary_value(group[m], m) for m in TOLERANCES if m in group and group[m].notna().any()}
        row = {m: v for m, v in values.items() if math.isfinite(v)}
        row["time_s"] = float(group["time_s"].mean())
        out[f"{method} | {mask}"] = row
    return out


def compare(current: dict[str, dict[str, float]], baseline: dict[str, dict[str, float]],
            time_ratio: float = TIME_RATIO, speed: float = 1.0) -> CheckResult:
    """Rows for every (method · mask, metric): baseline, now, change, verdict.

    Quality rows compare values exactly as measured (each metric's tolerance); time rows compare
    the ratio now / baseline divided by ``speed`` (how much busier this run found the machine than the
    baseline's), so a uniformly busy machine does not fail the gate.
    """
    rows, failed, slow = [], False, set()
    for key in sorted(set(baseline) | set(current)):
        if key not in current:
            rows.append({"method | mask": key, "metric": "*", "baseline": "", "now": "missing", "change": "",
                         "verdict": "REGRESSION"})
            failed = True
            continue
        if key not in baseline:
            rows.append({"method | mask": key, "metric": "*", "baseline": "", "now": "new", "change": "",
                         "verdict": "new (not gated)"})
            continue
        for metric, tolerance in TOLERANCES.items():
            if metric not in baseline[key]:
                continue
            if metric not in current[key]:  # e.g. LPIPS without backbone weights on this machine
                rows.append({"method | mask": key, "metric": metric, "baseline": f"{baseline[key][metric]:.4g}",
                             "now": "not measured", "change": "", "verdict": "skipped"})
                continue
            old, new = baseline[key][metric], current[key].get(metric, math.nan)
            worse = metric_info(metric).worsening(old, new)
            bad = not (worse <= tolerance)  # NaN counts as a regression
            verdict = "REGRESSION" if bad else ("improved" if worse < -tolerance else "ok")
            failed |= bad
            rows.append({"method | mask": key, "metric": metric, "baseline": f"{old:.4g}", "now": f"{new:.4g}",
                         "change": f"{new - old:+.3g}", "verdict": verdict})
        old_t, new_t = baseline[key]["time_s"], current[key]["time_s"]
        ratio = new_t / max(old_t, 1e-12) / speed
        too_slow = ratio > time_ratio and max(old_t, new_t) >= TIME_FLOOR_S
        failed |= too_slow
        if too_slow:
            slow.add(key)
        rows.append({"method | mask": key, "metric": "time/image", "baseline": f"{baseline[key]['time_s'] * 1e3:.2f} ms",
                     "now": f"{current[key]['time_s'] * 1e3:.2f} ms", "change": f"×{ratio:.2f}",
                     "verdict": "REGRESSION" if too_slow else "ok"})
    table = pd.DataFrame(rows)
    if not table.empty:  # a "|" inside a cell would split the markdown table's column
        table["method | mask"] = table["method | mask"].str.replace(" | ", " · ", regex=False)
        table = table.rename(columns={"method | mask": "method · mask"})
    return CheckResult(table, failed, frozenset(slow), speed)


def baseline_payload(suite_name: str, n_images: int, seed: int, current: dict[str, dict[str, float]],
                     reference_s: float) -> dict[str, Any]:
    """The JSON content of a baseline file made from ``current`` (:func:`summarize`'s output)
    and the reference workload's time measured in the same run."""
    return {"suite": suite_name, "n_images": n_images, "seed": seed, "reference_s": reference_s,
            "made_by": "inpaintbench check --update", "tolerances": TOLERANCES, "results": current}


def read_baseline(baseline_path: Path) -> tuple[dict[str, dict[str, float]], float | None]:
    """The ``results`` of a committed baseline file and its reference workload time (None in
    baselines made before it was recorded); :class:`InputError` when there is no file."""
    if not baseline_path.is_file():
        raise InputError(f"no quality baseline at {baseline_path}; create it with `inpaintbench check --update`")
    payload = json.loads(baseline_path.read_text(encoding="utf-8"))
    return payload["results"], payload.get("reference_s")
