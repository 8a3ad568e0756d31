"""Shared fixtures of the perf benchmarks (pytest-benchmark; not part of the default test run).

Run: ``python -m pytest benchmarks/perf -q --benchmark-only`` (add ``--benchmark-json=FILE`` to
keep the numbers). Fixtures:

* ``device``: ``torch.device``, CUDA when available, else CPU; ``$INPAINTBENCH_PERF_DEVICE``
  (e.g. ``cpu``) overrides.
* ``$INPAINTBENCH_PERF_THREADS``: torch's CPU thread count for the whole session, default
  ``1``: batched torch then competes with single-threaded per-image loops on equal terms,
  and a shared, oversubscribed machine cannot stall it at thread barriers (measured here:
  2 threads on 2 busy cores ran SSIM 6x slower than 1). ``0`` keeps torch's default.
* ``timed(fn, *args, rounds=5, warmup_rounds=1, **kwargs)``: times ``fn(*args, **kwargs)``
  with ``benchmark.pedantic`` (one call per round) and returns its last result; on CUDA
  every call ends with ``torch.cuda.synchronize`` so the time covers the kernels, not
  just their launch.

The JSON's ``machine_info`` also gets what the timings depend on beyond the CPU that
pytest-benchmark records: torch's version, thread count and CPU kernel level
(``get_cpu_capability``), ``$OMP_NUM_THREADS``, the CUDA device if any, and the load average
at the start (a shared machine's absolute times are not comparable; see
``inpaintbench.report.speed``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    threads = int(os.environ.get("INPAINTBENCH_PERF_THREADS", "1"))
    if threads > 0:
        torch.set_num_threads(threads)


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: no error where the plugin is absent
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add torch's settings and the machine's load to the benchmark JSON's ``machine_info``."""
    from inpaintbench.harness.environment import timing_settings

    machine_info.update(timing_settings())


@pytest.fixture(scope="session")
def device() -> torch.device:
    chosen = os.environ.get("INPAINTBENCH_PERF_DEVICE")
    if chosen:
        return torch.device(chosen)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def timed(benchmark, device) -> Callable[..., Any]:
    def run(fn: Callable[..., Any], *args: Any, rounds: int = 5, warmup_rounds: int = 1, **kwargs: Any) -> Any:
        def call() -> Any:
            out = fn(*args, **kwargs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return out

        benchmark.extra_info["device"] = str(device)
        benchmark.extra_info["torch_threads"] = torch.get_num_threads()
        return benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)

    return run
