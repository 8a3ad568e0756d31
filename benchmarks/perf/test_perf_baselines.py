"""Speed of the classical baselines at 64x64 and 256x256 (pytest-benchmark, not in the default run).

Run: ``python -m pytest benchmarks/perf -q --benchmark-only --benchmark-json=perf.json``;
compare with a saved run: ``--benchmark-compare=<saved id> --benchmark-compare-fail=mean:50%``.
The benchmarked call ends with a CUDA synchronize, so GPU timings count the kernels, not the launch.
"""

from __future__ import annotations

import pytest
import torch

from inpaintbench.api import apply_mask
from inpaintbench.registry import mask_registry, method_registry
from inpaintbench.seeding import make_generator

CLASSICAL = [n for n in method_registry().names() if method_registry().entry(n).group == "classical"]


def _inputs(size: int, device: torch.device):
    gen = make_generator(0, "perf", size)
    yy, xx = torch.meshgrid(torch.linspace(0, 6, size), torch.linspace(0, 6, size), indexing="ij")
    image = (0.5 + 0.25 * torch.sin(xx + yy) + 0.1 * torch.rand(4, 3, size, size, generator=gen)).clamp(0, 1)
    mask = mask_registry().create("strokes-medium")(4, size, size, generator=gen)
    return apply_mask(image, mask).to(device), mask.to(device)


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("name", CLASSICAL)
def test_baseline_speed(benchmark, timed, device, name, size):
    method = method_registry().create(name).to(device)
    masked, mask = _inputs(size, device)
    benchmark.extra_info.update({"batch": 4, "size": size})
    out = timed(method.inpaint, masked, mask, generator=make_generator(0, "perf-method"), rounds=3)
    assert out.shape == masked.shape
