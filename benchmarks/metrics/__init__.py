"""The metrics: the one metric table (PSNR, SSIM, LPIPS, hole and band variants: direction, unit,
format and gate tolerance declared once), LPIPS backbones and FID/KID on the standard Inception.

Imports ``core`` only. The names of :mod:`inpaintbench.metrics.table` are re-exported here.
"""

from inpaintbench.metrics.table import (  # noqa: F401
    METRICS,
    Metric,
    MetricInputs,
    boundary_band,
    compute_image_metrics,
    masked_mae,
    masked_max_abs,
    masked_mse,
    metric_info,
    psnr,
    ssim,
)
