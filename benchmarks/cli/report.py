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
    from inpaintbench.core.io import atomic_write_text
    from inpaintbench.report.leaderboard import write_leaderboard
    from inpaintbench.store.artifacts import check_output_dir
    from inpaintbench.store.folder import records_files
    from inpaintbench.store.results import load_records

    paths = [Path(p) for p in args.results]
    for path in paths:
        if not path.exists() and not (path.name == "results.jsonl" and path.parent.is_dir()):
            raise InputError(f"results {path} does not exist; run `inpaintbench run` first or pass --results")
    records_files(paths)  # a folder without results is one line, before anything is written
    report_dir = Path(args.report_dir) if args.report_dir else _default_report_dir(paths)
    check_output_dir(report_dir, "report folder (--report-dir)")
    command = shlex.join(["inpaintbench", *sys.argv[1:]])
    records = load_records(paths)  # once, for every page this command writes
    # The companion pages are built before anything is written: results they cannot use (no
    # `method@NFE` labels, a bad claims file) are one line and no page changes.
    pages = {}
    if args.orderings:
        from inpaintbench.report.orderings import load_claims, orderings_markdown

        claims = _claims_path(args.orderings)
        pages["ORDERINGS.md"] = orderings_markdown(_sample_records(records[0], "orderings"), load_claims(claims),
                                                   f"Published orderings: {claims.stem}", command)
    if args.budgets:
        from inpaintbench.report.budgets import budgets_markdown

        pages["BUDGETS.md"] = budgets_markdown(_sample_records(records[0], "budgets"),
                                               "Methods at equal network evaluations", command)
    board = write_leaderboard(paths, report_dir, reference=args.reference, fid_weights=args.fid_weights,
                              html=not args.no_html, records=records)
    print(f"leaderboard -> {board}" + ("" if args.no_html else f" and {board.with_suffix('.html')}"))
    for name, text in pages.items():
        atomic_write_text(report_dir / name, text)
        print(f"{name.split('.')[0].lower()} -> {report_dir / name}")
    return 0


def _default_report_dir(paths: list[Path]) -> Path:
    """The report goes beside its results: the one results folder given (or the folder of the
    one ``.jsonl`` file); several need ``--report-dir``, so no page lands where nobody looks."""
    if len(paths) != 1:
        raise InputError(f"{len(paths)} results folders: pass --report-dir (where their leaderboard goes)")
    return paths[0] if paths[0].is_dir() else paths[0].parent


def _claims_path(orderings: str) -> Path:
    """The claims file of ``--orderings``: a path, or the name of a bundled claims file."""
    claims = Path(orderings)
    if claims.suffix:
        return claims
    from importlib import resources

    return Path(str(resources.files("inpaintbench") / "claims" / f"{orderings}.toml"))


def _sample_records(frame, page: str):
    """``frame``, or one line when it holds no sample records (nothing to build ``page`` from)."""
    if frame.empty:
        raise InputError(f"--{page}: the results hold no sample records")
    return frame
