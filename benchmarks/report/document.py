"""The leaderboard as one document model, built once and rendered twice (markdown and HTML).

A :class:`Document` is a title, the answer (the first screen: what the tables conclude), intro
blocks, one :class:`Section` per results table (then any extra sections) and outro blocks. A
block is one of six small records: :class:`Heading`, :class:`Text`, :class:`Table`,
:class:`Figure`, :class:`BulletList`, and :class:`Details` (blocks folded under a summary line). Each item of the report is added to the document once;
:mod:`inpaintbench.report.markdown` and :mod:`inpaintbench.report.html` decide how it looks.

Text is inline markdown, the subset both renderers understand: ```code```, ``**bold**``,
``*italics*``, a whole line in ``_underscores_``, ``[links](url)``. Nothing here imports pandas
at run time or touches files: building a document has no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # frames are carried, never built or read here
    import pandas as pd


@dataclass(frozen=True)
class Heading:
    """A heading of ``level`` 1-6 (markdown ``#`` count, HTML ``<hN>``); plain text, no markup."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    """One paragraph of inline markdown; a ``"\\n"`` inside is a line break."""

    text: str


@dataclass(frozen=True, eq=False)  # eq=False: frames do not compare to a bool
class Table:
    """A table of display strings (``frame``: one row per row, column names as headers).

    ``title``: a short heading the page shows above the table (the markdown leaves it out: its
    ``caption`` says the same at more length). ``caption``: what the table shows, markdown
    bold above it, a paragraph on the page. ``compact``: markdown as one unpadded
    ``| a | b |`` line per row (rows with long cells, such as commands, stay readable).
    """

    frame: pd.DataFrame
    title: str | None = None
    caption: str | None = None
    compact: bool = False


@dataclass(frozen=True)
class Figure:
    """A PNG file (``path``) with its alternative text (``alt``); ``title``: a heading the page
    shows above it (the markdown leaves it out; say it in ``alt`` too)."""

    path: Path
    alt: str
    title: str | None = None


@dataclass(frozen=True)
class BulletList:
    """An unordered list; each item is inline markdown."""

    items: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Details:
    """Blocks folded under a one-line ``summary`` (plain text): ``<details>`` in both renderings,
    closed until the reader opens it. For explanations that would push the results off the first
    screen."""

    summary: str
    blocks: tuple["Block", ...]


Block = Union[Heading, Text, Table, Figure, BulletList, Details]


@dataclass
class Section:
    """One results table's part of the report: ``title`` (a level-2 heading), its blocks in order,
    and the data of its per-sample view (``viewer``, see
    :func:`inpaintbench.report.html.viewer_data`; None: no examples, or no page written).

    ``anchor`` is the section's id on the page (letters, digits, ``-_.``).
    """

    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    viewer: dict[str, Any] | None = None


@dataclass
class Document:
    """The whole report.

    Attributes:
        title: the level-1 heading and the page title.
        answer: blocks right under the title, before any prose: what the tables conclude
            (:mod:`inpaintbench.report.glance`).
        origin: the paragraph after the answer: where the report comes from.
        intro: blocks before the sections (provenance, legend, totals).
        sections: one per results table, in order.
        outro: blocks after the sections (and, on the page, after the per-sample view).
        companion: the file name of the browsable page written beside the markdown (the
            markdown links it at the end of ``origin``), or None.
    """

    title: str
    origin: str = ""
    answer: list[Block] = field(default_factory=list)
    intro: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    outro: list[Block] = field(default_factory=list)
    companion: str | None = None
