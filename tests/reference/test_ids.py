"""P-IDS / U-IDS against MAT's own ``compute_ids`` on the same Inception features.

MAT's ``metrics/inception_discriminative_score.py`` is imported from ``../shared/reference/mat``
with its feature extraction (``metric_utils``) stubbed to hand it the features of the test:
everything after the extraction (the SVM, U-IDS, P-IDS) is MAT's code as published.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from inpaintbench.metrics.ids import (
    IDS_MEANINGFUL_IMAGES,
    IDS_MIN_IMAGES,
    IDSUnavailable,
    ids_scores,
    ids_scores_of_rows,
)

pytest.importorskip("sklearn", reason="P-IDS/U-IDS need scikit-learn (the [fid] extra)")

MAT = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mat"
MAT_IDS = MAT / "metrics" / "inception_discriminative_score.py"


class _Stats:
    """What MAT's ``FeatureStats`` returns to ``compute_ids``: ``get_all()``, float32 as MAT keeps it."""

    def __init__(self, features: np.ndarray):
        self.features = np.asarray(features, dtype=np.float32)

    def get_all(self) -> np.ndarray:
        return self.features


@pytest.fixture(scope="module")
def mat_compute_ids():
    """MAT's ``compute_ids(opts, max_real, num_gen)``; ``opts.real`` / ``opts.fake`` carry the features."""
    if not MAT_IDS.exists():
        pytest.skip(f"{MAT_IDS} is absent (MAT's code lives in ../shared/reference/mat beside the checkout)")
    package = types.ModuleType("mat_metrics")
    package.__path__ = [str(MAT_IDS.parent)]
    utils = types.ModuleType("mat_metrics.metric_utils")
    utils.compute_feature_stats_for_dataset = lambda opts, **kwargs: _Stats(opts.real)
    utils.compute_feature_stats_for_generator = lambda opts, **kwargs: _Stats(opts.fake)
    package.metric_utils = utils
    saved = {k: sys.modules.get(k) for k in ("mat_metrics", "mat_metrics.metric_utils")}
    sys.modules.update({"mat_metrics": package, "mat_metrics.metric_utils": utils})
    try:
        spec = importlib.util.spec_from_file_location("mat_metrics.inception_discriminative_score", MAT_IDS)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value

    def compute(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        opts = types.SimpleNamespace(rank=0, real=real, fake=fake)
        return module.compute_ids(opts, max_real=None, num_gen=len(fake))

    return compute


def features(n: int, dim: int, shift: float, seed: int) -> np.ndarray:
    """Non-negative features (pool3 features are averages of ReLUs), float32 as the cache keeps them."""
    rng = np.random.default_rng(seed)
    return (rng.gamma(0.5, 0.6, (n, dim)) + shift).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("n, dim, shift", [(300, 16, 0.05), (200, 64, 0.0), (40, 2048, 0.2)])
def test_equal_to_mats_compute_ids_on_the_same_features(mat_compute_ids, n, dim, shift):
    # Low-dimensional sets with overlapping classes give non-trivial scores (U-IDS, P-IDS > 0);
    # the 2048-d set is the real width, where 40 images are separable (both 0, as in MAT).
    real, fake = features(n, dim, 0.0, 1), features(n, dim, shift, 2)
    u_mat, p_mat = mat_compute_ids(real, fake)
    ours = ids_scores({f"s{i}": r for i, r in enumerate(real)}, {f"s{i}": f for i, f in enumerate(fake)})
    assert (ours.u_ids, ours.p_ids) == (u_mat, p_mat)
    assert ours.n == n
    if dim < 2048:
        assert 0.05 < ours.u_ids < 0.5 and 0.05 < ours.p_ids < 0.5  # the comparison is not of two zeros


def test_pairs_are_by_sample_id_not_by_order(mat_compute_ids):
    real, fake = features(300, 16, 0.0, 3), features(300, 16, 0.05, 4)
    ids = [f"img{i:03d}" for i in range(300)]
    order = np.random.default_rng(5).permutation(300)
    fake_shuffled = {ids[i]: fake[i] for i in order}  # another insertion (file) order, same pairs
    ours = ids_scores(dict(zip(ids, real)), fake_shuffled)
    u_mat, p_mat = mat_compute_ids(real, fake)  # MAT on rows aligned by construction
    assert (ours.u_ids, ours.p_ids) == (u_mat, p_mat)
    # Pairing by position of the shuffled set would be another (wrong) P-IDS.
    _, p_by_position = mat_compute_ids(real, fake[order])
    assert p_by_position != p_mat
    # Only the ids both sides hold are scored.
    partial = ids_scores(dict(zip(ids, real)), {s: f for s, f in list(fake_shuffled.items())[:250]})
    assert partial.n == 250


def test_minimum_set_size_and_meaning():
    assert IDS_MIN_IMAGES == 2 and IDS_MEANINGFUL_IMAGES == 2048
    with pytest.raises(IDSUnavailable, match="at least 2 image pairs"):
        ids_scores_of_rows(np.ones((1, 8)), np.zeros((1, 8)))
    with pytest.raises(IDSUnavailable, match="one shape"):
        ids_scores_of_rows(np.ones((4, 8)), np.zeros((3, 8)))
    score = ids_scores_of_rows(features(2, 2048, 0.0, 6), features(2, 2048, 0.0, 7))
    assert score.small and (score.u_ids, score.p_ids) == (0.0, 0.0)  # 4 points in 2048-d: separable


def test_identical_sets_are_indistinguishable():
    real = features(100, 16, 0.0, 8)
    score = ids_scores_of_rows(real, real.copy())
    assert score.u_ids == 0.5 and score.p_ids == 0.0  # a tie is not "more real"


def test_set_score_reports_ids_only_when_meaningful():
    from inpaintbench.metrics.fid import SetScore
    from inpaintbench.metrics.table import SET_METRICS

    assert [m.name for m in SET_METRICS] == ["fid", "kid", "pids", "uids"]
    score = SetScore(1.0, 0.1, 0.01, 10, 5)
    assert score.value("pids") is None and score.value("fid") == 1.0
