"""What several subcommands share: the suite options, the output folders, ``--set`` parsing."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from inpaintbench.core.errors import InputError

#: Where user runs write, in the working directory: one folder per suite (results and report
#: together), never the repository's tracked ``reports/``.
DEFAULT_OUT_ROOT = Path("inpaintbench-out")

#: What a suite computes (as opposed to how it runs): a command line that changes any of these
#: gets its own output folder, so its records never mix with the suite's own.
CONTENT_FIELDS = ("task", "datasets", "masks", "methods", "seed", "band_px", "lpips_net", "scales", "precision",
                  "fid", "dists")


def names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def dataset_options(args: argparse.Namespace) -> dict[str, int]:
    """``--size`` and ``--channels``: set on every dataset of the run (but the embedded sample)."""
    return {k: v for k, v in (("size", args.size), ("channels", args.channels)) if v is not None}


def output_folder(name: str, suite, reference) -> tuple[Path, str]:
    """The default output folder of a run of ``suite`` and a note saying why it is that one.

    Args:
        name: the folder's base name (the suite's name).
        suite: the suite as the command line made it; ``reference``: the same suite with only
            the data root and how it runs applied (None when that alone is not a valid suite).

    Returns:
        ``inpaintbench-out/<name>`` when the command line changes nothing the suite computes
        (:data:`CONTENT_FIELDS`), else ``inpaintbench-out/<name>+<8 hex digits>``: a digest
        of what it computes, so the same overrides resume in the same folder and other ones
        never share it; the note names the overridden fields ("" for none).
    """
    from inpaintbench.core.identity import json_digest

    def content(s) -> dict:
        return {key: [[spec.name, spec.label, spec.config] for spec in value] if key in ("datasets", "masks", "methods")
                else value for key in CONTENT_FIELDS for value in [getattr(s, key)]}

    mine = content(suite)
    theirs = None if reference is None else content(reference)
    if mine == theirs:
        return DEFAULT_OUT_ROOT / name, ""
    changed = [key for key in CONTENT_FIELDS if theirs is None or mine[key] != theirs[key]]
    digest = json_digest(mine, 8)
    return DEFAULT_OUT_ROOT / f"{name}+{digest}", f"{', '.join(changed)} changed on the command line"


def run_suite_of(args: argparse.Namespace):
    """The suite a ``run`` / ``plan`` command line describes, its output folder (``--out``, else
    :func:`output_folder`) and the line a command prints first (which folder, and why)."""
    from inpaintbench.harness.suite import load_suite

    base = load_suite(args.suite)
    suite = base.with_overrides(
        methods=names(args.methods), datasets=names(args.datasets), masks=names(args.masks),
        dataset_options=dataset_options(args), data_root=args.data_root, n_images=args.n_images,
        seed=args.seed, device=args.device, batch_size=args.batch_size, num_threads=args.num_threads,
        call_timeout_s=args.call_timeout, shard_size=args.shard_size, precision=args.precision,
        channels_last=True if args.channels_last else None, compile=True if args.compile else None,
        memory_budget_gb=args.memory_budget_gb, sealed=getattr(args, "sealed", None))
    suite = apply_set_options(suite, getattr(args, "set", None) or [])
    if args.out:
        return suite, Path(args.out), f"suite {suite.name} -> {args.out}"
    try:
        reference = base.with_overrides(data_root=args.data_root)
    except InputError:  # the suite alone needs what the command line changed: overridden
        reference = None
    out, why = output_folder(suite.name, suite, reference)
    return suite, out, f"suite {suite.name} -> {out}" + (f" (its own folder: {why})" if why else "")


#: Keys of a suite that ``--set run.KEY=VALUE`` may change (its ``[run]`` table).
RUN_KEYS = ("seed", "n_images", "batch_size", "device", "n_examples", "band_px", "lpips_net", "scales",
            "num_threads", "shard_size", "fid", "dists", "call_timeout_s", "precision", "channels_last", "compile",
            "compile_mode", "memory_budget_gb", "sealed")


def apply_method_overrides(suite, overrides: dict[str, dict[str, Any]]):
    """Set config values on the suite's methods by label (``{"repaint": {"num_steps": 5}}``).

    Raises:
        InputError: a label that names no method of the suite (one line listing its labels).
    """
    from inpaintbench.harness.suite import Spec

    labels = {s.label for s in suite.methods}
    if set(overrides) - labels:
        raise InputError(f"--set names methods not in suite {suite.name!r}: {sorted(set(overrides) - labels)}; "
                         f"its methods: {sorted(labels)}")
    methods = tuple(Spec(s.name, s.label, {**s.config, **overrides.get(s.label, {})}) for s in suite.methods)
    return replace(suite, methods=methods)


def apply_set_options(suite, items: list[str]):
    """The suite with ``--set`` applied: ``METHOD.OPTION=VALUE`` (a method label of the suite)
    and ``run.KEY=VALUE`` (a key of the ``[run]`` table); values parse as JSON when they can
    (``5``, ``true``, ``0.5``), else as text. Checked as suite values are: a bad value is one
    line before anything runs."""
    overrides = method_overrides(items)
    run = overrides.pop("run", {})
    unknown = [key for key in run if key not in RUN_KEYS]
    if unknown:
        raise InputError(f"--set run.{unknown[0]}: [run] has no key {unknown[0]!r}; its keys: {', '.join(RUN_KEYS)}")
    if run:
        if "scales" in run and isinstance(run["scales"], list):
            run["scales"] = tuple(run["scales"])
        suite = replace(suite, **run)  # the suite validates its values again
    return apply_method_overrides(suite, overrides) if overrides else suite


def method_overrides(items: list[str]) -> dict[str, dict]:
    """``["repaint.num_steps=5"]`` -> ``{"repaint": {"num_steps": 5}}``."""
    from inpaintbench.harness.sweep import parse_assignments

    out: dict[str, dict] = {}
    for key, value in parse_assignments(items).items():
        method, dot, option = key.partition(".")
        if not dot:
            raise InputError(f"--set expects METHOD.OPTION=VALUE, got {key!r}")
        out.setdefault(method, {})[option] = value
    return out


def add_suite_arguments(parser: argparse.ArgumentParser) -> None:
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
                        "calls then run in the method's sealed process (default: no limit)")
    parser.add_argument("--sealed", action=argparse.BooleanOptionalAction,
                        help="run every method (--no-sealed: none) in a process that never holds the ground truth "
                        "(default: the methods of plugins)")
    parser.add_argument("--out", help="output folder: the results and the leaderboard (default: "
                        "inpaintbench-out/<suite> in the working directory; inpaintbench-out/<suite>+<digest> when "
                        "the command line changes the suite's datasets, masks, methods, seed or options)")
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
    parser.add_argument("--set", action="append", metavar="METHOD.OPTION=VALUE",
                        help="change one option of a suite method (by label), e.g. telea.radius=5, or of the "
                        "[run] table, e.g. run.n_images=8 (repeatable); checked like suite values")
    parser.add_argument("--shard-size", type=int, help="images per work unit (default: the suite's, 32); a unit is written whole, so a killed worker loses at most one unit")
