"""The `inpaintbench` command line: run, report, list, train."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from inpaintbench.api import InpaintBenchError, InputError
from inpaintbench.registry import dataset_registry, mask_registry, method_registry

DEFAULT_RESULTS_ROOT = Path("results")
DEFAULT_REPORT_ROOT = Path("reports")


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def _dataset_options(args: argparse.Namespace) -> dict[str, int]:
    """``--size`` and ``--channels``: set on every dataset of the run (but the embedded sample)."""
    return {k: v for k, v in (("size", args.size), ("channels", args.channels)) if v is not None}


def report_dir_for(suite_name: str, root: Path = DEFAULT_REPORT_ROOT) -> Path:
    """The default suite reports into ``reports/``; any other suite into ``reports/<suite>/``."""
    return root if suite_name == "default" else root / suite_name


def _run_suite_of(args: argparse.Namespace):
    """The suite a ``run`` / ``plan`` command line describes, and its results folder."""
    from inpaintbench.suite import load_suite

    suite = load_suite(args.suite).with_overrides(
        methods=_names(args.methods), datasets=_names(args.datasets), masks=_names(args.masks),
        dataset_options=_dataset_options(args), data_root=args.data_root, n_images=args.n_images,
        seed=args.seed, device=args.device, batch_size=args.batch_size, num_threads=args.num_threads,
        call_timeout_s=args.call_timeout, shard_size=args.shard_size, precision=args.precision,
        channels_last=True if args.channels_last else None, compile=True if args.compile else None,
        memory_budget_gb=args.memory_budget_gb)
    return suite, Path(args.out) if args.out else DEFAULT_RESULTS_ROOT / suite.name


def cmd_run(args: argparse.Namespace) -> int:
    from inpaintbench.reporting.leaderboard import write_leaderboard
    from inpaintbench.run.executors import check_executor
    from inpaintbench.run.runner import run_suite

    executor = args.executor or ("local" if args.workers else "inprocess")
    check_executor(executor, args.workers)
    if args.workers and executor == "inprocess":
        raise InputError("--workers needs --executor local or ray (in process, units run one after the other)")
    if args.ray_address and executor != "ray":
        raise InputError("--ray-address needs --executor ray")
    suite, out = _run_suite_of(args)
    if not args.no_report:  # a report folder that cannot be written fails now, not after the run
        from inpaintbench.run.artifacts import check_output_dir

        check_output_dir(Path(args.report_dir) if args.report_dir else report_dir_for(suite.name),
                         "report folder (--report-dir)")
    summary = run_suite(suite, out, progress=not args.quiet, lpips_weights=args.lpips_weights,
                        command=shlex.join(["inpaintbench", *sys.argv[1:]]), executor=executor,
                        workers=args.workers, ray_address=args.ray_address)
    print(f"wrote {summary.written} records ({summary.errors} errors), skipped {summary.skipped} already done "
          f"-> {summary.results_path}")
    for label, reason in summary.unavailable.items():
        print(f"unavailable: {label}: {reason}")
    if not args.no_report:
        report_dir = Path(args.report_dir) if args.report_dir else report_dir_for(suite.name)
        board = write_leaderboard([summary.results_path], report_dir, fid_weights=args.fid_weights)
        print(f"leaderboard -> {board}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from inpaintbench.run.runner import plan_suite

    suite, out = _run_suite_of(args)
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


def cmd_report(args: argparse.Namespace) -> int:
    from inpaintbench.reporting.leaderboard import write_leaderboard
    from inpaintbench.run.artifacts import check_output_dir
    from inpaintbench.run.units import records_files

    paths = [Path(p) for p in args.results]
    for path in paths:
        if not path.exists() and not (path.name == "results.jsonl" and path.parent.is_dir()):
            raise InputError(f"results {path} does not exist; run `inpaintbench run` first or pass --results")
    records_files(paths)  # a folder without results is one line, before anything is written
    check_output_dir(Path(args.report_dir), "report folder (--report-dir)")
    board = write_leaderboard(paths, Path(args.report_dir), reference=args.reference, fid_weights=args.fid_weights,
                              html=not args.no_html)
    print(f"leaderboard -> {board}" + ("" if args.no_html else f" and {board.with_suffix('.html')}"))
    if args.orderings:
        from inpaintbench.reporting.orderings import write_orderings

        claims = Path(args.orderings)
        if not claims.suffix:  # a bundled claims file by name
            from importlib import resources

            claims = Path(str(resources.files("inpaintbench") / "claims" / f"{args.orderings}.toml"))
        page = write_orderings(paths, claims, Path(args.report_dir) / "ORDERINGS.md",
                               shlex.join(["inpaintbench", *sys.argv[1:]]))
        print(f"orderings -> {page}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from inpaintbench.suite import bundled_suites

    from inpaintbench.registry import trainer_registry

    registries = {"methods": method_registry(), "datasets": dataset_registry(), "masks": mask_registry(),
                  "trainers": trainer_registry()}
    wanted = [args.what] if args.what != "all" else [*registries, "suites"]
    for what in wanted:
        if what == "suites":
            print("suites:\n" + "\n".join(f"  {s}" for s in bundled_suites()))
            continue
        registry = registries[what]
        print(f"{what}:")
        for name in registry.names():
            entry = registry.entry(name)
            status = ""
            if what == "methods" and args.check:
                ok, reason = registry.availability(name)
                status = "  [available]" if ok else f"  [unavailable: {reason}]"
            group = f" ({entry.group})" if entry.group else ""
            trained = f" [trained on {entry.trained_on}]" if getattr(entry, "trained_on", "") else ""
            print(f"  {name:<22}{group:<19} {entry.summary}{trained}{status}")
    return 0


def _method_overrides(items: list[str]) -> dict[str, dict]:
    """``["repaint.num_steps=5"]`` -> ``{"repaint": {"num_steps": 5}}``."""
    from inpaintbench.run.sweep import parse_assignments

    out: dict[str, dict] = {}
    for key, value in parse_assignments(items).items():
        method, dot, option = key.partition(".")
        if not dot:
            raise InputError(f"--set expects METHOD.OPTION=VALUE, got {key!r}")
        out.setdefault(method, {})[option] = value
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    from inpaintbench.run.runner import run_suite
    from inpaintbench.suite import load_suite
    from inpaintbench.run.sweep import parse_assignments, parse_value, sweep_suite, write_sweep_report

    if (args.param is None) == (args.mask_param is None):
        raise InputError("a sweep varies exactly one thing: give --param (a method option) or --mask-param")
    base = load_suite(args.suite).with_overrides(
        datasets=_names(args.datasets), n_images=args.n_images, seed=args.seed, device=args.device,
        batch_size=args.batch_size, num_threads=args.num_threads,
        dataset_options=_dataset_options(args), data_root=args.data_root)
    values = [parse_value(v) for v in _names(args.values) or []]
    mask_values = [parse_value(v) for v in _names(args.mask_values) or []]
    suite = sweep_suite(base, methods=_names(args.methods), param=args.param, values=values,
                        method_options=parse_assignments(args.set or []), mask=args.mask,
                        mask_param=args.mask_param, mask_values=mask_values)
    name = args.name or (args.param or args.mask_param)
    out = Path(args.out) if args.out else DEFAULT_RESULTS_ROOT / "sweeps" / name
    summary = run_suite(suite, out, progress=not args.quiet, lpips_weights=args.lpips_weights,
                        command=shlex.join(["inpaintbench", *sys.argv[1:]]))
    print(f"wrote {summary.written} records ({summary.errors} errors), skipped {summary.skipped} -> {summary.results_path}")
    x = f"config.{args.param}" if args.param else f"mask_config.{args.mask_param}"
    line = "line" if args.param else "method"
    report_dir = Path(args.report_dir) if args.report_dir else DEFAULT_REPORT_ROOT / "sweeps" / name
    print(f"sweep report -> {write_sweep_report(summary.results_path, report_dir, x, line, name)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from inpaintbench.run.check import apply_method_overrides, default_baseline_path, run_check
    from inpaintbench.suite import load_suite

    from inpaintbench.run.check import GATES
    from inpaintbench.suite import DATA_ROOT_ENV

    overrides = _method_overrides(args.set or [])
    gates = [(args.suite, False)] if args.suite else [(name, needs) for name, _, needs in GATES]
    data_root = args.data_root or os.environ.get(DATA_ROOT_ENV)
    suites = []
    for name, needs_data in gates:
        if needs_data and data_root is None:
            print(f"{name}: skipped: it reads CelebA under a data root; pass --data-root (e.g. ../shared/data) "
                  f"or set ${DATA_ROOT_ENV}\n")
            continue
        suite = load_suite(name).with_overrides(data_root=data_root if (needs_data or args.suite) else None)
        suites.append(apply_method_overrides(suite, overrides))
    labels = {s.label for suite in suites for s in suite.methods}
    if set(overrides) - labels:
        raise InputError(f"--set names methods in no gate suite: {sorted(set(overrides) - labels)}; "
                         f"they have {sorted(labels)}")
    failed = False
    for suite in suites:
        baseline = Path(args.baseline) if args.baseline else default_baseline_path(suite.name)
        result = run_check(suite, baseline, update=args.update, time_ratio=args.time_ratio,
                           lpips_weights=args.lpips_weights)
        print(f"## {suite.name}\n\n{result.table.to_markdown(index=False)}\n")
        if args.update:
            print(f"baseline written -> {baseline}\n")
        failed |= result.failed and not args.update
    if not args.update:
        print("REGRESSION: see the rows above" if failed else "no regression")
    return 1 if failed else 0


def _add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``run`` and ``plan``: which suite, what to change in it, where it goes."""
    parser.add_argument("--suite", default="default", help="bundled suite name or a .toml path (default: default)")
    parser.add_argument("--methods", help="comma-separated method names (replaces the suite's list)")
    parser.add_argument("--datasets", help="comma-separated dataset names")
    parser.add_argument("--masks", help="comma-separated mask family names")
    parser.add_argument("--data-root", help="root folder of the data (default $INPAINTBENCH_DATA_ROOT): a dataset's "
                        "root, or what {data_root} means in a suite file's roots (suites with several datasets)")
    parser.add_argument("--size", type=int, help="resize + centre-crop every dataset's images to SIZE x SIZE "
                        "(default: the dataset's own; folder: 256)")
    parser.add_argument("--channels", type=int, choices=(1, 3), help="load every folder dataset as grey (1) or RGB "
                        "(3, the default); `inpaintbench list methods` says what each learned method was trained on")
    parser.add_argument("--n-images", type=int, help="images per dataset")
    parser.add_argument("--seed", type=int, help="suite seed")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, help="images per method call")
    parser.add_argument("--num-threads", type=int, help="torch CPU threads per process (default 1: one thread per worker, "
                        "workers for parallelism; 2 threads on a busy 2-core machine ran RePaint 4.4x slower)")
    parser.add_argument("--call-timeout", type=float, metavar="SECONDS",
                        help="kill a method call (one batch) that runs longer and record its batch as errors; "
                        "calls then run in a forked worker process (CPU only; default: no limit)")
    parser.add_argument("--out", help="results folder (default: results/<suite>)")
    parser.add_argument("--lpips-weights", help="LPIPS backbone weights (file or folder); "
                        "else $INPAINTBENCH_LPIPS_WEIGHTS, else torchvision's download")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                        help="autocast the torch methods' calls (default fp32; fp16: CUDA only); recorded in each "
                        "record's config")
    parser.add_argument("--channels-last", action="store_true", help="NHWC layout for the torch methods' networks")
    parser.add_argument("--compile", action="store_true", help="torch.compile the torch methods' networks "
                        "(the warm-up call compiles; timings exclude it)")
    parser.add_argument("--memory-budget-gb", type=float, help="on CUDA: size each method's batches (up to "
                        "--batch-size) so a call's peak memory stays within this many GiB, from the peak of its "
                        "first one-image call")
    parser.add_argument("--shard-size", type=int, help="images per work unit (default: the suite's, 32); a unit is written whole, so a killed worker loses at most one unit")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``inpaintbench`` command."""
    parser = argparse.ArgumentParser(prog="inpaintbench", description="Comparative benchmark suite for image inpainting.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log warnings and progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a benchmark suite (default: the embedded MNIST sample)")
    _add_suite_arguments(run)
    run.add_argument("--executor", choices=("inprocess", "local", "ray"),
                     help="who runs the units: this process (default), local worker processes (--workers), or "
                     "Ray actors (extra [ray]; --ray-address to join a cluster)")
    run.add_argument("--workers", type=int, help="worker processes / Ray actors (default: one per GPU, else 2 "
                     "local, or as many as the Ray cluster holds); implies --executor local")
    run.add_argument("--ray-address", help="Ray cluster to join (auto, ray://HOST:10001; default $RAY_ADDRESS, "
                     "else a local cluster)")
    run.add_argument("--report-dir", help="where LEADERBOARD.md goes (default: reports/, or reports/<suite>/)")
    run.add_argument("--no-report", action="store_true", help="do not regenerate the leaderboard")
    run.add_argument("--fid-weights", help="the 2015-12-05 FID Inception file for suites with fid = true; "
                     "else $INPAINTBENCH_FID_WEIGHTS, else torch-fidelity's download")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)

    pln = sub.add_parser("plan", help="print a suite's work units and what is already done (runs nothing)")
    _add_suite_arguments(pln)
    pln.set_defaults(func=cmd_plan)

    rep = sub.add_parser("report", help="regenerate the leaderboard from results files (recomputes nothing)")
    rep.add_argument("--results", nargs="+", default=[str(DEFAULT_RESULTS_ROOT / "default")],
                     help="results folders (or .jsonl files; default results/default)")
    rep.add_argument("--report-dir", default=str(DEFAULT_REPORT_ROOT))
    rep.add_argument("--reference", help="compare every method with this one (default: each table's best)")
    rep.add_argument("--fid-weights", help="the 2015-12-05 FID Inception file (FID/KID of results kept with "
                     "fid = true); else $INPAINTBENCH_FID_WEIGHTS, else torch-fidelity's download")
    rep.add_argument("--no-html", action="store_true", help="do not write LEADERBOARD.html")
    rep.add_argument("--orderings", help="also test published orderings (a claims TOML, or a bundled name such "
                     "as `faces`) and write ORDERINGS.md")
    rep.set_defaults(func=cmd_report)

    lst = sub.add_parser("list", help="list methods, datasets, mask families and suites")
    lst.add_argument("what", nargs="?", default="all", choices=["all", "methods", "datasets", "masks", "trainers", "suites"])
    lst.add_argument("--check", action="store_true", help="try to build each method and say why one is unavailable")
    lst.set_defaults(func=cmd_list)

    swp = sub.add_parser("sweep", help="sweep one method option or one mask option; plots + heatmaps")
    swp.add_argument("--methods", required=True, help="comma-separated methods (one line each in the plots)")
    swp.add_argument("--param", help="method option to sweep (e.g. strength, down_n)")
    swp.add_argument("--values", help="comma-separated values of --param")
    swp.add_argument("--set", action="append", metavar="OPTION=VALUE", help="fixed method option (repeatable)")
    swp.add_argument("--mask", default="disc", help="mask family (default: disc)")
    swp.add_argument("--mask-param", help="mask option to sweep (e.g. radius_fraction)")
    swp.add_argument("--mask-values", help="comma-separated values of --mask-param")
    swp.add_argument("--suite", default="default", help="suite giving the dataset and run settings")
    swp.add_argument("--datasets", help="comma-separated dataset names")
    swp.add_argument("--data-root", help="as for run")
    swp.add_argument("--size", type=int, help="as for run")
    swp.add_argument("--channels", type=int, choices=(1, 3), help="as for run")
    swp.add_argument("--n-images", type=int)
    swp.add_argument("--seed", type=int)
    swp.add_argument("--device")
    swp.add_argument("--batch-size", type=int)
    swp.add_argument("--num-threads", type=int)
    swp.add_argument("--name", help="sweep name (folder under results/sweeps and reports/sweeps)")
    swp.add_argument("--out")
    swp.add_argument("--report-dir")
    swp.add_argument("--lpips-weights")
    swp.add_argument("-q", "--quiet", action="store_true")
    swp.set_defaults(func=cmd_sweep)

    chk = sub.add_parser("check", help="quick suite vs the committed quality baseline; exit 1 on a regression")
    chk.add_argument("--suite", help="run this gate suite only (default: every gate: check, and check-faces "
                     "when a data root is given)")
    chk.add_argument("--data-root", help="folder holding celeba/ for the faces gate (default $INPAINTBENCH_DATA_ROOT)")
    chk.add_argument("--baseline", help="baseline JSON (default: the one shipped in the package)")
    chk.add_argument("--set", action="append", metavar="METHOD.OPTION=VALUE",
                     help="change a method's option for this check (repeatable), e.g. repaint.num_steps=5")
    chk.add_argument("--time-ratio", type=float, default=3.0, help="fail when a method gets this many times slower")
    chk.add_argument("--update", action="store_true", help="rewrite the baseline from this run")
    chk.add_argument("--lpips-weights")
    chk.set_defaults(func=cmd_check)

    from inpaintbench.methods.training.cli import add_train_parser
    from inpaintbench.weights_catalog import add_weights_parser

    add_train_parser(sub)
    add_weights_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``inpaintbench`` console script; returns the exit status."""
    from inpaintbench.notices import one_line, printed_on_stderr

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
