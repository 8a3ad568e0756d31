"""Speed tables from pytest-benchmark JSON files: per group, each case's min and median time
and its ratio to the group's baseline.

One JSON file is one run (one machine, one load, one moment), so ratios are computed within
a file only: a case against the baseline of its own group in the same run. Absolute times of
different runs are not comparable (a shared machine's load moves them by 2x here); ratios
are, which is why each run gets its own section with its machine, threads and date.

The baseline of a group is the case whose ``extra_info["baseline"]`` is true (the per-image
reference loops of ``benchmarks/perf/test_perf_metrics.py`` set it); a group without one gets
no ratios, a group with two is refused.

Command line::

    python -m inpaintbench.report.speed BENCH.json [BENCH2.json ...] [--out reports/perf/SPEED.md]

writes the markdown to ``--out`` (parent folders created) or prints it. A file that is not a
pytest-benchmark JSON is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Exit status for unreadable or malformed input files.
EXIT_BAD_INPUT = 2

RATIO_NOTE = (
    "Ratios (case time / baseline time of the same group, same run; below 1 is faster) are "
    "comparable between runs and machines; absolute times are not: they depend on the machine "
    "and on its load at the time."
)


class SpeedReportError(ValueError):
    """A benchmark JSON file that cannot be turned into a table (unreadable, not
    pytest-benchmark's format, or a group with two baselines); the message names the file."""


def load_run(path: str | os.PathLike) -> dict[str, Any]:
    """Read one pytest-benchmark JSON file (``--benchmark-json``).

    Args:
        path: the file.

    Returns:
        The parsed object: ``machine_info``, ``datetime``, ``benchmarks`` (each with
        ``group``, ``name``, ``stats`` in seconds, ``extra_info``), maybe ``commit_info``.

    Raises:
        SpeedReportError: unreadable, not JSON, or without a ``benchmarks`` list whose entries
            have ``name`` and ``stats.min`` / ``stats.median``.
    """
    try:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpeedReportError(f"{path}: cannot read a benchmark JSON file ({err})") from err
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list):
        raise SpeedReportError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    for case in run["benchmarks"]:
        stats = case.get("stats") if isinstance(case, dict) else None
        if not isinstance(stats, dict) or "name" not in case or not all(
            isinstance(stats.get(key), (int, float)) for key in ("min", "median")
        ):
            raise SpeedReportError(f"{path}: a benchmark entry lacks 'name' or numeric 'stats.min' / 'stats.median'")
    return run


def _cell(text: Any) -> str:
    """A markdown table cell: ``|`` escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ms(seconds: float) -> str:
    """Seconds as milliseconds, 3 significant decimals for small values."""
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def _run_header(path: str | os.PathLike, run: dict[str, Any]) -> list[str]:
    """The lines saying where and when a run was measured: machine, threads, date, commit."""
    machine = run.get("machine_info") or {}
    cpu = machine.get("cpu") or {}
    cases = run["benchmarks"]
    devices = sorted({str(c.get("extra_info", {}).get("device")) for c in cases if c.get("extra_info", {}).get("device")})
    threads = machine.get("torch_threads")
    if threads is None:  # older runs: only the per-case extra_info has it
        found = sorted({c.get("extra_info", {}).get("torch_threads") for c in cases} - {None})
        threads = ", ".join(map(str, found)) or "not recorded"
    cpu_text = cpu.get("brand_raw") or machine.get("processor") or "unknown CPU"
    if cpu.get("count"):
        cpu_text += f", {cpu['count']} logical cores"
    if cpu.get("hz_advertised_friendly"):
        cpu_text += f", {cpu['hz_advertised_friendly']}"
    if machine.get("torch_cpu_capability"):
        cpu_text += f", torch kernels {machine['torch_cpu_capability']}"
    system = " ".join(str(machine[k]) for k in ("system", "release", "machine") if machine.get(k))
    software = f"Python {machine.get('python_version', '?')}"
    if machine.get("torch_version"):
        software += f", torch {machine['torch_version']}"
    lines = [
        f"## Run `{Path(path).name}`",
        "",
        f"- machine: {cpu_text}; {system or 'unknown system'} (node `{machine.get('node', '?')}`)",
        f"- threads: torch {threads}; OMP_NUM_THREADS {machine.get('omp_num_threads', 'not recorded')}",
        f"- device: {', '.join(devices) or 'not recorded'}"
        + (f" ({machine['cuda_device']})" if machine.get("cuda_device") else ""),
        f"- software: {software}",
        f"- date: {run.get('datetime', 'not recorded')}",
    ]
    commit = run.get("commit_info") or {}
    if commit.get("id"):
        lines.append(f"- commit: `{commit['id'][:12]}`" + (" (with uncommitted changes)" if commit.get("dirty") else ""))
    if machine.get("load_average_1_5_15_min"):
        load = ", ".join(f"{v:.2f}" for v in machine["load_average_1_5_15_min"])
        lines.append(f"- load average at the start (1, 5, 15 min): {load}")
    return lines


def _groups(path: str | os.PathLike, run: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None, list[dict[str, Any]]]]:
    """``(group, baseline case or None, cases baseline first)`` in the order groups first appear."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for case in run["benchmarks"]:
        grouped.setdefault(str(case.get("group") or "(no group)"), []).append(case)
    result = []
    for group, cases in grouped.items():
        baselines = [c for c in cases if (c.get("extra_info") or {}).get("baseline")]
        if len(baselines) > 1:
            names = ", ".join(c["name"] for c in baselines)
            raise SpeedReportError(f"{path}: group {group!r} has {len(baselines)} baselines ({names}); it needs one")
        baseline = baselines[0] if baselines else None
        ordered = ([baseline] if baseline else []) + [c for c in cases if c is not baseline]
        result.append((group, baseline, ordered))
    return result


def _run_table(path: str | os.PathLike, run: dict[str, Any]) -> list[str]:
    """The markdown table of one run: one row per case, grouped, ratios against the group's baseline."""
    lines = [
        "| group | case | rounds | min (ms) | median (ms) | min / baseline | median / baseline | speed-up (min) "
        "| images/s (median) | max abs diff vs reference | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for group, baseline, cases in _groups(path, run):
        for case in cases:
            stats, extra = case["stats"], case.get("extra_info") or {}
            if case is baseline:
                ratio_min = ratio_median = "baseline"
                speedup = "1.00x"
            elif baseline is not None and baseline["stats"]["min"] > 0 and baseline["stats"]["median"] > 0:
                ratio_min = f"{stats['min'] / baseline['stats']['min']:.3f}"
                ratio_median = f"{stats['median'] / baseline['stats']['median']:.3f}"
                speedup = f"{baseline['stats']['min'] / stats['min']:.2f}x" if stats["min"] > 0 else "—"
            else:
                ratio_min = ratio_median = speedup = "—"
            per_s = extra.get("images_per_s")
            if per_s is None and extra.get("images") and stats["median"] > 0:
                per_s = extra["images"] / stats["median"]
            diff = extra.get("max_abs_diff_vs_reference")
            lines.append(
                "| " + " | ".join(_cell(v) for v in (
                    group, case["name"], stats.get("rounds", "?"), _ms(stats["min"]), _ms(stats["median"]),
                    ratio_min, ratio_median, speedup,
                    "—" if per_s is None else f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.1f}",
                    "—" if diff is None else f"{diff:.1e}", extra.get("note", ""),
                )) + " |"
            )
    return lines


def speed_table(benchmark_json_paths: Sequence[str | os.PathLike]) -> str:
    """Markdown speed report of pytest-benchmark JSON files, one section per file (run).

    Args:
        benchmark_json_paths: files written by ``pytest --benchmark-json``; times in their
            ``stats`` are in seconds.

    Returns:
        A markdown document: a title and the note that ratios, not absolute times, are
        comparable; then per run its machine, threads, device, date and commit, and a table
        with per case: rounds, min and median time (ms), min / baseline min and median /
        baseline median of its group (dimensionless; below 1 is faster than the baseline),
        the speed-up ``baseline min / min``, images per second from the median when the case
        records ``extra_info["images"]``, ``extra_info["max_abs_diff_vs_reference"]`` and the
        case's ``extra_info["note"]`` (free text: NFE, harness share...).

    Raises:
        SpeedReportError: no paths, or a file that cannot be read as a benchmark run (see
            :func:`load_run`), or a group with two baselines.
    """
    if not benchmark_json_paths:
        raise SpeedReportError("no benchmark JSON files given")
    runs = [(path, load_run(path)) for path in benchmark_json_paths]
    lines = [
        "# Speed",
        "",
        f"Generated by `python -m inpaintbench.report.speed` from {len(runs)} pytest-benchmark run(s). "
        "Each group's baseline is its per-image reference loop (`extra_info.baseline`).",
        "",
        f"**{RATIO_NOTE}**",
    ]
    for path, run in runs:
        lines += ["", *_run_header(path, run), "", *_run_table(path, run)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``BENCH.json [...] [--out FILE]``. Returns the exit status: 0, or
    :data:`EXIT_BAD_INPUT` with one line on stderr for an unusable file."""
    parser = argparse.ArgumentParser(
        prog="python -m inpaintbench.report.speed",
        description="Markdown speed table (min, median, ratio to each group's baseline) from pytest-benchmark JSON files.",
    )
    parser.add_argument("json", nargs="+", help="pytest-benchmark JSON files (--benchmark-json), one run each")
    parser.add_argument("--out", help="markdown file to write (default: print)")
    args = parser.parse_args(argv)
    try:
        text = speed_table(args.json)
    except SpeedReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
