"""The leaderboard's statistics: PSNR of a set, paired bootstrap, ranks, common images, hole bins.

The bootstrap cases are small enough to enumerate every resample (4 images: 4^4 = 256
equally likely resamples), so the expected intervals are computed by hand in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from inpaintbench.report.statistics import (
    common_samples,
    paired_comparison,
    resample_weights,
    set_psnr,
    set_psnr_interval,
)
from inpaintbench.report.tables import hole_bin, hole_bin_labels
from inpaintbench.store.records import ResultsStore, SampleRecord


def write_results(path, values, *, mask="wide", errors=(), hole_fraction=None, nfe=None):
    """A results file: ``values = {method: {metric: [per-image values]}}`` (images s0, s1, ...);
    ``errors`` = (method, image index) pairs recorded as failures instead."""
    records = []
    for method, metrics in values.items():
        n = len(next(iter(metrics.values())))
        for i in range(n):
            base = dict(task="inpainting", method=method, method_name=method, config={"name": method},
                        config_hash=f"h-{method}", dataset="toy", dataset_hash="dh", mask=mask, mask_hash="mh",
                        mask_config={"name": mask}, sample_id=f"s{i}", seed=0)
            if (method, i) in errors:
                records.append(SampleRecord(**base, status="error", error="RuntimeError: kaboom"))
                continue
            records.append(SampleRecord(
                **base, status="ok", metrics={k: float(v[i]) for k, v in metrics.items()}, time_s=0.001 * (1 + i),
                batch_size=n, hole_fraction=None if hole_fraction is None else hole_fraction[i],
                counters={} if nfe is None or method not in nfe else {"nfe": float(nfe[method])}))
    ResultsStore(path).append(records)
    return path


# --- PSNR of a set --------------------------------------------------------------------------

def test_set_psnr_is_the_psnr_of_the_mean_mse():
    # MSE 10^-2 and 10^-3: mean 0.0055 -> 22.5964 dB (the mean of the PSNRs would be 25).
    assert set_psnr([20.0, 30.0]) == pytest.approx(-10 * math.log10(0.0055), abs=1e-12)
    assert set_psnr([20.0, math.inf]) == pytest.approx(-10 * math.log10(0.005), abs=1e-12)
    assert set_psnr([math.inf, math.inf]) == math.inf
    assert math.isnan(set_psnr([]))


def test_set_psnr_interval_maps_the_mse_interval():
    value, low, high = set_psnr_interval([20.0, 20.0, 20.0])
    assert value == pytest.approx(20.0) and low == pytest.approx(20.0) and high == pytest.approx(20.0)
    value, low, high = set_psnr_interval([10.0, 30.0])
    assert low < value < high


def test_half_exact_method_gets_a_psnr_summary_no_higher_than_all_images_pooled(tmp_path):
    """Issue 13: one method reconstructs half its images exactly (inf dB). Its summary counts
    every image and is not higher than its all-images figure (the PSNR of all its images'
    pooled MSE): the old rule dropped the exact images (mean over the rest), a 100 dB cap
    would report (100 + 20) / 2 = 60 dB."""
    from inpaintbench.report.leaderboard import load_records
    from inpaintbench.report.tables import summary_table
    from inpaintbench.report.gate import summarize

    psnr = [math.inf, math.inf, 20.0, 20.0]
    path = write_results(tmp_path / "r.jsonl", {"half-exact": {"psnr": psnr, "ssim": [1, 1, 0.5, 0.5]},
                                                "other": {"psnr": [21.0] * 4, "ssim": [0.6] * 4}})
    pooled = 10 * math.log10(1 / np.mean([0.0, 0.0, 0.01, 0.01]))  # all images: 23.0103 dB
    gate = summarize(path)["half-exact | wide"]["psnr"]
    assert gate <= pooled + 1e-9 and gate == pytest.approx(pooled)
    frame, _, _ = load_records([path])
    shown = summary_table(frame).set_index("method").loc["half-exact", "PSNR ↑"]
    assert shown.startswith(f"{pooled:.2f}")  # 23.01, with an interval; no "+k exact", nothing dropped
    assert float(shown.split()[0]) > 20.0  # the exact images count


# --- paired bootstrap: exact enumeration of 4 images ------------------------------------------

def _two(d):
    """Reference A at 0.5 on 4 images, B = A + d; LPIPS (lower is better)."""
    a = np.full(4, 0.5)
    return pd.DataFrame({"A": a, "B": a + np.asarray(d)}, index=[f"s{i}" for i in range(4)])


def test_exact_enumeration_has_every_resample_once():
    weights = resample_weights(4, exact=True)
    assert weights.shape == (256, 4) and (weights.sum(axis=1) == 4).all()
    # an image drawn k times: C(4, k) 3^(4-k) of the 256 resamples
    assert np.bincount(weights[:, 0], minlength=5).tolist() == [81, 108, 54, 12, 1]


def test_paired_interval_hand_computed():
    # d = (-1, 1, 1, 1) / 100. With k draws of image 0 the mean difference is (4 - 2k) / 400:
    # k = 4: -0.01 (1 of 256), 3: -0.005 (12), 2: 0 (54), 1: 0.005 (108), 0: 0.01 (81).
    # Two methods -> one comparison, 95 %: the 2.5 % quantile is -0.005 (F(-0.01) = 1/256 < 0.025
    # <= F(-0.005) = 13/256), the 97.5 % quantile 0.01 (F(0.005) = 175/256). Zero is inside: tied.
    comparison = paired_comparison(_two([-0.01, 0.01, 0.01, 0.01]), "lpips", exact=True)
    assert comparison.reference == "A" and comparison.reference_is_best
    b = comparison.rows.set_index("method").loc["B"]
    assert b["diff"] == pytest.approx(0.005)
    assert b["low"] == pytest.approx(-0.005) and b["high"] == pytest.approx(0.01)
    assert b["tied"] and not b["significant"]
    # Ranks: B is first (alone or tied, 'min' ranks) when the mean difference is <= 0:
    # 67/256 > 2.5 %, so both ranks span [1, 2].
    assert (b["rank"], b["rank_low"], b["rank_high"]) == (2, 1, 2)
    assert comparison.n_comparisons == 1 and comparison.level == pytest.approx(0.95)


def test_paired_interval_excludes_zero_when_every_image_agrees():
    # d = (0, 1, 1, 1) / 100: the mean difference is 0 only when all four draws are image 0
    # (1/256 < 2.5 %), so the interval is [0.0025, 0.01]: B is worse, marked.
    comparison = paired_comparison(_two([0.0, 0.01, 0.01, 0.01]), "lpips", exact=True)
    b = comparison.rows.set_index("method").loc["B"]
    assert b["low"] == pytest.approx(0.0025) and b["high"] == pytest.approx(0.01)
    assert b["significant"] and not b["tied"]


def test_bonferroni_widens_the_interval_with_the_number_of_comparisons():
    # Same d as the hand-computed case, but 8 methods: k = 7 comparisons, each interval at
    # 1 - 0.05 / 7; its lower quantile 0.05 / 14 = 0.00357 < 1/256, so the low end is -0.01.
    values = _two([-0.01, 0.01, 0.01, 0.01])
    for j in range(6):
        values[f"far{j}"] = 0.9 + 0.01 * j
    comparison = paired_comparison(values, "lpips", exact=True)
    assert comparison.n_comparisons == 7 and comparison.level == pytest.approx(1 - 0.05 / 7)
    b = comparison.rows.set_index("method").loc["B"]
    assert b["low"] == pytest.approx(-0.01) and b["high"] == pytest.approx(0.01)
    far = comparison.rows.set_index("method").loc["far0"]
    assert far["significant"] and far["diff"] == pytest.approx(0.4)


def test_chosen_reference_and_higher_is_better_psnr():
    values = pd.DataFrame({"good": [30.0, 31.0, 32.0, 33.0], "bad": [20.0, 20.0, 21.0, 22.0]},
                          index=["a", "b", "c", "d"])
    comparison = paired_comparison(values, "psnr", reference="bad", exact=True)
    assert comparison.reference == "bad" and not comparison.reference_is_best
    good = comparison.rows.set_index("method").loc["good"]
    assert good["rank"] == 1 and good["significant"] and good["low"] > 0


def test_paired_psnr_handles_exact_images():
    values = pd.DataFrame({"exact": [math.inf, math.inf, 20.0, 20.0], "plain": [20.0] * 4})
    comparison = paired_comparison(values, "psnr", n_resamples=200)
    row = comparison.rows.set_index("method").loc["plain"]
    assert comparison.reference == "exact" and row["diff"] == pytest.approx(20.0 - 23.0103, abs=1e-3)
    assert not math.isnan(row["low"]) and not math.isnan(row["high"])


def test_bootstrap_is_seeded():
    values = _two([0.001, -0.002, 0.003, 0.0])
    one = paired_comparison(values, "lpips", n_resamples=300).rows
    two = paired_comparison(values, "lpips", n_resamples=300).rows
    pd.testing.assert_frame_equal(one, two)


# --- which images are compared ----------------------------------------------------------------

def test_methods_are_compared_on_the_images_all_completed(tmp_path):
    from inpaintbench.report.leaderboard import load_records, write_leaderboard

    path = write_results(tmp_path / "r.jsonl", {
        "full": {"psnr": [20.0, 21.0, 22.0, 23.0]},
        "partial": {"psnr": [25.0, 25.0, 25.0, 10.0]},
        "broken": {"psnr": [0.0] * 4},
    }, errors={("partial", 3), ("broken", 0), ("broken", 1), ("broken", 2), ("broken", 3)})
    frame, _, _ = load_records([path])
    common = common_samples(frame)
    assert common.ids == ["s0", "s1", "s2"] and common.failed_all == ["broken"]
    assert common.incomplete == {"partial": 1}
    board = write_leaderboard([path], tmp_path / "rep", html=False).read_text()
    assert "`broken` failed on all samples: RuntimeError: kaboom" in board
    assert "`partial` failed on 1 of 4 samples" in board
    assert "compared on the 3 of 4 images every method completed" in board
    table = board.split("## inpainting: toy · wide")[1]
    assert "| full " in table and "| broken " not in table.split("**Paired")[0]


# --- hole-size bins ---------------------------------------------------------------------------

def test_hole_bins_follow_lamas_evaluator():
    # LaMa: np.linspace(0, 1, 11), searchsorted(side="right") - 1, 1.0 into the last bin.
    assert hole_bin([0.0, 0.05, 0.1, 0.5, 0.999, 1.0]).tolist() == [0, 0, 1, 5, 9, 9]
    assert hole_bin_labels()[:2] == ["0-10%", "10-20%"] and hole_bin_labels()[-1] == "90-100%"


def test_leaderboard_has_paired_bins_compute_and_html(tmp_path):
    from inpaintbench.report.leaderboard import write_leaderboard

    rng = np.random.default_rng(0)
    n = 8
    base = rng.uniform(0.05, 0.2, n)
    path = write_results(tmp_path / "r.jsonl", {
        "best": {"lpips": base, "psnr": 25 + rng.normal(0, 1, n)},
        "close": {"lpips": base + rng.normal(0, 0.002, n), "psnr": 25 + rng.normal(0, 1, n)},
        "worst": {"lpips": base + 0.1, "psnr": 15 + rng.normal(0, 1, n)},
    }, hole_fraction=[0.05, 0.05, 0.15, 0.15, 0.25, 0.25, 0.35, 0.35], nfe={"best": 1, "close": 25})
    report = tmp_path / "rep"
    board = write_leaderboard([path], report, n_resamples=500).read_text()
    assert "Paired comparison on LPIPS (alex) (8 images, 500 bootstrap resamples; 2 comparisons with `best`" in board
    assert "| worst " in board and "worse" in board
    assert "0-10% (n=2)" in board and "30-40% (n=2)" in board
    for fig in ("holes_inpainting_toy_wide.png", "compute_inpainting_toy_wide.png"):
        assert (report / "figures" / fig).stat().st_size > 1000 and f"figures/{fig}" in board
    page = (report / "LEADERBOARD.html").read_text()
    assert "<table class=\"sortable\">" in page and "viewer-data" in page
    # a chosen reference
    board = write_leaderboard([path], report, reference="worst", n_resamples=200, html=False).read_text()
    assert "comparisons with `worst`" in board and "better" in board


def test_skipped_images_are_not_images_of_the_table():
    frame = pd.DataFrame({"method": ["a", "a", "b", "b"], "sample_id": ["s0", "s1", "s0", "s1"],
                          "status": ["ok", "skipped", "ok", "skipped"], "psnr": [20.0, None, 21.0, None]})
    common = common_samples(frame)
    assert common.ids == ["s0"] and common.all_ids == ["s0"] and not common.incomplete and not common.note()


# --- the statistics without scipy.stats, the reports without their heavy imports ------------

def test_t_quantile_and_ranks_match_scipy_stats():
    """The lazily computed t-quantile and the numpy ranks are scipy.stats' numbers exactly."""
    from scipy import stats

    from inpaintbench.report.statistics import _ranks, t_quantile

    for df in (1, 2, 5, 29, 99, 1999):
        for p in (0.9, 0.975, 1 - 0.05 / 2 / 7):
            assert t_quantile(p, df) == float(stats.t.ppf(p, df))
    rng = np.random.default_rng(3)
    values = rng.integers(0, 4, size=(50, 7)).astype(float)  # many ties
    values[rng.random(values.shape) < 0.1] = np.nan
    values[rng.random(values.shape) < 0.1] = np.inf
    for higher in (True, False):
        scores = -values if higher else values
        expected = stats.rankdata(np.where(np.isnan(scores), np.inf, scores), method="min", axis=-1)
        assert np.array_equal(_ranks(values, higher), expected)


def test_importing_the_reports_loads_no_scipy_stats_nor_matplotlib():
    """Every command that imports the leaderboard would pay these (about 1.5 s) before doing anything."""
    import subprocess
    import sys

    code = ("import sys, inpaintbench.report.leaderboard, inpaintbench.report.orderings, "
            "inpaintbench.harness.sweep; print(sorted(m for m in ('scipy.stats', 'matplotlib', 'matplotlib.pyplot') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
