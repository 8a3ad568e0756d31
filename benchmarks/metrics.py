"""Image-quality metrics of the harness: PSNR, SSIM and region errors, per image.

Every function takes float32 images ``[B, C, H, W]`` with values in ``[0, 1]``
(``data_range = 1``) and returns a float64 tensor ``[B]`` on the inputs' device: one number
per image, never pooled over the batch (a batch mean of PSNRs is not the PSNR of a batch).

Conventions stated once, for every function here:

* PSNR of identical images is ``+inf`` (exactly, not a large finite number);
* a masked error over an **empty** region is ``NaN``: there is nothing to measure, and
  pandas' ``mean`` skips NaN instead of letting a fake 0 flatter the method;
* SSIM follows scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)`` and agrees with it to 1e-4 (tested).

:func:`compute_image_metrics` is the one path the runner uses; :data:`METRICS` describes
each number it returns (direction, unit, which output it is computed on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from inpaintbench.api import InputError, check_image_batch, check_mask_batch, composite

# scikit-image's SSIM constants (Wang et al. 2004) and its Gaussian window:
# sigma = 1.5 truncated at 3.5 sigma -> radius int(3.5 * 1.5 + 0.5) = 5 -> 11 taps.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
SSIM_WIN_SIZE = 2 * SSIM_RADIUS + 1


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    check_image_batch(x, "x")
    check_image_batch(y, "y")
    if x.shape != y.shape:
        raise InputError(f"x and y must have the same shape, got {list(x.shape)} and {list(y.shape)}")


def _check_region(region: torch.Tensor, x: torch.Tensor) -> None:
    if not isinstance(region, torch.Tensor) or region.dtype != torch.bool:
        got = region.dtype if isinstance(region, torch.Tensor) else type(region).__name__
        raise InputError(f"region must be a bool tensor (True = pixel counted), got {got}")
    if region.ndim != 4 or region.shape[1] != 1 or region.shape[0] != x.shape[0] or region.shape[2:] != x.shape[2:]:
        raise InputError(
            f"region must have shape [B, 1, H, W] matching the images {list(x.shape)}, got {list(region.shape)}"
        )


def _abs_difference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``|x - y|`` as float64 ``[B, C, H, W]``. The difference is taken in float32 (relative
    rounding <= 6e-8, i.e. < 1e-6 dB of PSNR) to halve the memory of the float64 path; it
    is 0 exactly where ``x == y``."""
    return (x - y).double().abs_()


def _region_mean(values: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Per-image mean of ``values`` (float64 ``[B, C, H, W]``, overwritten) over the pixels
    where ``region`` (bool ``[B, 1, H, W]``) is True, all channels: float64 ``[B]``, NaN
    (0 / 0) where the region is empty."""
    total = values.masked_fill_(~region, 0.0).sum(dim=(1, 2, 3))
    count = region.sum(dim=(1, 2, 3), dtype=torch.float64) * values.shape[1]
    return total / count


def masked_mse(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels (all channels) where ``region`` is True.

    Args:
        x, y: float32 ``[B, C, H, W]`` in ``[0, 1]``.
        region: bool ``[B, 1, H, W]``, True = pixel counted.

    Returns:
        float64 ``[B]``, in squared intensity units; ``NaN`` where the region is empty.

    Example:
        >>> x = torch.zeros(1, 1, 2, 2); y = torch.tensor([[[[0.5, 0.0], [0.0, 0.0]]]])
        >>> masked_mse(x, y, torch.ones(1, 1, 2, 2, dtype=torch.bool)).item()
        0.0625
    """
    _check_pair(x, y)
    _check_region(region, x)
    return _mse(x, y, region)


def _mse(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """:func:`masked_mse` without the checks; ``region=None`` is the whole image."""
    if region is None:
        return _abs_difference(x, y).square_().mean(dim=(1, 2, 3))
    return _region_mean(_abs_difference(x, y).square_(), region)


def masked_mae(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the pixels (all channels) where ``region`` is True.

    Shapes as in :func:`masked_mse`; returns float64 ``[B]`` in intensity units,
    ``NaN`` where the region is empty.
    """
    _check_pair(x, y)
    _check_region(region, x)
    return _mae(x, y, region)


def _mae(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """:func:`masked_mae` without the checks."""
    return _region_mean(_abs_difference(x, y), region)


def masked_max_abs(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Largest absolute difference over the pixels (all channels) where ``region`` is True.

    Shapes as in :func:`masked_mse`; returns float64 ``[B]`` in intensity units (0 means
    the region is reproduced exactly), ``NaN`` where the region is empty.
    """
    _check_pair(x, y)
    _check_region(region, x)
    return _max_abs(x, y, region)


def _max_abs(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """:func:`masked_max_abs` without the checks."""
    largest = _abs_difference(x, y).masked_fill_(~region, -1.0).amax(dim=(1, 2, 3))
    return torch.where(largest < 0, torch.full_like(largest, float("nan")), largest)


def psnr(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, ``10 log10(1 / MSE)`` (``data_range = 1``).

    Args:
        x, y: float32 ``[B, C, H, W]`` in ``[0, 1]``.
        region: optional bool ``[B, 1, H, W]``; when given, the MSE is taken over the pixels
            where it is True only (``region=mask`` gives the hole PSNR).

    Returns:
        float64 ``[B]`` in dB; ``+inf`` where the images are identical (on the region),
        ``NaN`` where the region is empty. Equals
        ``skimage.metrics.peak_signal_noise_ratio(y, x, data_range=1)`` per image.

    Example:
        >>> x = torch.zeros(2, 1, 4, 4); y = x.clone(); y[0] = 0.5
        >>> [round(v, 4) for v in psnr(x, y).tolist()]
        [6.0206, inf]
    """
    _check_pair(x, y)
    if region is not None:
        _check_region(region, x)
    return _psnr(x, y, region)


def _psnr(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """:func:`psnr` without the checks."""
    mse = _mse(x, y, region)
    # Explicit: log10(1/0) would also give inf, but with a division warning on some backends.
    return torch.where(mse == 0, torch.full_like(mse, float("inf")), -10.0 * torch.log10(mse))


def _gaussian_taps() -> list[float]:
    """SciPy's ``gaussian_filter`` kernel for sigma 1.5, truncate 3.5: 11 taps summing to 1."""
    taps = [math.exp(-0.5 * (offset / SSIM_SIGMA) ** 2) for offset in range(-SSIM_RADIUS, SSIM_RADIUS + 1)]
    total = math.fsum(taps)
    return [tap / total for tap in taps]


# On CPU, SSIM runs over chunks of images whose four float64 moment planes hold about this
# many values (4 MB): fresh large buffers cost page faults and cache misses that dominate
# the arithmetic; small ones are reused by the allocator and stay in cache. GPUs take the
# whole batch at once.
_CPU_CHUNK_VALUES = 2**19


def _correlate_valid(planes: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """Unpadded ("valid") correlation of ``planes`` with 1-D ``taps`` along ``dim``: that axis
    shrinks by ``len(taps) - 1``. A sum of shifted slices, accumulated in place: memory-bound
    and allocation-light, it beats both float64 ``conv2d`` and banded GEMMs on CPU."""
    length = planes.shape[dim] - len(taps) + 1
    out = planes.narrow(dim, 0, length) * taps[0]
    for shift, weight in enumerate(taps[1:], start=1):
        out.add_(planes.narrow(dim, shift, length), alpha=weight)
    return out


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image, batched, with scikit-image's Gaussian settings.

    Local statistics use a separable Gaussian window (sigma 1.5, 11 taps) and population
    (co)variances; constants ``C1 = (0.01)^2``, ``C2 = (0.03)^2`` for ``data_range = 1``.
    scikit-image filters with reflected borders and then drops ``(11 - 1) / 2 = 5`` pixels
    on each side before averaging, which is exactly a *valid* (unpadded) filtering here.
    The SSIM map is averaged over the remaining pixels of each channel, then over channels.
    Computed in float64: it then matches scikit-image to ~1e-14, where float32 (whose
    ``E[x^2] - E[x]^2`` cancels digits that ``C2 = 9e-4`` then amplifies) was measured
    2e-6 off on flat bright images.

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
    per_chunk = batch if x.device.type != "cpu" else max(1, _CPU_CHUNK_VALUES // (4 * channels * height * width))
    return torch.cat([_ssim_unchecked(x[i : i + per_chunk], y[i : i + per_chunk]) for i in range(0, batch, per_chunk)])


def _ssim_unchecked(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`ssim` of a valid batch, without the checks."""
    batch, channels, height, width = x.shape
    # Filtering is linear, so var_x + var_y needs only the filtered x^2 + y^2: four planes,
    # written into one buffer rather than through temporaries.
    planes = torch.empty(batch, 4, channels, height, width, dtype=torch.float64, device=x.device)
    x64, y64, sq, xy = planes.unbind(dim=1)
    x64.copy_(x)
    y64.copy_(y)
    torch.mul(x64, x64, out=sq)
    sq.addcmul_(y64, y64)
    torch.mul(x64, y64, out=xy)
    taps = _gaussian_taps()
    filtered = _correlate_valid(_correlate_valid(planes, taps, dim=-2), taps, dim=-1)
    mu_x, mu_y, m_sq, m_xy = filtered.unbind(dim=1)  # each [B, C, H - 10, W - 10]

    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu_xy = mu_x * mu_y
    mu_sq = mu_x.square().addcmul_(mu_y, mu_y)
    # SSIM = (2 mu_xy + C1)(2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2)),
    # with cov_xy = E[xy] - mu_xy and var_x + var_y = E[x^2 + y^2] - mu_sq; in place to spare memory.
    numerator = (2 * mu_xy + c1).mul_(m_xy.sub_(mu_xy).mul_(2).add_(c2))
    denominator = (mu_sq + c1).mul_(m_sq.sub_(mu_sq).add_(c2))
    return numerator.div_(denominator).mean(dim=(2, 3)).mean(dim=1)


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
    """

    original: torch.Tensor
    raw: torch.Tensor
    composited: torch.Tensor
    hole: torch.Tensor
    band: torch.Tensor
    lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None


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
        needs_lpips: computed only when an LPIPS network is available.
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

    @property
    def arrow(self) -> str:
        """``"↑"`` when higher is better, else ``"↓"``."""
        return "↑" if self.higher_is_better else "↓"

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
    Metric("lpips", "LPIPS", False, "", "composited", "image",
           "LPIPS distance (real ImageNet backbone; small images upsampled)",
           4, 0.01, lambda m: m.lpips(m.composited, m.original).double(), needs_lpips=True),
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
    composited: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Every metric of :data:`METRICS` for one batch: the single metrics path of the runner.

    Inputs are validated once here; the metrics then run unchecked. Whole-image and hole
    metrics are computed on the composite, known-region and boundary metrics on the raw
    output (each metric's ``output`` says which).

    Args:
        original: float32 ``[B, C, H, W]`` in ``[0, 1]``, the ground truth.
        raw_output: float32 ``[B, C, H, W]`` in ``[0, 1]``, what the method returned.
        mask: bool ``[B, 1, H, W]``, True = generated pixel (the hole).
        lpips: an :class:`inpaintbench.lpips_metric.LPIPSMetric` (any callable
            ``(x, y) -> [B]``); ``None`` leaves ``"lpips"`` out of the result.
        band_px: half-width of the boundary band in pixels (see :func:`boundary_band`).
        composited: the scored output when the task composites differently; default
            ``raw_output`` with the known pixels of ``original`` pasted back.

    Returns:
        ``{name: float64 tensor [B]}`` in the order of :data:`METRICS`, on the inputs'
        device. Empty regions give NaN.

    Raises:
        InputError: bad shapes, dtypes, ranges, or a non-finite raw output.
    """
    check_image_batch(original, "original")
    check_image_batch(raw_output, "raw output")
    check_mask_batch(mask, original)
    check_band_px(band_px)
    if raw_output.shape != original.shape:
        raise InputError(
            f"raw output shape {list(raw_output.shape)} does not match original {list(original.shape)}"
        )
    if composited is None:
        composited = composite(raw_output, original, mask)
    inputs = MetricInputs(original, raw_output, composited, mask, _band(mask, band_px), lpips)
    return {m.name: m.compute(inputs) for m in METRICS if lpips is not None or not m.needs_lpips}
