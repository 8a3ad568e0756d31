"""Speed of the classical baselines at 64x64 and 256x256 (pytest-benchmark, not in the default run).

Run: ``python -m pytest benchmarks/perf -q --benchmark-only --benchmark-json=perf.json``;
compare with a saved run: ``--benchmark-compare=<saved id> --benchmark-compare-fail=mean:50%``.
The benchmarked call ends with a CUDA synchronize, so GPU timings count the kernels, not the launch.

``test_heat_solver_speed`` times pde-heat's two solvers on the same inputs (``-k heat``);
each iterative case stores its largest absolute difference from the exact direct solution in
``extra_info["max_abs_diff_vs_direct"]`` (shown with ``--benchmark-json``).
"""

from __future__ import annotations

import pytest
import torch

from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask
from inpaintbench.core.registry import mask_registry, method_registry
from inpaintbench.core.seeding import make_generator

CLASSICAL = [n for n in method_registry().names() if method_registry().entry(n).group == "classical"]
BATCH = 4


def _inputs(size: int, device: torch.device, mask_preset: str = "strokes-medium") -> tuple[torch.Tensor, torch.Tensor]:
    """``BATCH`` RGB images (a smooth gradient plus noise) and stroke masks of ``mask_preset``,
    seeded by the size alone: float32 ``[4, 3, size, size]`` in [0, 1], holes zero-filled,
    and bool ``[4, 1, size, size]`` (True = hole), both on ``device``."""
    gen = make_generator(0, "perf", size)
    yy, xx = torch.meshgrid(torch.linspace(0, 6, size), torch.linspace(0, 6, size), indexing="ij")
    image = (0.5 + 0.25 * torch.sin(xx + yy) + 0.1 * torch.rand(BATCH, 3, size, size, generator=gen)).clamp(0, 1)
    mask = mask_registry().create(mask_preset)(BATCH, size, size, generator=gen)
    return apply_mask(image, mask).to(device), mask.to(device)


def _rng(device: torch.device) -> SampleRNG:
    """One generator per benchmark image, on ``device`` (the classical baselines draw none)."""
    return SampleRNG.for_samples(0, "perf-method", sample_ids=[str(i) for i in range(BATCH)], device=device)


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("name", CLASSICAL)
def test_baseline_speed(benchmark, timed, device, name, size):
    method = method_registry().create(name).to(device)
    masked, mask = _inputs(size, device)
    benchmark.extra_info.update({"batch": BATCH, "size": size})
    out = timed(method.inpaint, masked, mask, rng=_rng(device), rounds=3)
    assert out.shape == masked.shape


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("mask_preset", ["strokes-medium", "wide"])
@pytest.mark.parametrize("solver", ["direct", "iterative"])
def test_heat_solver_speed(benchmark, timed, device, solver, mask_preset, size):
    method = method_registry().create("pde-heat", solver=solver).to(device)
    masked, mask = _inputs(size, device, mask_preset)
    benchmark.extra_info.update({"batch": BATCH, "size": size, "mask": mask_preset,
                                 "hole_fraction": float(mask.float().mean())})
    out = timed(method.inpaint, masked, mask, rng=_rng(device), rounds=3)
    assert out.shape == masked.shape
    if solver == "iterative":
        exact = method_registry().create("pde-heat", solver="direct").inpaint(masked, mask, rng=_rng(device))
        benchmark.extra_info["max_abs_diff_vs_direct"] = float((out - exact).abs().max())
