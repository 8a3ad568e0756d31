"""Speed of the metrics: batched torch SSIM / PSNR against a per-image scikit-image loop,
and LPIPS. Each batched benchmark also checks that its values equal the reference's.

Run: ``python -m pytest benchmarks/perf/test_perf_metrics.py -q --benchmark-only``; compare
the ``min`` column within a group (the skimage loop is the baseline of its group).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaintbench.metrics import compute_image_metrics, psnr, ssim

WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "lpips"

# (images, side): a batch of many small images, and fewer large ones.
CASES = [(64, 64), (8, 256)]


def image_pair(count: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(count * side)
    x = torch.rand(count, 3, side, side, generator=gen)
    return x, (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def skimage_ssim_loop(x_np, y_np) -> torch.Tensor:
    return torch.tensor([
        structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=1.0, channel_axis=0)
        for a, b in zip(x_np, y_np)
    ], dtype=torch.float64)


def skimage_psnr_loop(x_np, y_np) -> torch.Tensor:
    return torch.tensor([peak_signal_noise_ratio(b, a, data_range=1) for a, b in zip(x_np, y_np)], dtype=torch.float64)


@pytest.mark.parametrize(("count", "side"), CASES, ids=[f"{n}x{s}px" for n, s in CASES])
def test_ssim_torch_batched(benchmark, timed, device, count, side):
    benchmark.group = f"ssim {count} images {side}x{side}"
    x, y = image_pair(count, side)
    got = timed(ssim, x.to(device), y.to(device))
    diff = (got.cpu() - skimage_ssim_loop(x.double().numpy(), y.double().numpy())).abs().max().item()
    benchmark.extra_info["max_abs_diff_vs_skimage"] = diff
    assert diff < 1e-4


@pytest.mark.parametrize(("count", "side"), CASES, ids=[f"{n}x{s}px" for n, s in CASES])
def test_ssim_skimage_loop(benchmark, timed, count, side):
    benchmark.group = f"ssim {count} images {side}x{side}"
    x, y = image_pair(count, side)
    timed(skimage_ssim_loop, x.double().numpy(), y.double().numpy())


def test_psnr_torch_batched(benchmark, timed, device):
    benchmark.group = "psnr 64 images 64x64"
    x, y = image_pair(64, 64)
    got = timed(psnr, x.to(device), y.to(device), rounds=20)
    diff = (got.cpu() - skimage_psnr_loop(x.double().numpy(), y.double().numpy())).abs().max().item()
    benchmark.extra_info["max_abs_diff_vs_skimage"] = diff
    assert diff < 1e-4


def test_psnr_skimage_loop(benchmark, timed):
    benchmark.group = "psnr 64 images 64x64"
    x, y = image_pair(64, 64)
    timed(skimage_psnr_loop, x.double().numpy(), y.double().numpy(), rounds=20)


@pytest.fixture(scope="module")
def lpips_alex(device):
    if not (WEIGHTS / "alexnet_features.pth").is_file():
        pytest.skip(f"LPIPS backbone weights not found in {WEIGHTS}")
    from inpaintbench.lpips_metric import LPIPSMetric

    return LPIPSMetric("alex", weights=WEIGHTS).to(device)


def test_lpips_alex(benchmark, timed, device, lpips_alex):
    benchmark.group = "lpips 64 images 64x64"
    x, y = image_pair(64, 64)
    got = timed(lpips_alex, x.to(device), y.to(device))
    assert got.shape == (64,) and (got > 0).all()


def test_compute_image_metrics_with_lpips(benchmark, timed, device, lpips_alex):
    benchmark.group = "all metrics 64 images 64x64"
    x, y = image_pair(64, 64)
    mask = torch.zeros(64, 1, 64, 64, dtype=torch.bool)
    mask[..., 16:48, 16:48] = True
    values = timed(compute_image_metrics, x.to(device), y.to(device), mask.to(device), lpips=lpips_alex)
    assert set(values) >= {"psnr", "ssim", "lpips", "boundary_mae"}
