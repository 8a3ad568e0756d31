"""P-IDS and U-IDS (paired / unpaired Inception discriminative scores) of CoModGAN and MAT.

Definition (Zhao et al. 2021, CoModGAN, sec. 4; MAT's ``metrics/inception_discriminative_score.py``
``compute_ids``): a linear SVM is fitted to tell the pool3 Inception features of the real images
(label 1) from those of the composited outputs (label 0), all of them, then

* **U-IDS** is the SVM's misclassification rate on the very points it was fitted on
  (``1 - svm.score``): 0.5 when real and fake cannot be told apart, 0 when they are separable;
* **P-IDS** is the share of *pairs* (an output and its own original) in which the output's
  decision value is larger than the original's, i.e. the output looks more real than the
  photo it was made from: 0.5 at best, 0 when every output looks less real than its original.

Higher is better for both. MAT pairs real and fake activations by their position in two
folder listings; here a pair is always *the same sample id*: the caller hands two
``{sample id: features}`` mappings and row ``i`` of both sets is one id, never a file position.

The SVM is scikit-learn's ``LinearSVC(dual=False)`` with every other setting at the value MAT
ran with (scikit-learn's defaults of its time, pinned here so that a change of scikit-learn's
defaults cannot move the numbers): L2 penalty, squared hinge loss, ``C = 1``, ``tol = 1e-4``,
intercept fitted with ``intercept_scaling = 1``, ``max_iter = 1000``. With ``dual=False``
liblinear's solver is deterministic (no random state enters).

Features are the ones FID uses (:class:`inpaintbench.metrics.fid.FIDScorer`, 2015-12-05
Inception, pool3): one extraction serves FID, KID, P-IDS and U-IDS. MAT keeps its activations
as float32; the scorer's cache stores float32 too, so both fit the SVM on the same numbers
(liblinear works in float64 on them).

Set size: the scores are *computable* from :data:`IDS_MIN_IMAGES` (2) pairs, but they only
*mean* something from :data:`IDS_MEANINGFUL_IMAGES` (2,048) pairs on: by Cover's
function-counting theorem, ``N`` points in general position in ``d = 2048`` dimensions are
linearly separable under almost every labelling while ``N < 2 d``; with ``N = 2 n`` points,
an SVM below ``n = d`` tells *any* two sets apart and both scores collapse to 0 whatever the
outputs look like (measured here: U-IDS 0 and P-IDS 0 for two sets drawn from the *same*
distribution, 100, 500 and 1,500 images each; at 3,000 each they rise to U-IDS 0.23 and
P-IDS 0.15, still short of the 0.5 of indistinguishable sets: the SVM keeps over-fitting).
MAT reports them on 2,993 (CelebA-HQ) and 36,500 (Places) images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from inpaintbench.core.errors import InpaintBenchError

#: Fewest pairs the scores are computed from (both classes need a point, P-IDS a pair).
IDS_MIN_IMAGES = 2
#: Fewest pairs for which 2 n points of 2,048-d features stop being separable under almost any
#: labelling (Cover: ``2 n >= 2 d``): below it the scores say nothing about the outputs.
IDS_MEANINGFUL_IMAGES = 2048

#: ``sklearn.svm.LinearSVC`` arguments: MAT's ``dual=False`` and the defaults MAT ran with.
SVM_SETTINGS = dict(dual=False, penalty="l2", loss="squared_hinge", C=1.0, tol=1e-4, fit_intercept=True,
                    intercept_scaling=1.0, max_iter=1000)


class IDSUnavailable(InpaintBenchError):
    """P-IDS/U-IDS cannot be computed here (scikit-learn missing, too few pairs); one line why."""


@dataclass(frozen=True)
class IDSScore:
    """P-IDS and U-IDS of one set of outputs against the originals of the same images.

    Attributes:
        p_ids: share of pairs in which the output looks more real than its original, ``[0, 1]``.
        u_ids: the SVM's misclassification rate over real and fake, ``[0, 1]``.
        n: pairs (images) scored.
        converged: whether liblinear converged within ``max_iter`` (MAT does not check; a
            False is said beside the numbers).
    """

    p_ids: float
    u_ids: float
    n: int
    converged: bool = True

    @property
    def small(self) -> bool:
        """Too few pairs for the scores to mean anything (see :data:`IDS_MEANINGFUL_IMAGES`)."""
        return self.n < IDS_MEANINGFUL_IMAGES


def paired_rows(real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The sample ids both mappings hold (in ``real``'s order) and their features as two aligned arrays.

    Args:
        real, fake: ``{sample id: float features [D]}``.

    Returns:
        ``(ids, real [n, D], fake [n, D])``, row ``i`` of both being sample ``ids[i]``.
    """
    ids = [s for s in real if s in fake]
    if not ids:
        return ids, np.zeros((0, 0)), np.zeros((0, 0))
    return ids, np.stack([np.asarray(real[s]) for s in ids]), np.stack([np.asarray(fake[s]) for s in ids])


def ids_scores(real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray]) -> IDSScore:
    """P-IDS and U-IDS of the outputs ``fake`` against the originals ``real``, paired by sample id.

    Args:
        real: ``{sample id: pool3 features [2048]}`` of the original images.
        fake: ``{sample id: pool3 features [2048]}`` of the composited outputs; ids missing from
            either side are left out (the caller decides which images form the set).

    Returns:
        :class:`IDSScore` over the ids both hold.

    Raises:
        IDSUnavailable: scikit-learn is missing, or fewer than :data:`IDS_MIN_IMAGES` pairs.
    """
    _, real_rows, fake_rows = paired_rows(real, fake)
    return ids_scores_of_rows(real_rows, fake_rows)


def ids_scores_of_rows(real: np.ndarray, fake: np.ndarray) -> IDSScore:
    """:func:`ids_scores` on arrays whose row ``i`` is the same sample in both (``[n, D]``)."""
    try:
        import sklearn.svm
        from sklearn.exceptions import ConvergenceWarning
    except ImportError as err:
        raise IDSUnavailable("P-IDS/U-IDS not computed: scikit-learn is not installed "
                             "(pip install 'inpaintbench[fid]')") from err
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or real.shape != fake.shape:
        raise IDSUnavailable(f"P-IDS/U-IDS need two feature arrays [n, D] of one shape, got {real.shape} and {fake.shape}")
    n = len(real)
    if n < IDS_MIN_IMAGES:
        raise IDSUnavailable(f"P-IDS/U-IDS need at least {IDS_MIN_IMAGES} image pairs, got {n}")
    inputs = np.concatenate([real, fake])
    targets = np.array([1] * n + [0] * n)
    svm = sklearn.svm.LinearSVC(**SVM_SETTINGS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svm.fit(inputs, targets)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    u_ids = 1 - svm.score(inputs, targets)
    # One decision_function call per set, as MAT: the values are the same row by row.
    p_ids = np.mean(svm.decision_function(fake) > svm.decision_function(real))
    return IDSScore(float(p_ids), float(u_ids), n, converged)
