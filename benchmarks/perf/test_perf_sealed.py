"""What sealed execution costs: the default suite's wall time sealed vs unsealed (issue 21).

Sealing is the default for every method when it costs at most 3 % of the default run's wall
time, else only for the methods of entry points (``SEALED_BY_DEFAULT`` in
:mod:`inpaintbench.harness.unit_runner`). The two runs alternate within each round (unsealed,
sealed, or the reverse on odd rounds) so that a machine whose load drifts slows both alike;
each round runs into fresh folders (nothing resumed). The per-run times and the overhead go
to ``extra_info``:

    OMP_NUM_THREADS=1 python -m pytest benchmarks/perf/test_perf_sealed.py --benchmark-only \\
        --benchmark-json reports/perf/sealed-benchmark.json

``$INPAINTBENCH_PERF_SEALED_ROUNDS`` (default 2) rounds; ``$INPAINTBENCH_PERF_SEALED_SUITE``
another suite (default ``default``, on the CPU with one thread as the README's timing).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import time

from inpaintbench.harness.runner import run_suite
from inpaintbench.harness.suite import load_suite

_runs = itertools.count()


def test_sealed_overhead_on_the_default_suite(benchmark, tmp_path):
    suite = load_suite(os.environ.get("INPAINTBENCH_PERF_SEALED_SUITE", "default"))
    suite = dataclasses.replace(suite, device="cpu", num_threads=1)
    rounds = int(os.environ.get("INPAINTBENCH_PERF_SEALED_ROUNDS", "2"))
    times: dict[bool, list[float]] = {False: [], True: []}

    def one(sealed: bool) -> None:
        start = time.perf_counter()
        summary = run_suite(dataclasses.replace(suite, sealed=sealed), tmp_path / f"run-{next(_runs)}",
                            progress=False)
        times[sealed].append(time.perf_counter() - start)
        assert summary.errors == 0

    def pair() -> None:
        order = (False, True) if len(times[True]) % 2 == 0 else (True, False)
        for sealed in order:
            one(sealed)

    benchmark.group = "sealed execution overhead"
    benchmark.pedantic(pair, rounds=rounds, iterations=1, warmup_rounds=0)
    plain, sealed = statistics.median(times[False]), statistics.median(times[True])
    benchmark.extra_info.update(
        suite=suite.name, unsealed_s=times[False], sealed_s=times[True], overhead=sealed / plain - 1,
        note=f"{suite.name}: sealed {sealed:.1f} s vs unsealed {plain:.1f} s (medians of {rounds}): "
             f"{sealed / plain - 1:+.1%}")
