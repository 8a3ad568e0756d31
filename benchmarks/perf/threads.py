"""Wall time of the default run against torch's thread count, on a quiet and on a loaded machine.

Runs ``inpaintbench run --no-report`` (the embedded default suite) in a fresh process and a
fresh results folder with ``--num-threads 1``, ``--num-threads 2`` and ``--workers 2`` (one
thread each), first alone, then beside a busy process spinning on one core (what a CI runner or a shared workstation is). On a loaded
machine a torch thread pool that waits at barriers for a descheduled thread loses far more
than the second thread gains, which is why a run's default is one thread per process.

Run: ``python benchmarks/perf/threads.py --out reports/perf`` (about 20 minutes on 2 cores, most
of it the two-thread run on the loaded machine; ``--reuse`` keeps the rows already in
``threads.json`` and measures the missing ones);
writes ``THREADS.md`` and ``threads.json`` there. Other jobs on the machine make the "quiet"
rows loaded too: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def _spin(stop: "multiprocessing.synchronize.Event") -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


#: (torch threads per process, worker processes) measured.
SETTINGS = ((1, 1), (2, 1), (1, 2))


def time_default_run(threads: int, workers: int, out: Path) -> float:
    """Seconds of one ``inpaintbench run --no-report`` of the default suite with ``threads``
    torch threads in each of ``workers`` processes (1: in process)."""
    command = [sys.executable, "-m", "inpaintbench.cli", "run", "--num-threads", str(threads), "--out", str(out),
               "--no-report", "-q", *(["--workers", str(workers)] if workers > 1 else [])]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    return time.perf_counter() - start


def render(rows: list[dict], command: str) -> str:
    """THREADS.md from ``rows`` (``threads``, ``workers``, ``loaded``, ``seconds``)."""
    by = {(r["threads"], r.get("workers", 1), r["loaded"]): r["seconds"] for r in rows}
    lines = ["# The default run against torch's thread count", "",
             f"`inpaintbench run --no-report --num-threads T` (the embedded default suite, fresh results folder, "
             f"fresh process each), on {platform.node()} ({os.cpu_count()} CPUs), "
             f"{datetime.now(timezone.utc).date()}; *loaded* = beside one process spinning on a core. "
             f"Made by `{command}`; ratios within this one run are what compare.", "",
             "| machine | 1 thread (s) | 2 threads (s) | 2 workers x 1 thread (s) | 2 threads / 1 | 2 workers / 1 |",
             "|---|---:|---:|---:|---:|---:|"]
    for loaded in (False, True):
        one, two, workers = by[(1, 1, loaded)], by[(2, 1, loaded)], by.get((1, 2, loaded))
        shown = "—" if workers is None else f"{workers:.1f}"
        ratio = "—" if workers is None else f"{workers / one:.2f}"
        lines.append(f"| {'loaded' if loaded else 'quiet'} | {one:.1f} | {two:.1f} | {shown} | {two / one:.2f} | {ratio} |")
    lines += ["", "Runs default to one torch thread per process (`--num-threads`, recorded in every run and "
              "unit record); use `--workers N` for parallelism.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--out FOLDER`` (default ``reports/perf``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/perf")
    parser.add_argument("--reuse", action="store_true", help="keep the rows already in threads.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = json.loads((out / "threads.json").read_text())["rows"] if args.reuse and (out / "threads.json").exists() else []
    done = {(r["threads"], r.get("workers", 1), r["loaded"]) for r in rows}
    with tempfile.TemporaryDirectory(prefix="inpaintbench-threads-") as tmp:
        for loaded in (False, True):
            stop = multiprocessing.Event()
            todo = [s for s in SETTINGS if (*s, loaded) not in done]
            spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True) if loaded and todo else None
            if spinner is not None:
                spinner.start()
            try:
                for threads, workers in SETTINGS:
                    if (threads, workers, loaded) in done:
                        continue
                    seconds = time_default_run(threads, workers, Path(tmp) / f"{threads}-{workers}-{loaded}")
                    rows.append({"threads": threads, "workers": workers, "loaded": loaded, "seconds": seconds})
                    print(f"threads {threads} x workers {workers}, {'loaded' if loaded else 'quiet'}: {seconds:.1f} s",
                          flush=True)
            finally:
                stop.set()
                if spinner is not None:
                    spinner.join()
    made_by = "python benchmarks/perf/threads.py --out " + args.out
    (out / "threads.json").write_text(json.dumps({"rows": rows, "command": made_by}, indent=1) + "\n")
    (out / "THREADS.md").write_text(render(rows, made_by), encoding="utf-8")
    print(f"-> {out / 'THREADS.md'}")


if __name__ == "__main__":
    main()
