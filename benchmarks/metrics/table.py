"""The one metric table: PSNR, SSIM, LPIPS (one row per backbone), DISTS and region errors per
image (:data:`METRICS`), and FID, KID, P-IDS, U-IDS per set of kept outputs (:data:`SET_METRICS`).

Every function takes float32 images ``[B, C, H, W]`` with values in ``[0, 1]``
(``data_range = 1``) and returns a float64 tensor ``[B]`` on the inputs' device: one number
per image, never pooled over the batch (a batch mean of PSNRs is not the PSNR of a batch).

Conventions stated once, for every function here:

* PSNR of identical images is ``+inf`` (exactly, not a large finite number);
* a masked error over an **empty** region is ``NaN``: there is nothing to measure, and
  pandas' ``mean`` skips NaN instead of letting a fake 0 flatter the method;
* SSIM follows scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)`` and agrees with it to 1e-4 (tested; computed
  in float32: ~1e-8 on photos, 5.5e-6 on CelebA-HQ inpaintings, reports/metrics/CALIBRATION.md);
* whole-image PSNR equals scikit-image's float64 value to ~5e-7 dB (float32 row sums, then
  float64); the region errors (hole PSNR, masked MSE / MAE) are summed in float64.

Speed: ``benchmarks/perf/test_perf_metrics.py`` times them against scikit-image and torchmetrics
on one torch thread (``reports/perf/SPEED.md``).

:func:`compute_image_metrics` is the one path the runner uses; :data:`METRICS` describes
each number it returns (direction, unit, which output it is computed on).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import check_mask_batch
from inpaintbench.metrics.pixel_errors import (  # noqa: F401 - psnr and the masked errors are the table's
    _check_image, _check_pair, _mae, _max_abs, _mse, _psnr, masked_mae, masked_max_abs, masked_mse,
    psnr)
# The set-level half of the table (FID, KID, P-IDS, U-IDS), declared in its own module.
from inpaintbench.metrics.set_metrics import SET_METRICS, SetMetric  # noqa: F401

# scikit-image's SSIM constants (Wang et al. 2004) and its Gaussian window:
# sigma = 1.5 truncated at 3.5 sigma -> radius int(3.5 * 1.5 + 0.5) = 5 -> 11 taps.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
SSIM_WIN_SIZE = 2 * SSIM_RADIUS + 1


#: The LPIPS backbone of the record key ``"lpips"`` (and of an LPIPS callable without ``net``).
DEFAULT_LPIPS_NET = "alex"


def _gaussian_taps() -> list[float]:
    """SciPy's ``gaussian_filter`` kernel for sigma 1.5, truncate 3.5: 11 taps summing to 1."""
    taps = [math.exp(-0.5 * (offset / SSIM_SIGMA) ** 2) for offset in range(-SSIM_RADIUS, SSIM_RADIUS + 1)]
    total = math.fsum(taps)
    return [tap / total for tap in taps]


# On CPU, SSIM runs over chunks of images whose four moment planes hold about this many values
# (2 MB of float32, one core's L2 here), so elementwise passes run from cache; GPUs take all.
_CPU_CHUNK_VALUES = 2**19

# Filtering is a product with a banded matrix of the taps, tile by tile (a tile of TILE outputs
# reads TILE + 10 inputs) at matrix-product speed: on one core at 256 px 4x faster than 11 shifted
# adds or a separable conv2d, 2x faster than one dense (H - 10) x H product. Outputs per tile:
_TILE = 32


def _tiling(length: int) -> tuple[int, int]:
    """``(tiles, tile)`` covering the ``length - 10`` valid outputs of an axis of ``length``
    pixels with equal tiles of at most :data:`_TILE` outputs (the last may run past the end)."""
    outputs = length - SSIM_WIN_SIZE + 1
    tiles = -(-outputs // _TILE)
    return tiles, -(-outputs // tiles)


@functools.lru_cache(maxsize=64)
def _band_matrix(tile: int, dtype: torch.dtype, device: torch.device, transposed: bool = False) -> torch.Tensor:
    """``[tile + 10, tile]`` matrix whose column ``i`` holds the 11 Gaussian taps at rows
    ``i .. i + 10``: ``rows @ band`` is the valid correlation of each row with the window.
    ``transposed``: its contiguous ``[tile, tile + 10]`` transpose, for ``band.T @ columns``.
    Cached: built once per tile size, dtype and device."""
    band = torch.zeros(tile + SSIM_WIN_SIZE - 1, tile, dtype=torch.float64)
    outputs = torch.arange(tile)
    for offset, tap in enumerate(_gaussian_taps()):
        band[outputs + offset, outputs] = tap
    if transposed:
        band = band.T.contiguous()
    return band.to(dtype=dtype, device=device)


def _ssim_dtype(device: torch.device) -> torch.dtype:
    """float32 when this device's float32 matrix products are IEEE float32 (torch's default),
    float64 when a user allowed TF32 / bf16 products, whose 10-bit mantissas would cost SSIM
    ~1e-3 through the filtering products."""
    if torch.get_float32_matmul_precision() != "highest":
        return torch.float64
    if device.type == "cuda":
        exact = not torch.backends.cuda.matmul.allow_tf32
    else:
        mkldnn_matmul = getattr(torch.backends.mkldnn, "matmul", None)
        exact = getattr(mkldnn_matmul, "fp32_precision", "ieee") in ("ieee", "none")
    return torch.float32 if exact else torch.float64


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image, batched, with scikit-image's Gaussian settings.

    Local statistics use a separable Gaussian window (sigma 1.5, 11 taps) and population
    (co)variances; constants ``C1 = (0.01)^2``, ``C2 = (0.03)^2`` for ``data_range = 1``.
    scikit-image filters with reflected borders and then drops ``(11 - 1) / 2 = 5`` pixels
    on each side before averaging, which is exactly a *valid* (unpadded) filtering here.
    The SSIM map is averaged over the remaining pixels of each channel, then over channels.
    Computed in float32 (when float32 matrix products are exact IEEE, the default; else in
    float64) on images shifted by their per-channel mean: variances and covariances do not
    change under a shift, and the shift removes most of the cancellation in
    ``E[x^2] - E[x]^2`` that ``C2 = 9e-4`` would amplify. Measured against scikit-image's
    float64: ~1e-8 on photos, noise and flat bright images (unshifted float32: 2e-6 on the
    latter); 5.5e-6 on Telea-filled CelebA-HQ faces (float64 here: 1e-14; the calibration),
    2e-6 on black and white halves with faint noise (tested to 1e-5). Filtering is a banded matrix
    product per tile (see :data:`_TILE`).

    Args:
        x, y: float32 ``[B, C, H, W]`` in ``[0, 1]``, ``H, W >= 11``.

    Returns:
        float64 ``[B]`` in ``[-1, 1]``; exactly 1 for identical images. Agrees with
        ``skimage.metrics.structural_similarity(x[i], y[i], gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=0)`` to 1e-4 (tested).

    Example:
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
    """
    _check_pair(x, y)
    return _ssim(x, y)


def _ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`ssim` without the pair checks (the size check stays: it depends on the images)."""
    batch, channels, height, width = x.shape
    if height < SSIM_WIN_SIZE or width < SSIM_WIN_SIZE:
        raise InputError(
            f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE} pixels (its Gaussian window), "
            f"got {height}x{width}"
        )
    dtype = _ssim_dtype(x.device)
    per_chunk = batch if x.device.type != "cpu" else max(1, _CPU_CHUNK_VALUES // (4 * channels * height * width))
    if per_chunk >= batch:
        return _ssim_unchecked(x, y, dtype)
    return torch.cat([
        _ssim_unchecked(x[i : i + per_chunk], y[i : i + per_chunk], dtype) for i in range(0, batch, per_chunk)
    ])


def _ssim_unchecked(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """:func:`ssim` of a valid batch, without the checks, computed in ``dtype``.

    Layout: the four planes to filter (x, y, x^2 + y^2, x y; filtering is linear, so
    var_x + var_y needs only the filtered x^2 + y^2) are stored height-major,
    ``[4, H, B, C, W]``, padded with zeros to whole tiles. Then each plane's vertical pass is
    one batched product over all images (``[tile, tile + 10] @ rows``, the tiles being
    overlapping views, no copies), and its horizontal pass one more (``rows @ band``).
    """
    batch, channels, height, width = x.shape
    device = x.device
    tiles_h, tile_h = _tiling(height)
    tiles_w, tile_w = _tiling(width)
    out_h, out_w = height - SSIM_WIN_SIZE + 1, width - SSIM_WIN_SIZE + 1
    padded_h, padded_w = tiles_h * tile_h + SSIM_WIN_SIZE - 1, tiles_w * tile_w + SSIM_WIN_SIZE - 1

    # The shift: each image channel's mean, [B, C, 1], which broadcasts over [H, B, C, W].
    shift_x = x.mean(dim=(2, 3), dtype=dtype)[:, :, None]
    shift_y = y.mean(dim=(2, 3), dtype=dtype)[:, :, None]
    planes = torch.empty(4, padded_h, batch, channels, padded_w, dtype=dtype, device=device)
    # The padding feeds only discarded outputs, but must be finite: a 0 tap times NaN is NaN.
    if padded_h > height:
        planes[:, height:] = 0
    if padded_w > width:
        planes[..., width:] = 0
    px, py, p_sq, p_xy = (plane[:height, ..., :width] for plane in planes.unbind(0))
    px.copy_(x.permute(2, 0, 1, 3)).sub_(shift_x)
    py.copy_(y.permute(2, 0, 1, 3)).sub_(shift_y)
    # x'^2 + y'^2 from rounded squares (p_xy is scratch here), so that it is exactly 2 x'y' for x == y.
    torch.mul(px, px, out=p_sq).add_(torch.mul(py, py, out=p_xy))
    torch.mul(px, py, out=p_xy)

    # Vertical pass: plane p viewed as [padded_h, M] rows; tile t reads rows t*tile_h ... + tile_h + 9.
    columns = batch * channels * padded_w
    window_h = tile_h + SSIM_WIN_SIZE - 1
    band_h = _band_matrix(tile_h, dtype, device, transposed=True).expand(tiles_h, tile_h, window_h)
    vertical = torch.empty(4, tiles_h * tile_h, columns, dtype=dtype, device=device)
    for plane, out in zip(planes, vertical):
        tiles = plane.view(padded_h, columns).as_strided((tiles_h, window_h, columns), (tile_h * columns, columns, 1))
        torch.bmm(band_h, tiles, out=out.view(tiles_h, tile_h, columns))

    # Horizontal pass over the out_h valid rows: [R, padded_w] -> [tiles_w, R, tile_w].
    rows = out_h * batch * channels
    window_w = tile_w + SSIM_WIN_SIZE - 1
    band_w = _band_matrix(tile_w, dtype, device).expand(tiles_w, window_w, tile_w)
    filtered = torch.empty(4, tiles_w, rows, tile_w, dtype=dtype, device=device)
    for plane, out in zip(vertical, filtered):
        tiles = plane[:out_h].reshape(rows, padded_w).as_strided((tiles_w, rows, window_w), (tile_w, padded_w, 1))
        torch.bmm(tiles, band_w, out=out)
    # Each [tiles_w, out_h, B, C, tile_w]: moments of the shifted images.
    mu_x, mu_y, m_sq, m_xy = (moment.view(tiles_w, out_h, batch, channels, tile_w) for moment in filtered.unbind(0))

    c1, c2 = SSIM_K1**2, SSIM_K2**2
    # SSIM = (2 mu_x mu_y + C1)(2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2)), with
    # cov_xy = E[x'y'] - mu_x' mu_y' and var_x + var_y = E[x'^2 + y'^2] - (mu_x'^2 + mu_y'^2) on the
    # shifted x', y' (shift-invariant), then mu = mu' + shift; in place to spare memory traffic.
    # Every product is rounded before it is added (no addcmul, which may fuse): for x == y the
    # two factors of numerator and denominator are then equal bit for bit and SSIM is exactly 1.
    product = torch.mul(mu_x, mu_y)
    cov_term = m_xy.sub_(product).mul_(2).add_(c2)
    squares = torch.mul(mu_x, mu_x).add_(torch.mul(mu_y, mu_y))
    var_term = m_sq.sub_(squares).add_(c2)
    mu_x.add_(shift_x)
    mu_y.add_(shift_y)
    numerator = torch.mul(mu_x, mu_y, out=product).mul_(2).add_(c1).mul_(cov_term)
    denominator = torch.mul(mu_x, mu_x, out=squares).add_(mu_y.square_()).add_(c1).mul_(var_term)
    ssim_map = numerator.div_(denominator)
    if tiles_w * tile_w > out_w:  # the last tile's columns past the image: not SSIM values
        ssim_map[-1, ..., out_w - (tiles_w - 1) * tile_w :] = 0
    per_channel = ssim_map.sum(dim=(0, 1, 4), dtype=torch.float64).div_(out_h * out_w)
    return per_channel.mean(dim=1)


def boundary_band(mask: torch.Tensor, width_px: int) -> torch.Tensor:
    """Pixels within ``width_px`` of the hole's edge, on both sides of it.

    A pixel is in the band when a hole pixel *and* a known pixel both lie within
    ``width_px`` of it in the chessboard (Chebyshev) distance: the dilation of the hole
    minus its erosion, computed with ``max_pool2d`` over a ``(2 width_px + 1)`` square.
    Outside the image counts as neither hole nor known, so the image border is not an edge.

    Args:
        mask: bool ``[B, 1, H, W]``, True = hole.
        width_px: band half-width in pixels, ``>= 1``: ``width_px`` rows inside the hole
            plus ``width_px`` rows outside it along a straight edge.

    Returns:
        bool ``[B, 1, H, W]``, True = in the band; all False for an all-hole or all-known mask.

    Example:
        >>> m = torch.zeros(1, 1, 1, 6, dtype=torch.bool); m[..., 3:] = True
        >>> boundary_band(m, 1).int().flatten().tolist()
        [0, 0, 1, 1, 0, 0]
    """
    check_mask_batch(mask)
    check_band_px(width_px)
    return _band(mask, width_px)


def check_band_px(width_px: int) -> int:
    """``width_px`` if it is an int >= 1 (a boundary band half-width), else :class:`InputError`."""
    if isinstance(width_px, bool) or not isinstance(width_px, int) or width_px < 1:
        raise InputError(f"boundary band width_px must be an integer >= 1, got {width_px!r}")
    return width_px


def _band(mask: torch.Tensor, width_px: int) -> torch.Tensor:
    """:func:`boundary_band` without the checks."""
    size = 2 * width_px + 1

    def near(region: torch.Tensor) -> torch.Tensor:
        # max_pool2d pads with -inf, so pixels outside the image never count as `region`.
        return F.max_pool2d(region.float(), size, stride=1, padding=width_px) > 0.5

    return near(mask) & near(~mask)


@dataclass(frozen=True)
class MetricInputs:
    """What every metric of one batch is computed from (validated once, by
    :func:`compute_image_metrics`).

    Attributes:
        original: float32 ``[B, C, H, W]`` in ``[0, 1]``, the ground truth.
        raw: the method's raw output, same shape.
        composited: ``raw`` with the known pixels of ``original`` (the scored output).
        hole: bool ``[B, 1, H, W]``, True where the method had to generate pixels.
        band: bool ``[B, 1, H, W]``, the boundary band around the hole's edge.
        lpips: the LPIPS callable ``(x, y) -> [B]``, or None.
        dists: the DISTS callable ``(x, y) -> [B]``, or None.
    """

    original: torch.Tensor
    raw: torch.Tensor
    composited: torch.Tensor
    hole: torch.Tensor
    band: torch.Tensor
    lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    dists: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


@dataclass(frozen=True)
class Metric:
    """One metric, declared once: how it is computed, read, shown and gated.

    Attributes:
        name: the record key (``"psnr"``, ``"known_mse"``...).
        title: the column title (``"PSNR"``).
        higher_is_better: the direction tables sort, arrows point and the gate reads.
        unit: ``"dB"``, or ``""`` for unitless numbers.
        output: ``"composited"`` (known pixels pasted back) or ``"raw"`` (the method's own output).
        region: ``"image"``, ``"hole"``, ``"known"`` or ``"boundary band"``.
        description: one line for the leaderboard legend.
        digits: decimals shown in tables.
        gate_tolerance: worsening ``inpaintbench check`` allows, in the metric's unit (None:
            not gated).
        compute: ``MetricInputs -> float64 [B]``; None for metrics computed elsewhere.
        needs_lpips: computed only when an LPIPS network is available, and only by the row
            whose ``lpips_net`` is that network's backbone (its ``net``).
        lpips_net: the LPIPS backbone of an LPIPS row (``alex``, ``vgg``, ``squeeze``).
        needs_dists: computed only when a DISTS network is given.
    """

    name: str
    title: str
    higher_is_better: bool
    unit: str
    output: str
    region: str
    description: str
    digits: int
    gate_tolerance: float | None
    compute: Callable[[MetricInputs], torch.Tensor]
    needs_lpips: bool = False
    lpips_net: str | None = None
    needs_dists: bool = False

    @property
    def arrow(self) -> str:
        """``"↑"`` when higher is better, else ``"↓"``."""
        return "↑" if self.higher_is_better else "↓"

    def applies(self, lpips: object | None, dists: object | None) -> bool:
        """Whether this row is computed for a batch given these networks: an LPIPS row when
        ``lpips`` is its backbone (a callable without a ``net`` attribute counts as ``alex``,
        the default), the DISTS row when ``dists`` is given, every other row always."""
        if self.needs_lpips:
            return lpips is not None and getattr(lpips, "net", DEFAULT_LPIPS_NET) == self.lpips_net
        if self.needs_dists:
            return dists is not None
        return True

    def worsening(self, old: float, new: float) -> float:
        """How much worse ``new`` is than ``old`` in this metric's direction (negative: better)."""
        return (old - new) if self.higher_is_better else (new - old)


#: Every number :func:`compute_image_metrics` returns, in record order: the one metric table
#: that the runner, the report and the regression gate iterate.
METRICS: tuple[Metric, ...] = (
    Metric("psnr", "PSNR", True, "dB", "composited", "image", "PSNR of the whole image (inf when identical)",
           2, 0.5, lambda m: _psnr(m.composited, m.original, None)),
    Metric("ssim", "SSIM", True, "", "composited", "image", "SSIM, Gaussian window sigma 1.5 (scikit-image settings)",
           4, 0.01, lambda m: _ssim(m.composited, m.original)),
    # LPIPS: one row per backbone, so values of two backbones never share a record key (the key carries
    # the backbone); the default (AlexNet) keeps the key "lpips" of every committed record; titles name it.
    Metric("lpips", "LPIPS (alex)", False, "", "composited", "image",
           "LPIPS distance, AlexNet backbone (the default; real ImageNet weights; small images upsampled)",
           4, 0.01, lambda m: m.lpips(m.composited, m.original).double(), needs_lpips=True, lpips_net="alex"),
    Metric("lpips_vgg", "LPIPS (vgg)", False, "", "composited", "image",
           "LPIPS distance, VGG16 backbone",
           4, 0.01, lambda m: m.lpips(m.composited, m.original).double(), needs_lpips=True, lpips_net="vgg"),
    Metric("lpips_squeeze", "LPIPS (squeeze)", False, "", "composited", "image",
           "LPIPS distance, SqueezeNet 1.1 backbone",
           4, 0.01, lambda m: m.lpips(m.composited, m.original).double(), needs_lpips=True, lpips_net="squeeze"),
    Metric("dists", "DISTS", False, "", "composited", "image",
           "DISTS (Ding et al. 2020; VGG16 structure + texture, the authors' weights; small images upsampled as LPIPS)",
           4, None, lambda m: m.dists(m.composited, m.original).double(), needs_dists=True),
    Metric("hole_psnr", "hole PSNR", True, "dB", "composited", "hole", "PSNR over the hole pixels only",
           2, None, lambda m: _psnr(m.composited, m.original, m.hole)),
    Metric("known_mse", "known MSE", False, "", "raw", "known",
           "MSE of the raw output on known pixels (0 = known pixels kept)",
           6, 1e-6, lambda m: _mse(m.raw, m.original, ~m.hole)),
    Metric("known_maxabs", "known max |Δ|", False, "", "raw", "known",
           "largest absolute change of a known pixel in the raw output",
           4, None, lambda m: _max_abs(m.raw, m.original, ~m.hole)),
    Metric("boundary_mae", "boundary MAE", False, "", "raw", "boundary band",
           "MAE of the raw output within band_px of the hole edge, both sides",
           4, None, lambda m: _mae(m.raw, m.original, m.band)),
)


def metric_info(name: str) -> Metric:
    """The :class:`Metric` describing record key ``name``; :class:`InputError` if unknown."""
    for metric in METRICS:
        if metric.name == name:
            return metric
    raise InputError(f"unknown metric {name!r}; known metrics: {', '.join(m.name for m in METRICS)}")


def compute_image_metrics(
    original: torch.Tensor,
    raw_output: torch.Tensor,
    mask: torch.Tensor,
    lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    band_px: int = 2,
    *,
    composited: torch.Tensor,
    dists: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Every metric of :data:`METRICS` for one batch: the single metrics path of the runner.

    Inputs are validated once here; the metrics then run unchecked. Whole-image and hole
    metrics are computed on the composite, known-region and boundary metrics on the raw
    output (each metric's ``output`` says which).

    Args:
        original: float32 ``[B, C, H, W]`` in ``[0, 1]``, the ground truth.
        raw_output: float32 ``[B, C, H, W]`` in ``[0, 1]``, what the method returned.
        mask: bool ``[B, 1, H, W]``, True = generated pixel (the hole).
        lpips: an :class:`inpaintbench.metrics.lpips_metric.LPIPSMetric` (any callable
            ``(x, y) -> [B]``; its ``net`` picks the row: ``"lpips"`` for alex, the default,
            ``"lpips_vgg"``, ``"lpips_squeeze"``); ``None`` leaves LPIPS out of the result.
        band_px: half-width of the boundary band in pixels (see :func:`boundary_band`).
        composited: the scored output ``[B, C, H, W]``, made by the task
            (:meth:`~inpaintbench.core.method.Task.composite`): the metrics never decide how a
            task composites.
        dists: a :class:`inpaintbench.metrics.dists_metric.DISTSMetric` (any callable
            ``(x, y) -> [B]``); ``None`` leaves ``"dists"`` out of the result.

    Returns:
        ``{name: float64 tensor [B]}`` in the order of :data:`METRICS`, on the inputs'
        device. Empty regions give NaN.

    Raises:
        InputError: bad shapes, dtypes, ranges, or a non-finite raw output.
    """
    _check_image(original, "original")
    _check_image(raw_output, "raw output")
    check_mask_batch(mask, original)
    check_band_px(band_px)
    if raw_output.shape != original.shape:
        raise InputError(
            f"raw output shape {list(raw_output.shape)} does not match original {list(original.shape)}"
        )
    if composited.shape != original.shape:
        raise InputError(f"composited output shape {list(composited.shape)} does not match original {list(original.shape)}")
    inputs = MetricInputs(original, raw_output, composited, mask, _band(mask, band_px), lpips, dists)
    return {m.name: m.compute(inputs) for m in METRICS if m.applies(lpips, dists)}
