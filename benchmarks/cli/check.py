"""`inpaintbench check`: the gate suites run afresh and compared with the committed baselines."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from inpaintbench.cli.common import DEFAULT_OUT_ROOT, apply_method_overrides, method_overrides
from inpaintbench.core.errors import InputError
from inpaintbench.core.io import atomic_write_text
from inpaintbench.harness.runner import run_suite
from inpaintbench.harness.suite import Suite
from inpaintbench.harness.timing import reference_workload_seconds
from inpaintbench.report.gate import (GATES, TIME_RATIO, CheckResult, baseline_payload, compare, default_baseline_path,
                                      read_baseline, summarize)


def run_check(suite: Suite, baseline_path: Path, *, update: bool = False, time_ratio: float = TIME_RATIO,
              lpips_weights: str | None = None) -> CheckResult:
    """Run ``suite`` afresh (never resumed: stale records would hide a regression) and compare.

    The reference workload is timed before and after the run; time ratios are taken relative
    to it. A method that fails on time alone is timed once more (a second run of just those
    methods; the faster of the two counts) before the gate fails. With ``update=True`` the
    baseline file is (re)written from this run instead.
    """
    current, reference_s = _measure(suite, lpips_weights)
    if update:
        payload = baseline_payload(suite.name, suite.n_images, suite.seed, current, reference_s)
        atomic_write_text(baseline_path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
        return compare(current, current, time_ratio)
    baseline, baseline_reference_s = read_baseline(baseline_path)
    speed = _busy_factor(reference_s, baseline_reference_s)
    result = compare(current, baseline, time_ratio, speed)
    quality_failed = result.failed and not _time_only(result)
    if result.slow and not quality_failed:  # confirm a slowdown before failing on it
        labels = {key.split(" | ")[0] for key in result.slow}
        slow_suite = replace(suite, methods=tuple(s for s in suite.methods if s.label in labels))
        again, again_reference_s = _measure(slow_suite, lpips_weights)
        for key, row in again.items():
            if key in current:
                current[key]["time_s"] = min(current[key]["time_s"], row["time_s"])
        reference_s = min(reference_s, again_reference_s)
        speed = _busy_factor(reference_s, baseline_reference_s)
        result = compare(current, baseline, time_ratio, speed)
    return result


def _busy_factor(reference_s: float, baseline_reference_s: float | None) -> float:
    """How much slower this machine ran the reference workload than the baseline's, at least 1:
    a busier machine excuses slower methods, a quieter one excuses nothing (methods and the
    reference do not speed up alike: measured here, a quiet run timed the reference x0.40 of a
    loaded one but the learned methods only x0.7, so scaling down would fail them)."""
    return max(1.0, reference_s / baseline_reference_s) if baseline_reference_s else 1.0


def _time_only(result: CheckResult) -> bool:
    """Whether every REGRESSION row of ``result`` is a time row."""
    bad = result.table[result.table["verdict"] == "REGRESSION"]
    return bool((bad["metric"] == "time/image").all())


def _measure(suite: Suite, lpips_weights: str | None) -> tuple[dict[str, dict[str, float]], float]:
    """One fresh run of ``suite``: its summary (:func:`summarize`) and the reference workload's
    time, the median of the times before and after the run."""
    before = reference_workload_seconds()
    with tempfile.TemporaryDirectory(prefix="inpaintbench-check-") as tmp:
        summary = run_suite(suite, Path(tmp), progress=False, lpips_weights=lpips_weights,
                            command="inpaintbench check")
        if summary.unavailable:
            raise InputError("methods of the check suite are unavailable: "
                             + "; ".join(f"{k}: {v}" for k, v in summary.unavailable.items()))
        current = summarize(summary.results_path)
    return current, (before + reference_workload_seconds()) / 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("check", help="quick suite vs the committed quality baseline; exit 1 on a regression")
    parser.add_argument("--suite", help="run this gate suite only (default: every gate: check, and check-faces "
                     "when a data root is given)")
    parser.add_argument("--data-root", help="folder holding celeba/ for the faces gate (default $INPAINTBENCH_DATA_ROOT)")
    parser.add_argument("--baseline", help="baseline JSON to compare with (default: the one shipped in the package), "
                     "or to write with --update (default: inpaintbench-out/check/<its file name>; the committed "
                     "one is rewritten only when named, e.g. --baseline benchmarks/quality_baseline.json)")
    parser.add_argument("--set", action="append", metavar="METHOD.OPTION=VALUE",
                     help="change a method's option for this check (repeatable), e.g. repaint.num_steps=5")
    parser.add_argument("--time-ratio", type=float, default=TIME_RATIO,
                        help="fail when a method gets this many times slower than the baseline, relative to a "
                        f"reference workload timed in the same run (default {TIME_RATIO})")
    parser.add_argument("--update", action="store_true", help="write a baseline from this run (see --baseline)")
    parser.add_argument("--lpips-weights")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.harness.suite import DATA_ROOT_ENV, load_suite

    overrides = method_overrides(args.set or [])
    gates = [(args.suite, False)] if args.suite else [(name, needs) for name, _, needs in GATES]
    data_root = args.data_root or os.environ.get(DATA_ROOT_ENV)
    suites = []
    for name, needs_data in gates:
        if needs_data and data_root is None:
            print(f"{name}: skipped: it reads CelebA under a data root; pass --data-root (e.g. ../shared/data) "
                  f"or set ${DATA_ROOT_ENV}\n")
            continue
        suite = load_suite(name).with_overrides(data_root=data_root if (needs_data or args.suite) else None)
        own = {s.label for s in suite.methods}  # each gate suite takes the overrides of its own methods
        suites.append(apply_method_overrides(suite, {k: v for k, v in overrides.items() if k in own}))
    labels = {s.label for suite in suites for s in suite.methods}
    if set(overrides) - labels:
        raise InputError(f"--set names methods in no gate suite: {sorted(set(overrides) - labels)}; "
                         f"they have {sorted(labels)}")
    failed = False
    for suite in suites:
        baseline = Path(args.baseline) if args.baseline else default_baseline_path(suite.name)
        if args.update and not args.baseline:  # never the tracked file unless named on the command line
            baseline = DEFAULT_OUT_ROOT / "check" / baseline.name  # atomic_write makes the folder
        result = run_check(suite, baseline, update=args.update, time_ratio=args.time_ratio,
                           lpips_weights=args.lpips_weights)
        print(f"## {suite.name}\n\n{result.table.to_markdown(index=False)}\n")
        if not args.update:
            print(f"time ratios are divided by ×{result.speed:.2f}: how much longer the reference workload took "
                  "than when the baseline was made (at least 1: a quieter machine excuses nothing)\n")
        if args.update:
            print(f"baseline written -> {baseline}\n")
        failed |= result.failed and not args.update
    if not args.update:
        print("REGRESSION: see the rows above" if failed else "no regression")
    return 1 if failed else 0
