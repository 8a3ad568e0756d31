"""`inpaintbench plan`: print a suite's work units and what is already done (runs nothing)."""

from __future__ import annotations

import argparse

from inpaintbench.cli.common import add_suite_arguments, run_suite_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("plan", help="print a suite's work units and what is already done (runs nothing)")
    add_suite_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.harness.runner import plan_suite

    suite, out = run_suite_of(args)
    plan = plan_suite(suite, out, lpips_weights=args.lpips_weights)
    rows, todo = [], 0
    for unit in plan.units:
        left = len(unit.keys) - len(unit.done)
        todo += left
        state = "done" if not left else ("pending" if left == len(unit.keys) else f"{left} of {len(unit.keys)} left")
        rows.append(f"  {unit.hash}  {unit.method:<22} {unit.dataset:<14} {unit.condition:<16} "
                    f"{unit.sample_ids[0]} .. {unit.sample_ids[-1]} ({len(unit.keys)})  {state}")
    print(f"suite {suite.name}: {len(plan.units)} units, {len(plan.pending())} with work left ({todo} samples), "
          f"results folder {out}")
    print("\n".join(rows))
    for label, reason in plan.unavailable.items():
        print(f"unavailable: {label}: {reason}")
    return 0
