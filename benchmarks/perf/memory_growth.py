"""Peak memory of a run against the number of images (issue #15: the streaming runner).

Writes ``N`` synthetic 256x256 RGB PNGs (seeded smooth patterns with noise), runs
``inpaintbench run`` on the first 60 and on all 600 of them in a child process each, and
reads each child's peak resident set size (``wait4``'s ``ru_maxrss``). A runner that stacks the
dataset holds 600 x 3 x 256 x 256 float32 = 472 MB more for the larger run; a streaming one
holds a batch.

Run: ``python benchmarks/perf/memory_growth.py --out reports/perf`` (about 2 minutes on 2
cores); writes ``MEMORY.md`` and ``memory-growth.json`` there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 256
COUNTS = (60, 600)
METHODS = "zero-fill,telea"


def write_images(folder: Path, count: int, side: int = SIDE) -> None:
    """``count`` seeded RGB PNGs of ``side`` x ``side`` pixels in ``folder`` (``00000.png``...)."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.meshgrid(np.linspace(0, 6, side), np.linspace(0, 6, side), indexing="ij")
    for i in range(count):
        rng = np.random.default_rng(i)
        phase = rng.uniform(0, 2 * np.pi, size=3)
        image = 0.5 + 0.3 * np.sin(xx[..., None] + yy[..., None] * 0.7 + phase) + 0.1 * rng.random((side, side, 3))
        Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")


def peak_rss_of(command: list[str], env: dict[str, str]) -> tuple[int, float]:
    """Run ``command``; its peak resident set size in bytes and its wall time in seconds."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    return usage.ru_maxrss * 1024, seconds  # Linux reports kilobytes


def render(rows: list[dict], command: str) -> str:
    """The MEMORY.md page of measured ``rows`` (``n_images``, ``peak_rss_bytes``, ``seconds``)."""
    small, large = rows[0], rows[-1]
    ratio = large["peak_rss_bytes"] / small["peak_rss_bytes"]
    lines = ["# Peak memory against the number of images", "",
             f"`inpaintbench run` of `{METHODS}` on synthetic {SIDE}x{SIDE} RGB images (one box mask, LPIPS on), "
             "each run in a fresh process; peak resident set size from `wait4`. Made by "
             f"`{command}` on {platform.node()} ({os.cpu_count()} CPUs), "
             f"{datetime.now(timezone.utc).date()}, one torch thread.", "",
             "| images | peak RSS (MB) | wall (s) |", "|---:|---:|---:|"]
    lines += [f"| {r['n_images']} | {r['peak_rss_bytes'] / 2**20:.0f} | {r['seconds']:.1f} |" for r in rows]
    stacked = (large["n_images"] - small["n_images"]) * 3 * SIDE * SIDE * 4 / 2**20
    lines += ["", f"Peak RSS of {large['n_images']} images / {small['n_images']} images: **{ratio:.3f}** "
              f"(target: within 1.2). Stacking the dataset, as the single-process runner before work units did, "
              f"would add {stacked:.0f} MB of float32 images to the larger run alone.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--out FOLDER`` (default ``reports/perf``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/perf")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="inpaintbench-memory-") as tmp:
        images = Path(tmp) / "images"
        write_images(images, max(COUNTS))
        for count in COUNTS:
            command = [sys.executable, "-m", "inpaintbench.cli", "run", "--datasets", "folder", "--data-root",
                       str(images), "--size", str(SIDE), "--n-images", str(count), "--masks", "box",
                       "--methods", METHODS, "--device", "cpu", "--out", str(Path(tmp) / f"out-{count}"),
                       "--no-report", "-q"]
            peak, seconds = peak_rss_of(command, env)
            rows.append({"n_images": count, "peak_rss_bytes": peak, "seconds": seconds})
            print(f"{count} images: peak RSS {peak / 2**20:.0f} MB, {seconds:.1f} s", flush=True)
    made_by = "python benchmarks/perf/memory_growth.py --out " + args.out
    (out / "memory-growth.json").write_text(json.dumps({"side": SIDE, "methods": METHODS, "rows": rows,
                                                        "command": made_by}, indent=1) + "\n")
    (out / "MEMORY.md").write_text(render(rows, made_by), encoding="utf-8")
    print(f"-> {out / 'MEMORY.md'}")


if __name__ == "__main__":
    main()
