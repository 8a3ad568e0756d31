"""`inpaintbench plan`: what a run would do, before anything runs: its output folder, the
(method, dataset) pairs that will run or refuse and why, whether the LPIPS / FID weights are
here, and an estimated time from recorded costs (nothing is downloaded, computed or written)."""

from __future__ import annotations

import argparse
from collections import defaultdict

from inpaintbench.cli.common import add_suite_arguments, run_suite_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("plan", help="what a run would do: pairs that run or refuse, weights, estimated time "
                            "(runs nothing)")
    add_suite_arguments(parser)
    parser.add_argument("--fid-weights", help="as for run: the FID Inception file (suites with fid = true)")
    parser.add_argument("--units", action="store_true", help="also list every work unit and what is done")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.harness.preflight import (committed_results_folders, fid_weights_state, lpips_weights_state,
                                                recorded_costs)
    from inpaintbench.harness.runner import plan_suite

    suite, out, where = run_suite_of(args)
    print(where, flush=True)
    plan = plan_suite(suite, out, lpips_weights=args.lpips_weights, load_lpips=False)
    wanted = {(u.base["config_hash"], u.base["dataset_hash"]) for u in plan.pending()}
    costs = recorded_costs([out], wanted)
    if wanted - set(costs):
        costs = {**recorded_costs(committed_results_folders(), wanted - set(costs)), **costs}
    pairs: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, 0.0, False])  # units, left, seconds, unknown
    for unit in plan.units:
        row = pairs[(unit.method, unit.dataset)]
        left = len(unit.keys) - len(unit.done)
        row[0] += 1
        row[1] += left
        cost = costs.get((unit.base["config_hash"], unit.base["dataset_hash"]))
        if left and cost is None:
            row[3] = True
        elif left:
            row[2] += left * cost
    table = [("method", "dataset", "units", "left", "estimate")]
    for (method, dataset), (units, left, seconds, unknown) in pairs.items():
        table.append((method, dataset, str(units), str(left),
                      "done" if not left else "unknown" if unknown else _duration(seconds)))
    for (method, dataset), reason in plan.refused.items():
        table.append((method, dataset, "-", "-", f"refused: {reason}"))
    for label, reason in plan.unavailable.items():
        table.append((label, "*", "-", "-", f"unavailable: {reason}"))
    todo = sum(row[1] for row in pairs.values())
    known = sum(row[2] for row in pairs.values())
    unknown = sorted({method for (method, _), row in pairs.items() if row[3]})
    print(f"suite {suite.name}: {len(plan.units)} units, {len(plan.pending())} with work left ({todo} samples), "
          f"results folder {out}")
    print(_render(table))
    if not unknown:
        estimate = _duration(known)
    else:
        estimate = (f"{'at least ' + _duration(known) + ', ' if known else ''}unknown for {len(unknown)} "
                    f"method(s) ({', '.join(unknown)}): no record of their configuration on this data")
    print(f"estimated time: {estimate} (from recorded seconds per image, {suite.num_threads or 1} torch thread(s), "
          "one process)")
    available, text = lpips_weights_state(suite.lpips_net, args.lpips_weights)
    print(f"LPIPS ({suite.lpips_net}): {'available: ' if available else 'unavailable: '}{text}")
    if suite.fid:
        available, text = fid_weights_state(args.fid_weights)
        print(f"FID/KID: {'available: ' if available else 'unavailable: '}{text}")
    if args.units:
        for unit in plan.units:
            left = len(unit.keys) - len(unit.done)
            state = "done" if not left else ("pending" if left == len(unit.keys) else f"{left} of {len(unit.keys)} left")
            print(f"  {unit.hash}  {unit.method:<22} {unit.dataset:<14} {unit.condition:<16} "
                  f"{unit.sample_ids[0]} .. {unit.sample_ids[-1]} ({len(unit.keys)})  {state}")
    return 0


def _duration(seconds: float) -> str:
    """``0.4 s``, ``3 min 10 s``, ``2 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 9.95 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _render(rows: list[tuple[str, ...]]) -> str:
    """A plain-text table: columns padded to their widest cell but the last."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in rows)
