"""The statistics of the leaderboards: set summaries, paired bootstrap comparisons, ranks.

Rules, stated once (the leaderboard prints :data:`METHOD_NOTE`):

* **PSNR summaries drop nothing.** A set of images is summarised by the PSNR of its mean MSE,
  ``10 log10(1 / mean_i MSE_i)`` (:func:`set_psnr`), where ``MSE_i = 10^(-PSNR_i / 10)`` is
  recovered from each record; an exact reconstruction (``inf`` dB) contributes ``MSE = 0``.
  The summary is finite unless *every* image is exact, and it is never higher than the mean
  of per-image PSNRs (Jensen), so an exact image can neither be dropped nor inflate the
  figure. Its interval is the Student-t interval of the mean MSE mapped through the same
  (monotone) transform. Hole PSNR follows the same rule. Other metrics are per-image means.
* **Methods are compared on the same images**: the images every method of a table completed
  (:func:`common_samples`); a method that failed on every image is left out and named.
* **Paired bootstrap** (:func:`paired_comparison`): images are resampled with replacement
  (``n_resamples`` = 2,000, seeded), the same resample for every method, and each method's
  summary is recomputed on it. The difference to the reference (the table's best, or the
  method chosen with ``--reference``) has a percentile interval, **Bonferroni-corrected** for
  the number of comparisons in the table (``k = methods - 1``: each interval has level
  ``1 - 0.05 / k``, so all of them hold together with probability >= 95 %). A difference whose
  interval excludes zero is marked; a method whose interval includes zero is *tied* with the
  reference. The rank (1 = best) has the 2.5-97.5 % percentile interval of the ranks over the
  same resamples (not corrected).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from inpaintbench.metrics.table import metric_info

if TYPE_CHECKING:  # frames are built in paired_comparison alone; importing this module needs no pandas
    import pandas as pd

#: Confidence level of every interval (family-wise for the paired comparisons).
LEVEL = 0.95
#: Bootstrap resamples of the paired comparisons.
N_RESAMPLES = 2000
#: Seed of the bootstrap (reports are reproducible to the digit).
BOOTSTRAP_SEED = 0
#: Above this many resamples in total, the exact enumeration of all ``n^n`` resamples is refused.
EXACT_LIMIT = 200_000

METHOD_NOTE = (
    "**Statistics.** PSNR and hole PSNR of a set of images are the PSNR of the mean MSE over the set "
    "(exact reconstructions count as MSE 0, nothing is dropped; ± becomes the Student-t interval of the mean "
    "MSE, mapped to dB); other metrics are means over images with a 95 % Student-t interval. Every table "
    "compares its methods on the same images (those all of them completed). *Paired comparison*: the images "
    f"are resampled with replacement ({N_RESAMPLES:,} seeded bootstrap resamples, the same resample for "
    "every method) and each method's summary is recomputed; Δ is the difference to the reference (the "
    "table's best unless a reference was chosen) with its percentile interval, Bonferroni-corrected for the "
    "k = methods - 1 comparisons of the table (each interval at level 1 - 0.05/k, all of them together at "
    "95 %). `*` marks a Δ whose interval excludes zero; rows whose interval includes zero are *tied* with "
    "the reference. Rank (1 = best) comes with the 2.5-97.5 % interval of the ranks over the same resamples "
    "(not corrected). With few images the bootstrap is optimistic: read these as a guide, not a proof."
)


def is_db(key: str) -> bool:
    """Whether record key ``key`` is a PSNR in dB (summarised by :func:`set_psnr`)."""
    try:
        return metric_info(key).unit == "dB"
    except Exception:  # noqa: BLE001 - unknown keys (fid, time) are plain means
        return False


def mse_of_psnr(values: np.ndarray | pd.Series) -> np.ndarray:
    """Per-image MSE (``data_range = 1``) from PSNR in dB; ``inf`` dB gives 0."""
    values = np.asarray(values, dtype=float)
    return np.power(10.0, -values / 10.0)


def psnr_of_mse(mse: float | np.ndarray) -> float | np.ndarray:
    """``10 log10(1 / mse)``: ``inf`` for 0, NaN for NaN."""
    mse = np.asarray(mse, dtype=float)
    with np.errstate(divide="ignore"):
        out = np.where(mse <= 0, np.inf, -10.0 * np.log10(np.where(mse <= 0, 1.0, mse)))
    out = np.where(np.isnan(mse), np.nan, out)
    return float(out) if out.ndim == 0 else out


def set_psnr(values: pd.Series | np.ndarray) -> float:
    """PSNR of a set of images: the PSNR of their mean MSE (NaN values skipped; NaN if none).

    Example:
        >>> round(set_psnr([20.0, float("inf")]), 4)  # MSE 0.01 and 0: mean 0.005
        23.0103
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan
    return float(psnr_of_mse(mse_of_psnr(values).mean()))


@lru_cache(maxsize=None)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    The same number as ``scipy.stats.t.ppf(p, df)`` (which computes it with this
    ``scipy.special.stdtrit``); imported here, on first use, because ``scipy.stats`` costs
    about a second of import time for this one value. ``p`` in (0, 1), ``df >= 1``.

    Example:
        >>> round(t_quantile(0.975, 9), 4)
        2.2622
    """
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def mean_ci(values: pd.Series | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Mean and the half-width of its Student-t interval (NaN if fewer than 2 values).

    ``level`` in (0, 1); both numbers are in the units of ``values``.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    if n < 2 or not np.isfinite(values).all():
        return mean, math.nan
    return mean, float(t_quantile(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


def set_psnr_interval(values: pd.Series | np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """``(set PSNR, low, high)``: the Student-t interval of the mean MSE mapped to dB.

    ``high`` is ``inf`` when the interval of the MSE reaches 0; low and high are NaN with
    fewer than 2 images.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    value = set_psnr(values)
    mse = mse_of_psnr(values)
    mean, half = mean_ci(mse, level)
    if math.isnan(half):
        return value, math.nan, math.nan
    return value, float(psnr_of_mse(mean + half)), float(psnr_of_mse(max(mean - half, 0.0)))


def summary_value(values: pd.Series | np.ndarray, key: str) -> float:
    """The one number a table shows for metric ``key`` over a set of images."""
    if is_db(key):
        return set_psnr(values)
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else math.nan


def summary_interval(values: pd.Series | np.ndarray, key: str, level: float = LEVEL) -> tuple[float, float, float]:
    """``(value, low, high)`` of :func:`summary_value` with its (unpaired) interval."""
    if is_db(key):
        return set_psnr_interval(values, level)
    mean, half = mean_ci(values, level)
    return mean, mean - half, mean + half


# --- which images a table compares ------------------------------------------------------------

@dataclass
class CommonSet:
    """The images a table compares its methods on.

    Attributes:
        ids: sample ids every compared method completed (status ok), in first-seen order.
        all_ids: every sample id of the table.
        failed_all: methods with no successful sample (left out of the table).
        incomplete: ``{method: number of images it did not complete}`` for the others.
    """

    ids: list[str]
    all_ids: list[str]
    failed_all: list[str]
    incomplete: dict[str, int]

    def note(self) -> str:
        """One line saying what was left out and why ('' when nothing was)."""
        parts = []
        if self.incomplete:
            left = len(self.all_ids) - len(self.ids)
            who = ", ".join(f"`{m}` ({k})" for m, k in self.incomplete.items())
            parts.append(f"compared on the {len(self.ids)} of {len(self.all_ids)} images every method completed "
                         f"({left} left out; images not completed: {who})")
        if self.failed_all:
            parts.append("left out, failed on all samples: " + ", ".join(f"`{m}`" for m in self.failed_all))
        return "; ".join(parts)


def common_samples(group: pd.DataFrame) -> CommonSet:
    """The images every method of one (task, dataset, condition) table completed.

    Records of status ``"skipped"`` (an image with nothing to restore, e.g. no hole) are not
    images of the table at all.
    """
    group = group[group["status"] != "skipped"]
    all_ids = list(dict.fromkeys(group["sample_id"].astype(str)))
    ok = group[group["status"] == "ok"]
    done = {m: set(g["sample_id"].astype(str)) for m, g in ok.groupby("method", sort=False)}
    methods = list(dict.fromkeys(group["method"]))
    failed_all = [m for m in methods if m not in done]
    common = set(all_ids)
    for ids in done.values():
        common &= ids
    incomplete = {m: len(all_ids) - len(ids) for m, ids in done.items() if len(ids) < len(all_ids)}
    return CommonSet([s for s in all_ids if s in common], all_ids, failed_all, incomplete)


def value_matrix(group: pd.DataFrame, key: str, ids: list[str], methods: list[str]) -> pd.DataFrame:
    """Per-image values of metric ``key``: rows ``ids``, columns ``methods`` (ok records)."""
    ok = group[group["status"] == "ok"]
    wide = ok.pivot_table(index="sample_id", columns="method", values=key, aggfunc="last", dropna=False)
    wide.index = wide.index.astype(str)
    return wide.reindex(index=ids, columns=methods)


# --- the paired bootstrap ------------------------------------------------------------------

def resample_weights(n: int, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     exact: bool = False) -> np.ndarray:
    """How often each image appears in each bootstrap resample: int ``[R, n]``, rows sum to n.

    ``exact=True`` enumerates all ``n^n`` ordered resamples (each equally likely), so the
    bootstrap distribution is exact: for hand-checked small cases.
    """
    if n == 0:
        return np.zeros((0, 0), dtype=np.int64)
    if exact:
        if n ** n > EXACT_LIMIT:
            raise ValueError(f"exact enumeration of {n}^{n} resamples is too large; use the random bootstrap")
        rows = np.array(list(itertools.product(range(n), repeat=n)))
        return np.stack([np.bincount(r, minlength=n) for r in rows])
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def _resampled_summaries(values: np.ndarray, weights: np.ndarray, key: str) -> np.ndarray:
    """Each method's summary on each resample: ``[R, M]`` from values ``[n, M]``."""
    n = values.shape[0]
    if is_db(key):
        mse = mse_of_psnr(values)
        return psnr_of_mse(weights @ mse / n)
    return weights @ values / n


def _quantile(samples: np.ndarray, q: float) -> float:
    """Percentile with the inverted-CDF rule (the smallest x with F(x) >= q), inf-safe."""
    samples = np.sort(samples[~np.isnan(samples)])
    if len(samples) == 0:
        return math.nan
    k = max(0, min(len(samples) - 1, math.ceil(q * len(samples) - 1e-9) - 1))
    return float(samples[k])


def _ranks(summaries: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Rank 1 = best per row (ties share the lower rank), NaN summaries last: int ``[R, M]``.

    ``scipy.stats.rankdata(..., method="min", axis=-1)`` without importing scipy.stats: a
    method's rank is 1 + the number of methods strictly better on that row.
    """
    scores = -summaries if higher_is_better else summaries
    scores = np.where(np.isnan(scores), np.inf, scores)
    return 1 + (scores[..., None, :] < scores[..., :, None]).sum(axis=-1)


@dataclass
class Comparison:
    """A paired comparison of a table's methods on one metric (see the module docstring).

    ``rows`` has one row per method, best first: ``method``, ``value`` (summary), ``diff``
    (value - reference value), ``low``/``high`` (its corrected interval), ``significant``
    (interval excludes zero), ``tied`` (includes it; the reference itself is tied), ``rank``,
    ``rank_low``, ``rank_high``.
    """

    metric: str
    reference: str
    reference_is_best: bool
    n_images: int
    n_resamples: int
    n_comparisons: int
    level: float
    rows: pd.DataFrame


def paired_comparison(values: pd.DataFrame, key: str, reference: str | None = None,
                      n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED, exact: bool = False,
                      level: float = LEVEL) -> Comparison:
    """Compare every method with a reference on the same images by the paired bootstrap.

    Args:
        values: per-image values of metric ``key``, rows = images (the same for every method),
            columns = methods; no NaN (see :func:`common_samples`).
        key: the record key of the metric (direction and summary rule from the metric table).
        reference: the method differences are taken to; default: the best summary.
        n_resamples, seed: the bootstrap; ``exact=True`` enumerates every resample instead.
        level: family-wise level; each of the ``k = methods - 1`` intervals gets
            ``1 - (1 - level) / k`` (Bonferroni).

    Returns:
        a :class:`Comparison`.
    """
    higher = metric_info(key).higher_is_better
    methods = list(values.columns)
    data = values.to_numpy(dtype=float)
    if np.isnan(data).any():
        raise ValueError("paired_comparison needs a value for every (image, method); restrict to common images")
    point = np.array([summary_value(data[:, j], key) for j in range(len(methods))])
    point_rank = _ranks(point[None, :], higher)[0]
    best = methods[int(np.argmin(point_rank))] if methods else ""
    ref = reference if reference is not None else best
    if ref not in methods:
        raise ValueError(f"reference method {ref!r} is not in the table; it has {methods}")
    r = methods.index(ref)
    weights = resample_weights(data.shape[0], n_resamples, seed, exact)
    summaries = _resampled_summaries(data, weights, key) if data.shape[0] else np.zeros((0, len(methods)))
    with np.errstate(invalid="ignore"):
        diffs = summaries - summaries[:, [r]]
    # inf - inf (both exact on a resample) is no difference at all.
    diffs = np.where(np.isnan(diffs) & np.isinf(summaries), 0.0, diffs)
    ranks = _ranks(summaries, higher) if len(summaries) else np.zeros((0, len(methods)))
    k = max(1, len(methods) - 1)
    per = 1 - (1 - level) / k
    rows = []
    for j, method in enumerate(methods):
        with np.errstate(invalid="ignore"):
            diff = point[j] - point[r] if not (np.isinf(point[j]) and np.isinf(point[r])) else 0.0
        if j == r:
            low = high = 0.0
        else:
            low, high = _quantile(diffs[:, j], (1 - per) / 2), _quantile(diffs[:, j], 1 - (1 - per) / 2)
        significant = j != r and (low > 0 or high < 0)
        rows.append({"method": method, "value": float(point[j]), "diff": float(diff), "low": low, "high": high,
                     "significant": bool(significant), "tied": not significant, "rank": int(point_rank[j]),
                     "rank_low": _quantile(ranks[:, j], (1 - level) / 2) if len(ranks) else math.nan,
                     "rank_high": _quantile(ranks[:, j], 1 - (1 - level) / 2) if len(ranks) else math.nan})
    import pandas as pd

    table = pd.DataFrame(rows).sort_values(["rank", "method"], kind="stable").reset_index(drop=True)
    return Comparison(key, ref, ref == best, data.shape[0], len(weights), len(methods) - 1, per, table)


def unpaired_disjoint(values: pd.DataFrame, key: str, a: str, b: str, level: float = LEVEL) -> bool:
    """Whether the unpaired (per-method, uncorrected) intervals of ``a`` and ``b`` are disjoint."""
    _, lo_a, hi_a = summary_interval(values[a], key, level)
    _, lo_b, hi_b = summary_interval(values[b], key, level)
    if any(math.isnan(v) for v in (lo_a, hi_a, lo_b, hi_b)):
        return False
    return hi_a < lo_b or hi_b < lo_a


def format_value(value: float, key: str) -> str:
    """A summary in the metric's digits (``inf`` spelled out, NaN as a dash)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    try:
        digits = metric_info(key).digits
    except Exception:  # noqa: BLE001
        digits = 3
    return f"{value:.{digits}f}"


#: How a PSNR interval without an upper end is written (the interval of the mean MSE reaches 0).
NO_UPPER_END = "no upper end"
#: Words beside the PSNR of a set whose every image is exact (the set's PSNR is inf).
EVERY_IMAGE_EXACT = "every image exact"
#: Said under a table with such an interval, or with an infinite PSNR.
INFINITE_PSNR_NOTE = ("PSNR intervals with *no upper end*: the interval of the mean MSE reaches 0, and "
                      "identical images have infinite PSNR, so the interval is open above its lower end")


def format_interval(value: float, low: float, high: float, key: str) -> str:
    """``value ± half`` for symmetric intervals, ``value [low, high]`` for PSNR's mapped one.

    Infinite ends are written in words: ``"22.80 [16.58, no upper end]"`` (see
    :data:`INFINITE_PSNR_NOTE`), ``"inf (every image exact)"`` for the PSNR of a set whose
    images are all reconstructed exactly.
    """
    text = format_value(value, key)
    if math.isinf(value) and value > 0 and is_db(key):
        return f"{text} ({EVERY_IMAGE_EXACT})"
    if math.isnan(value) or math.isnan(low) or math.isnan(high) or math.isinf(value):
        return text
    if is_db(key):
        upper = NO_UPPER_END if math.isinf(high) else format_value(high, key)
        return f"{text} [{format_value(low, key)}, {upper}]"
    return f"{text} ± {format_value((high - low) / 2, key)}"
