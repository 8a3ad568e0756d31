"""The regression gate: a quick suite compared against a committed quality baseline."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from inpaintbench.api import InputError
from inpaintbench.metrics import METRICS, metric_info
from inpaintbench.reporting.leaderboard import load_records
from inpaintbench.reporting.statistics import summary_value
from inpaintbench.run.runner import run_suite
from inpaintbench.suite import Spec, Suite

#: Allowed worsening per gated metric (absolute, in the metric's units), from the one metric table.
TOLERANCES: dict[str, float] = {m.name: m.gate_tolerance for m in METRICS if m.gate_tolerance is not None}
#: A method may get this many times slower before the gate fails (these machines are noisy).
TIME_RATIO = 3.0
#: Times per image under this many seconds are not gated: microsecond fills jitter by 10x.
TIME_FLOOR_S = 1e-3


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
    """The comparison table and whether anything regressed."""

    table: pd.DataFrame
    failed: bool


def apply_method_overrides(suite: Suite, overrides: dict[str, dict[str, Any]]) -> Suite:
    """Set config values on the suite's methods by label (``{"repaint": {"num_steps": 5}}``)."""
    methods = tuple(Spec(s.name, s.label, {**s.config, **overrides.get(s.label, {})}) for s in suite.methods)
    return replace(suite, methods=methods)


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
            time_ratio: float = TIME_RATIO) -> CheckResult:
    """Rows for every (method | mask, metric): baseline, now, change, verdict."""
    rows, failed = [], False
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
        ratio = new_t / max(old_t, 1e-12)
        slow = ratio > time_ratio and max(old_t, new_t) >= TIME_FLOOR_S
        failed |= slow
        rows.append({"method | mask": key, "metric": "time/image", "baseline": f"{baseline[key]['time_s'] * 1e3:.2f} ms",
                     "now": f"{current[key]['time_s'] * 1e3:.2f} ms", "change": f"×{ratio:.2f}",
                     "verdict": "REGRESSION" if slow else "ok"})
    return CheckResult(pd.DataFrame(rows), failed)


def run_check(suite: Suite, baseline_path: Path, *, update: bool = False, time_ratio: float = TIME_RATIO,
              lpips_weights: str | None = None) -> CheckResult:
    """Run ``suite`` afresh (never resumed: stale records would hide a regression) and compare.

    With ``update=True`` the baseline file is (re)written from this run instead.
    """
    with tempfile.TemporaryDirectory(prefix="inpaintbench-check-") as tmp:
        summary = run_suite(suite, Path(tmp), progress=False, lpips_weights=lpips_weights,
                            command="inpaintbench check")
        if summary.unavailable:
            raise InputError("methods of the check suite are unavailable: "
                             + "; ".join(f"{k}: {v}" for k, v in summary.unavailable.items()))
        current = summarize(summary.results_path)
    if update:
        payload = {"suite": suite.name, "n_images": suite.n_images, "seed": suite.seed,
                   "made_by": "inpaintbench check --update", "tolerances": TOLERANCES, "results": current}
        baseline_path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return compare(current, current, time_ratio)
    if not baseline_path.is_file():
        raise InputError(f"no quality baseline at {baseline_path}; create it with `inpaintbench check --update`")
    baseline = json.loads(baseline_path.read_text(encoding="utf-8"))["results"]
    return compare(current, baseline, time_ratio)
