"""The metrics: the one metric table (PSNR, SSIM, LPIPS per backbone, DISTS, hole and band variants:
direction, unit, format and gate tolerance declared once; FID, KID, P-IDS, U-IDS per set), LPIPS
backbones, DISTS, FID/KID and P-IDS/U-IDS on the standard Inception, and their calibration; the
metric options of a run checked before it runs (:mod:`inpaintbench.metrics.options`).

Imports ``core`` only. The names of :mod:`inpaintbench.metrics.table` are re-exported here.
"""

from inpaintbench.metrics.table import (  # noqa: F401
    METRICS,
    SET_METRICS,
    Metric,
    SetMetric,
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
