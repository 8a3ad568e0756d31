"""`inpaintbench run`: run a suite (plan, units, executors) and write its leaderboard."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from inpaintbench.cli.common import add_suite_arguments, run_suite_of
from inpaintbench.core.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("run", help="run a benchmark suite (default: the embedded MNIST sample)")
    add_suite_arguments(parser)
    parser.add_argument("--executor", choices=("inprocess", "local", "ray"),
                     help="who runs the units: this process (default), local worker processes (--workers), or "
                     "Ray actors (extra [ray]; --ray-address to join a cluster)")
    parser.add_argument("--workers", type=int, help="worker processes / Ray actors (default: one per GPU, else 2 "
                     "local, or as many as the Ray cluster holds); implies --executor local")
    parser.add_argument("--ray-address", help="Ray cluster to join (auto, ray://HOST:10001; default $RAY_ADDRESS, "
                     "else a local cluster)")
    parser.add_argument("--report-dir", help="where LEADERBOARD.md and .html go (default: the output folder)")
    parser.add_argument("--no-report", action="store_true", help="do not regenerate the leaderboard")
    parser.add_argument("--fid-weights", help="the 2015-12-05 FID Inception file for suites with fid = true; "
                     "else $INPAINTBENCH_FID_WEIGHTS, else torch-fidelity's download")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.report.leaderboard import write_leaderboard
    from inpaintbench.harness.executors import check_executor
    from inpaintbench.harness.runner import run_suite

    executor = args.executor or ("local" if args.workers else "inprocess")
    check_executor(executor, args.workers)
    if args.workers and executor == "inprocess":
        raise InputError("--workers needs --executor local or ray (in process, units run one after the other)")
    if args.ray_address and executor != "ray":
        raise InputError("--ray-address needs --executor ray")
    suite, out, where = run_suite_of(args)
    print(where, flush=True)
    report_dir = Path(args.report_dir) if args.report_dir else out
    if not args.no_report:  # a report folder that cannot be written fails now, not after the run
        from inpaintbench.store.artifacts import check_output_dir

        check_output_dir(report_dir, "report folder (--report-dir)")
    summary = run_suite(suite, out, progress=not args.quiet, lpips_weights=args.lpips_weights,
                        command=shlex.join(["inpaintbench", *sys.argv[1:]]), executor=executor,
                        workers=args.workers, ray_address=args.ray_address,
                        announce=lambda plan: before_running(plan, args, suite))
    print(f"wrote {summary.written} records ({summary.errors} errors), skipped {summary.skipped} already done "
          f"-> {summary.results_path}")
    for label, reason in summary.unavailable.items():
        print(f"unavailable: {label}: {reason}")
    if not args.no_report:
        board = write_leaderboard([summary.results_path], report_dir, fid_weights=args.fid_weights)
        print(f"leaderboard -> {board}")
    return 0


def before_running(plan, args: argparse.Namespace, suite) -> None:
    """After the plan (data and methods checked), before any unit runs: name the refused pairs,
    and when FID is asked for, check that its network loads (hours of kept outputs are worth
    nothing without it; a suite missing its data has already stopped with its own line)."""
    print_refusals(plan)
    if args.fid_weights or (suite.fid and not args.no_report):
        from inpaintbench.metrics.options import check_fid_weights

        check_fid_weights(args.fid_weights)


def print_refusals(plan) -> None:
    """Name, once and before anything runs, each (method, dataset) pair the run leaves out."""
    for (method, dataset), reason in plan.refused.items():
        print(f"refused: {method} on {dataset}: {reason}", flush=True)
