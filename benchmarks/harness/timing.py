"""The one timing helper: wall-clock of a call, correct on CUDA and on the CPU."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class Timed:
    """What :func:`timed_call` measured.

    Attributes:
        value: the call's return value.
        seconds: wall-clock seconds of the call (CUDA work included: synchronized).
        peak_memory_bytes: peak CUDA memory allocated during the call; None on the CPU,
            where torch keeps no per-call allocator statistics.
    """

    value: Any
    seconds: float
    peak_memory_bytes: int | None


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device`` (no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], Any], device: torch.device | str) -> Timed:
    """Run ``fn()`` and time it.

    On CUDA the GPU is synchronized before the clock starts and after ``fn`` returns (CUDA
    launches are asynchronous, so an unsynchronized clock only measures the launch), and the
    allocator's peak is reset so the peak memory belongs to this call alone. ``perf_counter``
    is used on both devices: it includes the host-side work a user also waits for.
    """
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    value = fn()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return Timed(value, seconds, peak)


def reference_workload_seconds(repeats: int = 7) -> float:
    """Seconds of a fixed CPU workload on one torch thread (ten 3x3 convolutions of a 32-px,
    64-channel batch of 8, the shape of a small UNet's layer), the median of ``repeats`` runs:
    how fast this machine is right now. The gate divides its time ratios by this one's, so
    a machine that is busy (or slower) slows the reference as much as the methods, and only a
    method that got slower by itself fails (``inpaintbench check``)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 64, 32, 32, generator=generator)
    weight = torch.randn(64, 64, 3, 3, generator=generator) * 0.05
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            y = x
            for _ in range(10):
                y = torch.nn.functional.conv2d(y, weight, padding=1).tanh()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times)
