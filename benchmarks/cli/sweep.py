"""`inpaintbench sweep`: vary one method or mask option; plots and heat maps."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from inpaintbench.cli.common import DEFAULT_OUT_ROOT, dataset_options, names
from inpaintbench.core.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("sweep", help="sweep one method option or one mask option; plots + heatmaps")
    parser.add_argument("--methods", required=True, help="comma-separated methods (one line each in the plots)")
    parser.add_argument("--param", help="method option to sweep (e.g. strength, down_n)")
    parser.add_argument("--values", help="comma-separated values of --param")
    parser.add_argument("--set", action="append", metavar="OPTION=VALUE", help="fixed method option (repeatable)")
    parser.add_argument("--mask", default="disc", help="mask family (default: disc)")
    parser.add_argument("--mask-param", help="mask option to sweep (e.g. radius_fraction)")
    parser.add_argument("--mask-values", help="comma-separated values of --mask-param")
    parser.add_argument("--suite", default="default", help="suite giving the dataset and run settings")
    parser.add_argument("--datasets", help="comma-separated dataset names")
    parser.add_argument("--data-root", help="as for run")
    parser.add_argument("--size", type=int, help="as for run")
    parser.add_argument("--channels", type=int, choices=(1, 3), help="as for run")
    parser.add_argument("--n-images", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-threads", type=int)
    parser.add_argument("--name", help="sweep name (its folder: inpaintbench-out/sweeps/<name>)")
    parser.add_argument("--out", help="output folder: results and the sweep report (default "
                        "inpaintbench-out/sweeps/<name> in the working directory)")
    parser.add_argument("--report-dir", help="where SWEEP.md and its plots go (default: the output folder)")
    parser.add_argument("--lpips-weights")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.harness.runner import run_suite
    from inpaintbench.harness.suite import load_suite
    from inpaintbench.harness.sweep import parse_assignments, parse_value, sweep_suite
    from inpaintbench.report.sweep import write_sweep_report

    if (args.param is None) == (args.mask_param is None):
        raise InputError("a sweep varies exactly one thing: give --param (a method option) or --mask-param")
    base = load_suite(args.suite).with_overrides(
        datasets=names(args.datasets), n_images=args.n_images, seed=args.seed, device=args.device,
        batch_size=args.batch_size, num_threads=args.num_threads,
        dataset_options=dataset_options(args), data_root=args.data_root)
    values = [parse_value(v) for v in names(args.values) or []]
    mask_values = [parse_value(v) for v in names(args.mask_values) or []]
    suite = sweep_suite(base, methods=names(args.methods), param=args.param, values=values,
                        method_options=parse_assignments(args.set or []), mask=args.mask,
                        mask_param=args.mask_param, mask_values=mask_values)
    name = args.name or (args.param or args.mask_param)
    out = Path(args.out) if args.out else DEFAULT_OUT_ROOT / "sweeps" / name
    print(f"sweep {name} -> {out}", flush=True)
    summary = run_suite(suite, out, progress=not args.quiet, lpips_weights=args.lpips_weights,
                        command=shlex.join(["inpaintbench", *sys.argv[1:]]))
    print(f"wrote {summary.written} records ({summary.errors} errors), skipped {summary.skipped} -> {summary.results_path}")
    x = f"config.{args.param}" if args.param else f"mask_config.{args.mask_param}"
    line = "line" if args.param else "method"
    report_dir = Path(args.report_dir) if args.report_dir else out
    print(f"sweep report -> {write_sweep_report(summary.results_path, report_dir, x, line, name)}")
    return 0
