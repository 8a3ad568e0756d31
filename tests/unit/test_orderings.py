"""Published orderings checked on results: verdicts from the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inpaintbench.core.errors import InputError
from inpaintbench.report.orderings import Claim, check_claim, load_claims


def _frame(gap: float, n: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.3, n)
    rows = []
    for method, values in (("a", base), ("b", base + gap + rng.normal(0, 0.002, n))):
        rows += [{"dataset": "d", "mask": "wide", "method": method, "sample_id": str(i), "status": "ok",
                  "lpips": float(v)} for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def _claim(**changes) -> Claim:
    return Claim(**{"title": "a beats b", "source": "paper", "dataset": "d", "mask": "wide", "metric": "lpips",
                    "better": "a", "worse": "b", **changes})


@pytest.mark.parametrize(("gap", "expect", "verdict"), [
    (0.05, "better", "reproduced"),        # b is worse by 0.05 LPIPS on every image
    (-0.05, "better", "contradicted"),     # b is better
    (0.0, "better", "not separated"),
    (0.0, "tie", "reproduced (tied)"),
    (0.05, "tie", "not reproduced (separated)"),
])
def test_verdicts_follow_the_paired_difference(gap, expect, verdict):
    row = check_claim(_frame(gap), _claim(expect=expect))
    assert row["verdict"] == verdict and row["n"] == 20


def test_missing_method_is_not_measured_and_bad_claims_are_refused(tmp_path):
    assert check_claim(_frame(0.05), _claim(worse="c"))["verdict"].startswith("not measured")
    with pytest.raises(InputError, match="metric"):
        _claim(metric="lpipz")
    bad = tmp_path / "c.toml"
    bad.write_text('[[claims]]\ntitle = "x"\n')
    with pytest.raises(InputError, match="malformed"):
        load_claims(bad)


def test_the_bundled_faces_claims_load():
    from importlib import resources

    claims = load_claims(str(resources.files("inpaintbench") / "claims" / "faces.toml"))
    assert len(claims) >= 20 and {c.metric for c in claims} >= {"lpips", "psnr", "ssim"}
