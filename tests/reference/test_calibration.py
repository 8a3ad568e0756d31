"""The calibration's differences do not grow: the comparisons of reports/metrics/CALIBRATION.md on
tiny real inputs (4 faces at 64 px; Inception features of 1 face and its fill), each within its tolerance.

Every independent implementation is optional: a missing one is skipped with its name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from inpaintbench.metrics.calibration import (
    CLOSE,
    REASONS,
    TOLERANCES,
    Row,
    inpainted,
    load_faces,
    per_image_rows,
    render,
    set_rows,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DATA, LPIPS_WEIGHTS = SHARED / "data", SHARED / "weights" / "lpips"
FID_WEIGHTS = SHARED / "weights" / "fid" / "inception-2015-12-05-fid.pth"

pytestmark = pytest.mark.needs_shared


def _require(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            pytest.skip(f"{path} is absent (../shared beside the checkout)")


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    _require(DATA / "celeba" / "val")
    originals = load_faces(DATA, "celeba64", 4)
    return originals, inpainted(originals)


@pytest.fixture(scope="module")
def per_image(faces) -> dict[tuple[str, str], Row]:
    _require(LPIPS_WEIGHTS / "vgg16_features.pth")
    return {(r.metric, r.implementation): r for r in per_image_rows(*faces, "test", LPIPS_WEIGHTS)}


@pytest.mark.parametrize("metric, implementation, module", [
    ("PSNR", "scikit-image", "skimage"), ("PSNR", "torchmetrics", "torchmetrics"),
    ("SSIM", "scikit-image", "skimage"), ("SSIM", "torchmetrics", "torchmetrics"),
    ("SSIM", "torchmetrics, frame cropped", "torchmetrics"),
    *[(f"LPIPS ({net})", impl, impl) for net in ("alex", "vgg", "squeeze") for impl in ("lpips", "torchmetrics")],
    ("DISTS", "DISTS_pytorch", "DISTS_pytorch"),
])
def test_per_image_differences_stay_within_tolerance(per_image, metric, implementation, module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: {metric} is not compared with it")
    row = per_image[(metric, implementation)]
    assert len(row.ours) == 4
    assert row.max_diff <= TOLERANCES[(metric, implementation)], row


def test_the_ssim_difference_is_the_border_frame(per_image):
    """torchmetrics' SSIM differs from scikit-image by averaging its padded 5-px frame: cropped, it
    agrees; whole, it is higher (the mirrored frame is more similar than the image's inside)."""
    if importlib.util.find_spec("torchmetrics") is None:
        pytest.skip("torchmetrics is not installed")
    whole, cropped = per_image[("SSIM", "torchmetrics")], per_image[("SSIM", "torchmetrics, frame cropped")]
    assert whole.max_diff > 100 * CLOSE and cropped.max_diff < CLOSE / 10


@pytest.mark.parametrize("implementation, module", [
    ("torchmetrics", "torchmetrics"), ("torch-fidelity", "torch_fidelity"), ("pytorch-fid", "pytorch_fid")])
def test_inception_features_stay_within_tolerance(implementation, module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: FID is not compared with it")
    _require(FID_WEIGHTS, DATA / "celeba" / "val")
    originals = load_faces(DATA, "celeba64", 1)
    rows = {r.implementation: r for r in _feature_rows(originals)}
    assert rows[implementation].max_diff <= TOLERANCES[("Inception features", implementation)]


_CACHE: dict = {}


def _feature_rows(originals):
    """One extraction per implementation for the three parametrized cases."""
    if "rows" not in _CACHE:
        _CACHE["rows"] = set_rows(originals, inpainted(originals), "test", FID_WEIGHTS, features_only=True)
    return _CACHE["rows"]


def test_every_difference_above_close_has_a_reason():
    rows = [Row("SSIM", "torchmetrics", "x", np.array([0.8]), np.array([0.9])),
            Row("PSNR", "scikit-image", "x", np.array([30.0]), np.array([30.0 + CLOSE / 2])),
            Row("FID", "made-up", "x", np.array([1.0]), np.array([2.0]))]
    text = render(rows, ["# t"])
    assert "(R1)" in text and REASONS[("SSIM", "torchmetrics")] in text
    assert "| 5.00e-05 |" in text  # below CLOSE: no reason needed
    assert "(unexplained)" in text  # and a new difference is never silently accepted


def test_committed_report_has_no_unexplained_difference():
    report = Path(__file__).resolve().parents[2] / "reports" / "metrics" / "CALIBRATION.md"
    text = report.read_text()
    assert "(unexplained)" not in text
    for metric in ("PSNR", "SSIM", "LPIPS (alex)", "LPIPS (vgg)", "LPIPS (squeeze)", "DISTS", "FID", "KID",
                   "P-IDS", "U-IDS"):
        assert f"| {metric} |" in text, metric
