"""`inpaintbench report`: regenerate a leaderboard from results (recomputes nothing)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from inpaintbench.cli.common import DEFAULT_OUT_ROOT
from inpaintbench.core.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("report", help="regenerate the leaderboard from results files (recomputes nothing)")
    parser.add_argument("--results", nargs="+", default=[str(DEFAULT_OUT_ROOT / "default")],
                     help="results folders (or .jsonl files; default inpaintbench-out/default, what `inpaintbench "
                     "run` writes)")
    parser.add_argument("--report-dir", help="where LEADERBOARD.md and .html go (default: the results folder, when "
                     "one is given; the committed pages: e.g. --results reports/results/default --report-dir reports)")
    parser.add_argument("--reference", help="compare every method with this one (default: each table's best)")
    parser.add_argument("--fid-weights", help="the 2015-12-05 FID Inception file (FID/KID of results kept with "
                     "fid = true); else $INPAINTBENCH_FID_WEIGHTS, else torch-fidelity's download")
    parser.add_argument("--no-html", action="store_true", help="do not write LEADERBOARD.html")
    parser.add_argument("--orderings", help="also test published orderings (a claims TOML, or a bundled name such "
                     "as `faces`) and write ORDERINGS.md")
    parser.add_argument("--budgets", action="store_true", help="also compare the labels named `method@NFE` at "
                     "equal network evaluations (paired tables per budget, the pick per budget): BUDGETS.md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.report.leaderboard import write_leaderboard
    from inpaintbench.store.artifacts import check_output_dir
    from inpaintbench.store.folder import records_files

    paths = [Path(p) for p in args.results]
    for path in paths:
        if not path.exists() and not (path.name == "results.jsonl" and path.parent.is_dir()):
            raise InputError(f"results {path} does not exist; run `inpaintbench run` first or pass --results")
    records_files(paths)  # a folder without results is one line, before anything is written
    report_dir = Path(args.report_dir) if args.report_dir else _default_report_dir(paths)
    check_output_dir(report_dir, "report folder (--report-dir)")
    board = write_leaderboard(paths, report_dir, reference=args.reference, fid_weights=args.fid_weights,
                              html=not args.no_html)
    print(f"leaderboard -> {board}" + ("" if args.no_html else f" and {board.with_suffix('.html')}"))
    if args.orderings:
        from inpaintbench.report.orderings import write_orderings

        claims = Path(args.orderings)
        if not claims.suffix:  # a bundled claims file by name
            from importlib import resources

            claims = Path(str(resources.files("inpaintbench") / "claims" / f"{args.orderings}.toml"))
        page = write_orderings(paths, claims, report_dir / "ORDERINGS.md",
                               shlex.join(["inpaintbench", *sys.argv[1:]]))
        print(f"orderings -> {page}")
    if args.budgets:
        from inpaintbench.report.budgets import write_budgets

        page = write_budgets(paths, Path(args.report_dir) / "BUDGETS.md", shlex.join(["inpaintbench", *sys.argv[1:]]))
        print(f"budgets -> {page}")
    return 0


def _default_report_dir(paths: list[Path]) -> Path:
    """The report goes beside its results: the one results folder given (or the folder of the
    one ``.jsonl`` file); several need ``--report-dir``, so no page lands where nobody looks."""
    if len(paths) != 1:
        raise InputError(f"{len(paths)} results folders: pass --report-dir (where their leaderboard goes)")
    return paths[0] if paths[0].is_dir() else paths[0].parent
