"""The first screen of a leaderboard: for each table, the best method and those the paired
bootstrap cannot tell from it, before any prose.

The answer is read off the table's paired comparison
(:func:`inpaintbench.report.statistics.paired_comparison` against the table's best): a method
whose Bonferroni-corrected interval of the difference contains zero is *tied* with the best.
Nothing is recomputed here; these functions only word the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from inpaintbench.metrics.table import metric_info
from inpaintbench.report.document import Block, Table, Text
from inpaintbench.report.statistics import Comparison, format_value

#: Shown on the first screen when some table is ranked by PSNR (no LPIPS measured).
PSNR_FAVOURS_BLUR = (
    "_Ranked by PSNR where LPIPS was not measured (no LPIPS weights: set `INPAINTBENCH_LPIPS_WEIGHTS` to the "
    "folder of `lpips` and report again). PSNR favours blur: a fill that averages the plausible completions "
    "scores a higher PSNR than a sharp, plausible one, so smooth classical fills can rank above generative "
    "models that look better. Read the example grids too._")


@dataclass(frozen=True)
class Answer:
    """One table's answer.

    Attributes:
        table: the table's title (``"inpainting: celeba-val · box"``).
        metric: the record key it is ranked by (``"lpips"``, ``"psnr"``).
        best: the best method's label and ``value`` its summary (the metric's units).
        tied: the labels tied with the best, in rank order (empty: the best is separated from all).
        n_images: images the methods are compared on (0: no paired comparison was possible,
            ``tied`` is then empty and ``reason`` says why).
        reason: why there is no comparison ("" when there is one).
    """

    table: str
    metric: str
    best: str
    value: float
    tied: tuple[str, ...] = ()
    n_images: int = 0
    reason: str = ""


def answer_of(table: str, comparison: Comparison) -> Answer:
    """The answer of a table from its paired comparison, which must be against the table's best
    (``comparison.reference_is_best``; the leaderboard compares again without a ``--reference``)."""
    if not comparison.reference_is_best:
        raise ValueError("answer_of needs the comparison against the table's best, not a chosen reference")
    rows = comparison.rows
    best = rows[rows["method"] == comparison.reference].iloc[0]
    tied = tuple(m for m, t in zip(rows["method"], rows["tied"]) if t and m != comparison.reference)
    return Answer(table, comparison.metric, comparison.reference, float(best["value"]), tied, comparison.n_images)


def unanswered(table: str, metric: str, best: str, value: float, reason: str) -> Answer:
    """The answer of a table without a paired comparison (one method, or fewer than 2 images)."""
    return Answer(table, metric, best, value, (), 0, reason)


def answer_text(answer: Answer) -> str:
    """One line of inline markdown: the best, its value, and who is tied with it.

    Example: ``**Best: `repaint`** (LPIPS 0.0401); tied with it (paired bootstrap, 100 images):
    `lama-ffc`, `ilvr`.``
    """
    info = metric_info(answer.metric)
    head = f"**Best: `{answer.best}`** ({info.title} {format_value(answer.value, answer.metric)})"
    if answer.reason:
        return f"{head}; {answer.reason}."
    if not answer.tied:
        return f"{head}; separated from every other method (paired bootstrap, {answer.n_images} images)."
    return (f"{head}; tied with it (paired bootstrap, {answer.n_images} images): "
            + ", ".join(f"`{m}`" for m in answer.tied) + ".")


def glance_blocks(answers: list[Answer]) -> list[Block]:
    """The first screen: a table with one row per results table (best, value, tied with it), and
    the PSNR-favours-blur warning when some table is ranked by PSNR. Empty without answers."""
    if not answers:
        return []
    import pandas as pd

    rows = [{"table": a.table,
             "ranked by": f"{metric_info(a.metric).title} {metric_info(a.metric).arrow}",
             "best": f"**{a.best}** {format_value(a.value, a.metric)}",
             "statistically tied with the best": ", ".join(a.tied) if a.tied else (a.reason or "none"),
             "images": str(a.n_images) if a.n_images else "–"} for a in answers]
    caption = ("At a glance: the best method of each table and those statistically tied with it (the paired "
               "bootstrap cannot separate them: their Bonferroni-corrected 95 % intervals of the difference contain "
               "zero). Details under each table.")
    blocks: list[Block] = [Table(pd.DataFrame(rows), title="At a glance", caption=caption)]
    if any(a.metric == "psnr" for a in answers):
        blocks.append(Text(PSNR_FAVOURS_BLUR))
    return blocks
