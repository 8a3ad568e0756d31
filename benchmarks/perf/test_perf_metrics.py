"""Speed of the metrics: batched torch PSNR / SSIM against a per-image scikit-image loop at
32, 64 and 256 px, and LPIPS (alex) throughput at 64 and 256 px against a per-image loop of
the same metric. Each batched benchmark also checks that its values equal the reference's.

Run: ``python -m pytest benchmarks/perf/test_perf_metrics.py -q --benchmark-only
--benchmark-json=perf_metrics.json``; compare the ``min`` column within a group (the
per-image loop, ``extra_info["baseline"]``, is the baseline of its group). Turn the JSON
into a table of ratios with ``python -m inpaintbench.report.speed perf_metrics.json``.

Targets (issues #15 and #22), on one torch thread (``$INPAINTBENCH_PERF_THREADS``, default 1):
PSNR at least as fast as the scikit-image loop and as torchmetrics' batched PSNR, on either
memory layout; SSIM at least 3x faster than scikit-image, at every size.

``extra_info`` of every case: ``images`` (the batch), ``side`` (px), ``device``,
``torch_threads``; batched cases add ``max_abs_diff_vs_reference``, LPIPS cases
``images_per_s`` (from the median round), PSNR cases ``layout`` (``nchw`` or ``channels_last``:
PSNR at least as fast as scikit-image on the same memory in both, issue #22).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaintbench.core.images import composite
from inpaintbench.metrics.table import compute_image_metrics, psnr, ssim

WEIGHTS = Path(os.environ.get("INPAINTBENCH_LPIPS_WEIGHTS") or Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "lpips")

# (images, side): many small images, and fewer large ones (about 0.2 to 1.6 Mpx per batch).
CASES = [(64, 32), (64, 64), (8, 256)]
CASE_IDS = [f"{n}x{s}px" for n, s in CASES]
# LPIPS is ~100x slower per pixel: fewer images, and the two sizes the issue asks for.
LPIPS_CASES = [(16, 64), (4, 256)]
LPIPS_IDS = [f"{n}x{s}px" for n, s in LPIPS_CASES]

# The tolerances of tests/reference/test_metrics.py (scikit-image agreement).
SSIM_TOLERANCE = 1e-4
PSNR_TOLERANCE = 1e-4  # dB
# Batched vs one-image convolutions may pick different float32 kernels.
LPIPS_TOLERANCE = 1e-5


def image_pair(count: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded float32 pair ``[count, 3, side, side]`` in [0, 1]: noise and a noisier copy."""
    gen = torch.Generator().manual_seed(count * side)
    x = torch.rand(count, 3, side, side, generator=gen)
    return x, (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def skimage_ssim_loop(x_np, y_np) -> torch.Tensor:
    """scikit-image's SSIM per image with the settings :func:`ssim` promises: float64 ``[B]``."""
    return torch.tensor([
        structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=1.0, channel_axis=0)
        for a, b in zip(x_np, y_np)
    ], dtype=torch.float64)


def skimage_psnr_loop(x_np, y_np) -> torch.Tensor:
    """scikit-image's PSNR per image (``data_range=1``), in dB: float64 ``[B]``."""
    return torch.tensor([peak_signal_noise_ratio(b, a, data_range=1) for a, b in zip(x_np, y_np)], dtype=torch.float64)


def describe(benchmark, group: str, count: int, side: int, baseline: bool = False) -> None:
    """Name the group and record the case's size (and whether it is the group's baseline)."""
    benchmark.group = f"{group} {count} images {side}x{side}"
    benchmark.extra_info.update(images=count, side=side, baseline=baseline)


def record_diff(benchmark, got: torch.Tensor, reference: torch.Tensor, tolerance: float) -> None:
    """Store the largest absolute difference from the reference and assert it is within tolerance."""
    diff = (got.cpu().double() - reference.double()).abs().max().item()
    benchmark.extra_info["max_abs_diff_vs_reference"] = diff
    assert diff < tolerance, f"batched values differ from the reference by {diff:.3g} (tolerance {tolerance:g})"


@pytest.mark.parametrize(("count", "side"), CASES, ids=CASE_IDS)
def test_ssim_torch_batched(benchmark, timed, device, count, side):
    describe(benchmark, "ssim", count, side)
    x, y = image_pair(count, side)
    got = timed(ssim, x.to(device), y.to(device))
    record_diff(benchmark, got, skimage_ssim_loop(x.double().numpy(), y.double().numpy()), SSIM_TOLERANCE)


@pytest.mark.parametrize(("count", "side"), CASES, ids=CASE_IDS)
def test_ssim_skimage_loop(benchmark, timed, count, side):
    describe(benchmark, "ssim", count, side, baseline=True)
    x, y = image_pair(count, side)
    timed(skimage_ssim_loop, x.double().numpy(), y.double().numpy())


#: Memory layouts PSNR is timed on (issue #22): NCHW, and channels-last (NHWC in memory), the
#: layout of a method that ran with ``channels_last = true``; scikit-image gets the same memory.
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("count", "side"), CASES, ids=CASE_IDS)
def test_psnr_torch_batched(benchmark, timed, device, count, side, layout):
    describe(benchmark, f"psnr {layout}", count, side)
    benchmark.extra_info["layout"] = layout
    x, y = (t.contiguous(memory_format=LAYOUTS[layout]) for t in image_pair(count, side))
    got = timed(psnr, x.to(device), y.to(device), rounds=20)
    record_diff(benchmark, got, skimage_psnr_loop(x.double().numpy(), y.double().numpy()), PSNR_TOLERANCE)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("count", "side"), CASES, ids=CASE_IDS)
def test_psnr_skimage_loop(benchmark, timed, count, side, layout):
    describe(benchmark, f"psnr {layout}", count, side, baseline=True)
    benchmark.extra_info["layout"] = layout
    # .double() keeps the memory format: numpy sees the same (strided) layout as torch.
    x, y = (t.contiguous(memory_format=LAYOUTS[layout]).double().numpy() for t in image_pair(count, side))
    timed(skimage_psnr_loop, x, y, rounds=20)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("count", "side"), CASES, ids=CASE_IDS)
def test_psnr_runner_path(benchmark, timed, device, count, side, layout):
    """PSNR as the runner computes it: :func:`compute_image_metrics` checks the batch once for
    all its metrics, then each runs unchecked. The public :func:`psnr` checks every value of
    both images itself (NaN, range), two passes torchmetrics does not make."""
    from inpaintbench.metrics.pixel_errors import _psnr

    describe(benchmark, f"psnr {layout}", count, side)
    benchmark.extra_info.update(layout=layout, note="unchecked: inputs validated once per batch for every metric")
    x, y = (t.contiguous(memory_format=LAYOUTS[layout]).to(device) for t in image_pair(count, side))
    got = timed(_psnr, x, y, None, rounds=20)
    record_diff(benchmark, got, skimage_psnr_loop(x.cpu().double().numpy(), y.cpu().double().numpy()),
                PSNR_TOLERANCE)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("count", "side"), CASES, ids=CASE_IDS)
def test_psnr_torchmetrics_batched(benchmark, timed, device, count, side, layout):
    """torchmetrics' functional PSNR per image (``reduction="none"`` over ``dim=(1, 2, 3)``: one
    value per image, as the suite's), on the same memory."""
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

    describe(benchmark, f"psnr {layout}", count, side)
    benchmark.extra_info.update(layout=layout, note="torchmetrics, reduction none")
    x, y = (t.contiguous(memory_format=LAYOUTS[layout]).to(device) for t in image_pair(count, side))
    got = timed(lambda a, b: tm_psnr(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3)), x, y, rounds=20)
    record_diff(benchmark, got, skimage_psnr_loop(x.cpu().double().numpy(), y.cpu().double().numpy()),
                PSNR_TOLERANCE)


@pytest.fixture(scope="module")
def lpips_alex(device):
    if not (WEIGHTS / "alexnet_features.pth").is_file():
        pytest.skip(f"LPIPS backbone weights not found in {WEIGHTS}")
    from inpaintbench.metrics.lpips_metric import LPIPSMetric

    return LPIPSMetric("alex", weights=WEIGHTS).to(device)


def lpips_loop(metric, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same metric one image at a time: float32 ``[B]``."""
    return torch.cat([metric(x[i : i + 1], y[i : i + 1]) for i in range(x.shape[0])])


def record_throughput(benchmark, count: int) -> None:
    """``images_per_s`` from the median round (absent with ``--benchmark-disable``)."""
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None and stats.median > 0:
        benchmark.extra_info["images_per_s"] = count / stats.median


@pytest.mark.parametrize(("count", "side"), LPIPS_CASES, ids=LPIPS_IDS)
def test_lpips_alex_batched(benchmark, timed, device, lpips_alex, count, side):
    describe(benchmark, "lpips alex", count, side)
    x, y = image_pair(count, side)
    x, y = x.to(device), y.to(device)
    got = timed(lpips_alex, x, y, rounds=3)
    record_throughput(benchmark, count)
    assert got.shape == (count,) and (got > 0).all()
    record_diff(benchmark, got, lpips_loop(lpips_alex, x, y), LPIPS_TOLERANCE)


@pytest.mark.parametrize(("count", "side"), LPIPS_CASES, ids=LPIPS_IDS)
def test_lpips_alex_per_image_loop(benchmark, timed, device, lpips_alex, count, side):
    describe(benchmark, "lpips alex", count, side, baseline=True)
    x, y = image_pair(count, side)
    timed(lpips_loop, lpips_alex, x.to(device), y.to(device), rounds=3)
    record_throughput(benchmark, count)


def test_compute_image_metrics_with_lpips(benchmark, timed, device, lpips_alex):
    describe(benchmark, "all metrics", 64, 64)
    x, y = image_pair(64, 64)
    mask = torch.zeros(64, 1, 64, 64, dtype=torch.bool)
    mask[..., 16:48, 16:48] = True
    x, y, mask = x.to(device), y.to(device), mask.to(device)
    # the runner composites once (the task's composite) and hands both outputs to the metrics
    values = timed(compute_image_metrics, x, y, mask, lpips=lpips_alex, composited=composite(y, x, mask))
    assert set(values) >= {"psnr", "ssim", "lpips", "boundary_mae"}
