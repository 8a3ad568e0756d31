"""The set-level half of the metric table: FID, KID, P-IDS and U-IDS of a set of kept outputs.

Re-exported by :mod:`inpaintbench.metrics.table` (the one metric table); the values come from
:meth:`inpaintbench.metrics.fid.SetScore.value`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SetMetric:
    """One metric of a *set* of outputs (not of an image): computed by the report from the
    composited outputs a run kept (suite option ``fid = true``), on the 2015-12-05 Inception's
    pool3 features, one extraction for all of them (:mod:`inpaintbench.metrics.fid`,
    :mod:`inpaintbench.metrics.ids`).

    Attributes:
        name: the key (``"fid"``, ``"pids"``...), see :meth:`inpaintbench.metrics.fid.SetScore.value`.
        title: the column title.
        higher_is_better: the direction.
        digits: decimals shown.
        meaningful_from: fewest images for which the number says something about the outputs.
        description: one line for ``inpaintbench list metrics``.
    """

    name: str
    title: str
    higher_is_better: bool
    digits: int
    meaningful_from: int
    description: str

    @property
    def arrow(self) -> str:
        """``"↑"`` when higher is better, else ``"↓"``."""
        return "↑" if self.higher_is_better else "↓"


#: The set-level metrics, in column order: the report iterates this table.
SET_METRICS: tuple[SetMetric, ...] = (
    SetMetric("fid", "FID", False, 2, 2048, "Fréchet Inception distance to the originals of the same images"),
    SetMetric("kid", "KID", False, 4, 2, "kernel Inception distance (mean ± std over 100 seeded subsets)"),
    SetMetric("pids", "P-IDS", True, 4, 2048,
              "paired Inception discriminative score: share of outputs a linear SVM finds more real than their "
              "own original (CoModGAN / MAT)"),
    SetMetric("uids", "U-IDS", True, 4, 2048,
              "unpaired Inception discriminative score: the linear SVM's real-vs-output misclassification rate"),
)
