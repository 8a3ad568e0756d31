"""PSNR, SSIM and region errors against scikit-image / SciPy references and their invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import composite
from inpaintbench.metrics.table import (
    METRICS,
    boundary_band,
    compute_image_metrics,
    masked_mae,
    masked_max_abs,
    masked_mse,
    metric_info,
    psnr,
    ssim,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CELEBA = SHARED / "data" / "celebahq-256" / "images"


def skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference: scikit-image per image, in float64, with the settings ours promises."""
    return torch.tensor([
        structural_similarity(
            a.double().numpy(), b.double().numpy(), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0, channel_axis=0,
        )
        for a, b in zip(x, y)
    ], dtype=torch.float64)


def skimage_psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.tensor(
        [peak_signal_noise_ratio(b.double().numpy(), a.double().numpy(), data_range=1) for a, b in zip(x, y)],
        dtype=torch.float64,
    )


def random_pair(batch: int, channels: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, size, size, generator=gen)
    y = (x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    return x, y


def natural_pair(channels: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-image's bundled photos, resized, against a noisy, shifted, blurred copy."""
    photos = [skimage.data.astronaut(), skimage.data.coffee()] if channels == 3 else [skimage.data.camera(), skimage.data.moon()]
    x = torch.stack([
        torch.from_numpy(resize(p, (size, size), anti_aliasing=True).astype(np.float32)).reshape(size, size, channels).permute(2, 0, 1)
        for p in photos
    ])
    gen = torch.Generator().manual_seed(seed)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    y = (0.9 * blurred + 0.05 + 0.03 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    return x.contiguous(), y


SIZES = [28, 64, 256]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", ["random", "natural"])
def test_ssim_and_psnr_match_scikit_image(kind, channels, size):
    x, y = random_pair(2, channels, size, seed=size + channels) if kind == "random" else natural_pair(channels, size, seed=size)
    ours, ref = ssim(x, y), skimage_ssim(x, y)
    assert ours.shape == (2,) and ours.dtype == torch.float64
    assert (ours - ref).abs().max() < 1e-4, (ours, ref)
    assert (psnr(x, y) - skimage_psnr(x, y)).abs().max() < 1e-4


def test_ssim_matches_scikit_image_on_flat_bright_images():
    # Nearly constant images are where E[x^2] - E[x]^2 cancels worst.
    gen = torch.Generator().manual_seed(3)
    x = torch.full((2, 3, 32, 32), 0.9) + 1e-3 * torch.rand(2, 3, 32, 32, generator=gen)
    y = x.clone()
    y[1] = 0.85
    assert (ssim(x, y) - skimage_ssim(x, y)).abs().max() < 1e-4


def test_ssim_matches_scikit_image_on_celebahq_photos():
    if not CELEBA.is_dir():
        pytest.skip(f"real photos not found at {CELEBA} (../shared/data is absent)")
    from PIL import Image

    files = sorted(CELEBA.glob("*.jpg"))[:2]
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1) for f in files])
    mask = torch.zeros(2, 1, 256, 256, dtype=torch.bool)
    mask[..., 64:192, 64:192] = True
    y = composite(torch.flip(x, dims=[-1]), x, mask)  # a plausible but wrong fill
    assert (ssim(x, y) - skimage_ssim(x, y)).abs().max() < 1e-4
    assert (psnr(x, y) - skimage_psnr(x, y)).abs().max() < 1e-4


def test_identical_images_give_ssim_one_and_psnr_inf():
    x, _ = random_pair(3, 3, 40, seed=1)
    assert torch.equal(ssim(x, x), torch.ones(3, dtype=torch.float64))
    assert torch.isposinf(psnr(x, x)).all()


def test_metrics_are_per_image_not_pooled():
    x, y = random_pair(4, 3, 32, seed=2)
    y[2] = x[2]  # one perfect image must not pull the others up, nor be pulled down
    batch_psnr, batch_ssim = psnr(x, y), ssim(x, y)
    assert torch.isposinf(batch_psnr[2]) and batch_ssim[2] == 1
    for i in range(4):
        assert torch.allclose(batch_psnr[i], psnr(x[i : i + 1], y[i : i + 1])[0], rtol=0, atol=1e-12)
        assert torch.allclose(batch_ssim[i], ssim(x[i : i + 1], y[i : i + 1])[0], rtol=0, atol=1e-12)


def test_psnr_value_and_symmetry():
    x = torch.zeros(1, 3, 8, 8)
    y = torch.full((1, 3, 8, 8), 0.25)
    assert psnr(x, y).item() == pytest.approx(10 * np.log10(16))
    assert torch.equal(psnr(x, y), psnr(y, x))


def test_hole_psnr_uses_only_region_pixels():
    x, y = random_pair(2, 3, 16, seed=4)
    region = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    region[0, :, 2:6, 3:9] = True
    region[1, :, 10:, :] = True
    y_far = torch.where(region, y, torch.rand(y.shape, generator=torch.Generator().manual_seed(5)))
    got = psnr(x, y_far, region=region)  # pixels outside the region must not matter
    for i in range(2):
        sel = region[i, 0].numpy()
        diff = (x[i].double().numpy() - y[i].double().numpy())[:, sel]
        assert got[i].item() == pytest.approx(-10 * np.log10(np.mean(diff**2)), abs=1e-9)
    assert torch.isposinf(psnr(x, torch.where(region, x, y), region=region)).all()


def test_masked_errors_match_numpy_and_empty_region_is_nan():
    x, y = random_pair(3, 3, 12, seed=6)
    gen = torch.Generator().manual_seed(7)
    region = torch.rand(3, 1, 12, 12, generator=gen) < 0.3
    region[2] = False
    mse, mae, mx = masked_mse(x, y, region), masked_mae(x, y, region), masked_max_abs(x, y, region)
    for i in range(2):
        diff = np.abs(x[i].double().numpy() - y[i].double().numpy())[:, region[i, 0].numpy()]
        assert mse[i].item() == pytest.approx(np.mean(diff**2), abs=1e-12)
        assert mae[i].item() == pytest.approx(np.mean(diff), abs=1e-12)
        assert mx[i].item() == pytest.approx(np.max(diff), abs=1e-12)
    assert mse[2].isnan() and mae[2].isnan() and mx[2].isnan()
    assert psnr(x, y, region=region)[2].isnan()
    assert masked_max_abs(x, x, region)[0].item() == 0.0


def scipy_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Reference band with SciPy morphology: dilation minus erosion; outside the image is
    neither hole nor known (erosion's border_value=1 keeps holes at the border uneroded)."""
    square = np.ones((2 * width + 1, 2 * width + 1), dtype=bool)
    out = []
    for m in mask[:, 0].numpy():
        out.append(ndi.binary_dilation(m, square) & ~ndi.binary_erosion(m, square, border_value=1))
    return torch.from_numpy(np.stack(out))[:, None]


@pytest.mark.parametrize("width", [1, 2, 3])
def test_boundary_band_matches_scipy_morphology(width):
    gen = torch.Generator().manual_seed(width)
    noise = torch.rand(3, 1, 24, 24, generator=gen)
    mask = torch.nn.functional.avg_pool2d(noise, 5, stride=1, padding=2) > 0.5  # blobby holes
    mask[2] = False
    mask[2, :, :10, :] = True  # a hole touching the image border
    band = boundary_band(mask, width)
    assert band.dtype == torch.bool and band.shape == mask.shape
    assert torch.equal(band, scipy_band(mask, width))


def test_boundary_band_straight_edge_has_width_on_each_side():
    mask = torch.zeros(1, 1, 10, 12, dtype=torch.bool)
    mask[..., :, 6:] = True  # right half missing
    band = boundary_band(mask, 2)
    assert torch.equal(band[0, 0].any(dim=0), torch.tensor([False] * 4 + [True] * 4 + [False] * 4))
    assert band[0, 0].all(dim=0).sum() == 4  # the full height, including the image border rows


def test_boundary_band_empty_for_all_hole_or_all_known():
    assert not boundary_band(torch.ones(1, 1, 8, 8, dtype=torch.bool), 2).any()
    assert not boundary_band(torch.zeros(1, 1, 8, 8, dtype=torch.bool), 2).any()


@pytest.mark.parametrize("width", [0, -1, 1.5, True])
def test_boundary_band_rejects_bad_width(width):
    with pytest.raises(InputError, match="width_px must be an integer >= 1"):
        boundary_band(torch.zeros(1, 1, 8, 8, dtype=torch.bool), width)


def test_bad_inputs_raise_clear_errors():
    x, y = random_pair(1, 3, 16, seed=8)
    with pytest.raises(InputError, match="same shape"):
        psnr(x, y[:, :1])
    with pytest.raises(InputError, match="float32"):
        ssim(x.double(), y.double())
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        psnr(x * 2, y)
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(x[..., :10, :10], y[..., :10, :10])
    with pytest.raises(InputError, match="region must be a bool"):
        masked_mse(x, y, torch.ones(1, 1, 16, 16))
    with pytest.raises(InputError, match="region must have shape"):
        masked_mae(x, y, torch.ones(1, 1, 8, 8, dtype=torch.bool))


def _hole_mask(batch: int, size: int) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size, dtype=torch.bool)
    mask[..., size // 4 : size // 2, size // 4 : 3 * size // 4] = True
    return mask


def test_compute_image_metrics_composites_and_splits_outputs():
    original, noisy = random_pair(2, 3, 32, seed=9)
    mask = _hole_mask(2, 32)
    raw = noisy.clone()
    raw[1] = torch.where(mask[1], noisy[1], original[1])  # image 1 keeps its known pixels exactly
    seen = []

    def fake_lpips(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.append((a.clone(), b.clone()))
        return torch.tensor([0.5, 0.25])

    values = compute_image_metrics(original, raw, mask, lpips=fake_lpips, band_px=2,
                                   composited=composite(raw, original, mask))
    # every row in table order, but for the other LPIPS backbones and DISTS (no network given)
    assert list(values) == [m.name for m in METRICS if m.name not in ("lpips_vgg", "lpips_squeeze", "dists")]
    assert all(v.shape == (2,) and v.dtype == torch.float64 for v in values.values())
    composited = composite(raw, original, mask)
    assert torch.equal(seen[0][0], composited) and torch.equal(seen[0][1], original)
    assert values["lpips"].tolist() == [0.5, 0.25]
    assert torch.equal(values["psnr"], psnr(composited, original))
    assert torch.equal(values["ssim"], ssim(composited, original))
    assert torch.equal(values["hole_psnr"], psnr(raw, original, region=mask))
    assert values["known_mse"][0] > 0 and values["known_mse"][1] == 0 and values["known_maxabs"][1] == 0
    assert torch.equal(values["known_mse"], masked_mse(raw, original, ~mask))
    # the boundary band sees the raw output: image 0's changed known pixels count there
    assert torch.equal(values["boundary_mae"], masked_mae(raw, original, boundary_band(mask, 2)))
    assert values["boundary_mae"][0] > values["boundary_mae"][1] > 0


def test_compute_image_metrics_without_lpips_and_with_all_hole_mask():
    original, raw = random_pair(1, 1, 28, seed=10)
    whole = torch.ones(1, 1, 28, 28, dtype=torch.bool)
    values = compute_image_metrics(original, raw, whole, composited=composite(raw, original, whole))
    assert "lpips" not in values
    assert values["known_mse"].isnan().all() and values["known_maxabs"].isnan().all()
    assert values["boundary_mae"].isnan().all()  # no edge when everything is missing
    assert torch.equal(values["hole_psnr"], values["psnr"])


def test_compute_image_metrics_rejects_nan_output():
    original, raw = random_pair(1, 3, 16, seed=11)
    raw[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="raw output contains NaN"):
        compute_image_metrics(original, raw, _hole_mask(1, 16), composited=original)


def test_metric_table_describes_directions():
    assert len({m.name for m in METRICS}) == len(METRICS)
    assert metric_info("psnr").higher_is_better and metric_info("psnr").arrow == "↑"
    assert not metric_info("lpips").higher_is_better and metric_info("lpips").arrow == "↓"
    assert {m.output for m in METRICS} == {"composited", "raw"}
    with pytest.raises(InputError, match="unknown metric 'psnrr'"):
        metric_info("psnrr")


# --- issue #15: the fast paths (one-pass validation, float32 SSIM, blocked PSNR) keep the values ---


def test_fast_image_check_refuses_exactly_like_the_api_check():
    from inpaintbench.core.images import check_image_batch
    from inpaintbench.metrics.table import _check_image

    good = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(12))
    bad = {
        "nan": good.clone().index_put_((torch.tensor(1), torch.tensor(2), torch.tensor(3), torch.tensor(4)), torch.tensor(float("nan"))),
        "+inf": torch.where(good > 0.9, float("inf"), good),
        "-inf": torch.where(good > 0.9, float("-inf"), good),
        "negative": good - 0.5,
        "above one": good + 0.5,
        "just above one": torch.where(good > 0.9, torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)), good),
        "float64": good.double(),
        "3-D": good[0],
        "2 channels": good[:, :2],
        "not a tensor": good.numpy(),
        "empty batch": good[:0],
    }
    for name, image in bad.items():
        with pytest.raises(Exception) as api_error:
            check_image_batch(image, "x")
        with pytest.raises(type(api_error.value)) as fast_error:
            _check_image(image, "x")
        assert str(fast_error.value) == str(api_error.value), name
    # Valid edge values: exact 0 and 1, -0.0 (>= 0 as a float, negative as bits), a denormal.
    edge = good.clone()
    edge[0, 0, 0, :4] = torch.tensor([0.0, 1.0, -0.0, 1e-45])
    check_image_batch(edge, "x")
    _check_image(edge, "x")


def step_pair(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Black and white halves with faint noise: the local E[x^2] - E[x]^2 cancels most there,
    and the per-channel mean (0.5) is far from every local mean, so the shift does not help."""
    gen = torch.Generator().manual_seed(size)
    base = torch.zeros(2, 3, size, size)
    base[..., size // 2 :] = 1.0
    x = (base + 1e-3 * torch.randn(base.shape, generator=gen)).clamp(0, 1)
    y = (base + 1e-3 * torch.randn(base.shape, generator=gen)).clamp(0, 1)
    y[1] = (0.97 * y[1] + 0.01).clamp(0, 1)
    return x, y


@pytest.mark.parametrize(("height", "width"), [(11, 11), (12, 43), (75, 40), (300, 97)])
def test_ssim_matches_scikit_image_on_every_tiling_and_hard_images(height, width):
    # Sizes whose valid outputs (H - 10, W - 10) are not whole tiles exercise the padding; the
    # step images are the float32 worst case measured (see ssim's docstring).
    gen = torch.Generator().manual_seed(height * width)
    x = torch.rand(2, 3, height, width, generator=gen)
    y = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    assert (ssim(x, y) - skimage_ssim(x, y)).abs().max() < 1e-6
    assert torch.equal(ssim(x, x), torch.ones(2, dtype=torch.float64))
    sx, sy = step_pair(max(height, width))
    assert (ssim(sx, sy) - skimage_ssim(sx, sy)).abs().max() < 1e-5


def test_ssim_falls_back_to_float64_when_float32_products_are_not_exact():
    from inpaintbench.metrics.table import _ssim_dtype

    x, y = step_pair(40)
    before = torch.get_float32_matmul_precision()
    try:
        assert _ssim_dtype(x.device) == torch.float32
        torch.set_float32_matmul_precision("medium")  # would let oneDNN / cuBLAS use bf16 / TF32
        assert _ssim_dtype(x.device) == torch.float64
        assert (ssim(x, y) - skimage_ssim(x, y)).abs().max() < 1e-12
    finally:
        torch.set_float32_matmul_precision(before)


def test_whole_image_psnr_is_accurate_on_large_images():
    # Row sums in float32, then float64: the error must stay ~1e-8 relative however many rows.
    x, y = random_pair(1, 3, 1024, seed=13)
    exact = -10 * torch.log10((x.double() - y.double()).square().mean())
    assert abs(psnr(x, y).item() - exact.item()) < 1e-6
    assert (psnr(x, y) - skimage_psnr(x, y)).abs().max() < 1e-6


def test_region_covering_an_image_gives_that_images_psnr_in_a_mixed_batch():
    x, y = random_pair(3, 3, 20, seed=14)
    region = torch.ones(3, 1, 20, 20, dtype=torch.bool)
    region[1, :, :5] = False  # image 1 has a partial region, images 0 and 2 a full one
    hole, whole = psnr(x, y, region=region), psnr(x, y)
    assert hole[0] == whole[0] and hole[2] == whole[2]
    diff = (x[1].double() - y[1].double())[:, 5:]
    assert hole[1].item() == pytest.approx(-10 * np.log10(diff.square().mean().item()), abs=1e-9)


@pytest.mark.parametrize("side", [64, 256, 520])
def test_psnr_bits_depend_on_neither_the_batch_nor_the_thread_count(side):
    """Large planes are summed in rows short enough that torch never splits one between threads:
    an image's PSNR is the same float64 alone, in a batch, on 1 or 4 threads."""
    x, y = random_pair(3, 3, side, seed=15)
    before = torch.get_num_threads()
    try:
        values = []
        for threads in (1, 4):
            torch.set_num_threads(threads)
            values += [psnr(x, y)[1], psnr(x[1:2], y[1:2])[0]]
    finally:
        torch.set_num_threads(before)
    assert len({v.item() for v in values}) == 1, values


# --- issue #22: channels-last input (a method run with channels_last = true) ---


@pytest.mark.parametrize("side", [16, 64])
def test_psnr_and_metrics_of_channels_last_input_equal_nchw(side):
    """Channels-last batches are summed through a view of their pixel rows (no copy): the same
    PSNR up to summation order, and validation still sees every value."""
    x, y = random_pair(3, 3, side, seed=21)
    xc, yc = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    assert not xc.is_contiguous()
    assert torch.allclose(psnr(xc, yc), psnr(x, y), rtol=0, atol=1e-6)
    assert torch.equal(psnr(xc, xc), torch.full((3,), float("inf"), dtype=torch.float64))
    mask = _hole_mask(3, side)
    nchw = compute_image_metrics(y, x, mask, composited=x)
    nhwc = compute_image_metrics(yc, xc, mask, composited=xc)
    for key in nchw:
        assert torch.allclose(nhwc[key], nchw[key], rtol=0, atol=1e-6, equal_nan=True), key
    bad = xc.clone()
    bad[1, 2, 3, 4] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        psnr(bad, yc)
    bad[1, 2, 3, 4] = 1.5
    with pytest.raises(InputError):
        psnr(bad, yc)


def test_psnr_of_mixed_memory_layouts_pairs_the_same_pixels():
    """A channels-last output (OpenCV's methods return one) scored against a contiguous original:
    both are read in one order, so PSNR equals the contiguous pair's and scikit-image's
    (mixing the layouts once paired pixels of different channels: telea's faces PSNR fell 13 -> 9 dB)."""
    from skimage.metrics import peak_signal_noise_ratio

    gen = torch.Generator().manual_seed(7)
    x, y = torch.rand(3, 3, 20, 24, generator=gen), torch.rand(3, 3, 20, 24, generator=gen)
    reference = torch.tensor([peak_signal_noise_ratio(a.numpy().astype(np.float64), b.numpy().astype(np.float64),
                                                      data_range=1.0) for a, b in zip(x, y)], dtype=torch.float64)
    nhwc = torch.channels_last
    for a, b in ((x.contiguous(memory_format=nhwc), y), (x, y.contiguous(memory_format=nhwc)),
                 (x.contiguous(memory_format=nhwc), y.contiguous(memory_format=nhwc)), (x[..., ::1], y.mT.mT)):
        torch.testing.assert_close(psnr(a, b), reference, atol=1e-6, rtol=0)
