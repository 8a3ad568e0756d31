"""The one timing helper: wall-clock of a call, correct on CUDA and on the CPU."""

from __future__ import annotations

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
