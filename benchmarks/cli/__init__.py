"""The ``inpaintbench`` command line: one module per subcommand, wired here.

Subcommands: ``run``, ``plan``, ``report``, ``list``, ``sweep``, ``check`` (modules of this
package, each with ``add_parser(sub)`` and ``run(args)``), ``train`` (the training CLI of
:mod:`inpaintbench.methods.training.cli`) and ``weights`` (:mod:`inpaintbench.cli.weights`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from inpaintbench.cli import check, listing, plan, report, run, sweep
from inpaintbench.core.errors import InpaintBenchError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``inpaintbench`` command."""
    parser = argparse.ArgumentParser(prog="inpaintbench", description="Comparative benchmark suite for image inpainting.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log warnings and progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (run, plan, report, listing, sweep, check):
        module.add_parser(sub)

    from inpaintbench.cli.weights import add_weights_parser
    from inpaintbench.methods.training.cli import add_train_parser

    add_train_parser(sub)
    add_weights_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``inpaintbench`` console script; returns the exit status."""
    from inpaintbench.core.notices import one_line, printed_on_stderr
    from inpaintbench.core.probing import quiet_third_party

    quiet_third_party()  # before any command imports TensorFlow or diffusers

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    try:
        with printed_on_stderr():
            status = args.func(args)
    except InpaintBenchError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C: what was written stays; no traceback
        written = getattr(err, "written", None)
        kept = f"{written} records kept" if written is not None else "every record written so far is kept"
        where = f" in {err.results_path}" if getattr(err, "results_path", None) else ""
        print(f"interrupted; {kept}{where}; rerun to resume", file=sys.stderr)
        return 130
    except OSError as err:  # the machine, not the code: a full disk, a folder that vanished
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0  # `train` returns the exported folder


if __name__ == "__main__":
    sys.exit(main())
