"""Pixel errors of image batches, and the input checks every metric of the table shares: PSNR
(whole image or a region), masked MSE / MAE / largest absolute error.

Part of the one metric table (:mod:`inpaintbench.metrics.table` re-exports :func:`psnr`,
:func:`masked_mse`, :func:`masked_mae` and :func:`masked_max_abs`); its conventions hold here:
float32 ``[B, C, H, W]`` in ``[0, 1]`` in, float64 ``[B]`` out, PSNR of identical images
``+inf``, an error over an empty region ``NaN``.
"""

from __future__ import annotations

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import check_image_batch

# The bit pattern of 1.0f: for float32 values v >= +0.0 the int32 view orders like v, while
# negatives (-0.0 included), -inf and NaN with the sign bit are negative ints, and +inf and
# NaN lie above it. So the int32 range [0, _ONE_BITS] is exactly the floats in [+0.0, 1].
_ONE_BITS = 0x3F800000

def _check_image(image: torch.Tensor, what: str) -> None:
    """:func:`inpaintbench.core.images.check_image_batch` at a fraction of its cost: same rules, same
    messages (tested against it).

    ``check_image_batch`` reads the image three times (``isfinite``, ``min``, ``max``), which
    made validation 3x the arithmetic of PSNR (issue #15). Here one integer ``aminmax`` over
    the float32 bits (vectorised, no NaN handling: 3x faster than a float ``aminmax``) accepts
    every image whose values are all in ``[+0.0, 1]``; anything else (including the valid
    ``-0.0``) goes to the exact float check, which words the refusal.
    """
    if not (isinstance(image, torch.Tensor) and image.ndim == 4 and image.shape[1] in (1, 3)
            and image.dtype == torch.float32 and image.numel() > 0):
        check_image_batch(image, what)  # the type, shape, dtype (and empty-batch) rules, worded there
        return
    # A channels-last batch is reduced through its dense NHWC view (same values; 10x faster).
    nhwc = not image.is_contiguous() and image.is_contiguous(memory_format=torch.channels_last)
    lo, hi = (int(v) for v in torch.aminmax((image.permute(0, 2, 3, 1) if nhwc else image).view(torch.int32)))
    if lo >= 0 and hi <= _ONE_BITS:
        return
    check_image_batch(image, what)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    _check_image(x, "x")
    _check_image(y, "y")
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


# The whole-image squared error is summed in float32 over rows of at most _MSE_ROW_VALUES values
# (torch never splits a reduction that short between threads, so a value depends on neither the
# batch nor the thread count), on CPU over blocks of about _MSE_BLOCK_VALUES values (1 MB of
# float32, cache-resident) at a time. Measured (issue #22): 1.4-2x faster than per-image-row sums.
_MSE_ROW_VALUES = 2**15
_MSE_BLOCK_VALUES = 2**18


def _mse(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """:func:`masked_mse` without the checks; ``region=None`` is the whole image."""
    if region is None:
        return _whole_image_mse(x, y)
    mse = _region_mean(_abs_difference(x, y).square_(), region)
    # An image whose region is every pixel takes the whole-image value itself, so that e.g. an
    # all-hole mask's hole PSNR is its PSNR bit for bit (the two sums round differently, ~1e-8).
    whole = region.flatten(1).all(dim=1)
    if bool(whole.any()):
        mse[whole] = _whole_image_mse(x[whole], y[whole])
    return mse


def _whole_image_mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of ``(x - y)^2`` over each image, float64 ``[B]``: one pass over the data per block.

    Each row (``k`` whole image rows, at most :data:`_MSE_ROW_VALUES` values) is differenced,
    squared and summed in float32 (torch's cascade sum), the row sums then in float64: measured
    <= 5e-7 dB of PSNR off scikit-image's float64 at 32-1024 px (the float64 path costs 2-3x more)."""
    batch, channels, height, width = x.shape
    x, y = _row_major(x, y)
    rows_high, row_width = x.shape[2], x.shape[3]
    k = max(1, min(rows_high, _MSE_ROW_VALUES // row_width))
    while rows_high % k:  # whole rows of one plane per reduction: a row never spans two images
        k -= 1
    rows_x, rows_y = x.reshape(-1, k * row_width), y.reshape(-1, k * row_width)
    rows = rows_x.shape[0]
    per_block = rows if x.device.type != "cpu" else max(1, _MSE_BLOCK_VALUES // (k * row_width))
    row_sums = torch.empty(rows, dtype=x.dtype, device=x.device)
    scratch = torch.empty(min(per_block, rows), k * row_width, dtype=x.dtype, device=x.device)
    for start in range(0, rows, per_block):
        stop = min(start + per_block, rows)
        difference = torch.sub(rows_x[start:stop], rows_y[start:stop], out=scratch[: stop - start])
        torch.sum(difference.square_(), dim=1, out=row_sums[start:stop])
    return row_sums.double().view(batch, -1).sum(dim=1).div_(channels * height * width)


def _row_major(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` laid out alike, so ``reshape(-1, W')`` views matching rows of both: NCHW as is,
    two channels-last tensors as ``[B, 1, H, W * C]`` views, any other pair as NCHW copies."""
    if x.is_contiguous() and y.is_contiguous():
        return x, y
    nhwc = torch.channels_last
    if x.is_contiguous(memory_format=nhwc) and y.is_contiguous(memory_format=nhwc):
        batch, channels, height, width = x.shape
        return tuple(t.permute(0, 2, 3, 1).reshape(batch, 1, height, width * channels) for t in (x, y))
    return x.contiguous(), y.contiguous()


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
        ``skimage.metrics.peak_signal_noise_ratio(y, x, data_range=1)`` per image (to ~5e-7
        dB; see :func:`_whole_image_mse`).

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
