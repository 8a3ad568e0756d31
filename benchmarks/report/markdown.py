"""A :class:`~inpaintbench.report.document.Document` as GitHub-flavoured markdown text.

Layout: every block is one chunk, chunks are separated by one blank line and the text ends
with a newline. Text, headings and list items are inline markdown already and are written as
they are; table titles and headers and cells have their ``|`` escaped (``known max |Δ|``).
Figures are linked relative to the markdown file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import html

from inpaintbench.report.document import Block, BulletList, Details, Document, Figure, Heading, Section, Table, Text

if TYPE_CHECKING:  # frames are only read here, never built
    import pandas as pd

#: Appended to the document's origin when a browsable page is written beside the markdown.
COMPANION_NOTE = " Browsable version (sortable tables, plots, per-sample view): [{0}]({0})."


def render_markdown(document: Document, base: Path) -> str:
    """The markdown text of ``document``; figures are linked relative to ``base`` (the folder the
    markdown file is written to)."""
    origin = document.origin + (COMPANION_NOTE.format(document.companion) if document.companion else "")
    chunks = [f"# {document.title}"] + [block_markdown(block, base) for block in document.answer] + [origin]
    chunks += [block_markdown(block, base) for block in document.intro]
    for section in document.sections:
        chunks += section_markdown(section, base)
    chunks += [block_markdown(block, base) for block in document.outro]
    return "\n\n".join(chunk for chunk in chunks if chunk) + "\n"


def section_markdown(section: Section, base: Path) -> list[str]:
    """The chunks of one section: its level-2 heading, then its blocks (the viewer is the page's)."""
    return [f"## {section.title}"] + [block_markdown(block, base) for block in section.blocks]


def block_markdown(block: Block, base: Path) -> str:
    """One block as markdown (several lines for tables and lists, no trailing blank line)."""
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Text):
        return block.text
    if isinstance(block, Table):
        table = compact_table(block.frame) if block.compact else grid_table(block.frame)
        return f"**{block.caption}**\n\n{table}" if block.caption else table
    if isinstance(block, Figure):
        return f"![{block.alt}]({_link(block.path, base)})"
    if isinstance(block, BulletList):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Details):  # GitHub renders the markdown between the blank lines
        inner = "\n\n".join(block_markdown(b, base) for b in block.blocks)
        return f"<details><summary>{html.escape(block.summary)}</summary>\n\n{inner}\n\n</details>"
    raise TypeError(f"not a document block: {block!r}")


def grid_table(frame: pd.DataFrame) -> str:
    """``DataFrame.to_markdown`` (padded columns) with the pipes inside titles and cells escaped.

    Cells are written exactly as given: tabulate's number parsing is off, since it re-formats
    numeric-looking strings ("0.0300" became "0.03", "-0.00" became "-0"); columns whose every
    cell reads as a number are right-aligned, as it would have aligned them."""
    cells = frame.rename(columns=_escape).map(_escape)
    align = ["right" if all(_is_number(v) for v in cells[c]) else "left" for c in cells.columns]
    return cells.to_markdown(index=False, disable_numparse=True, colalign=align)


def _is_number(value) -> bool:
    try:
        float(str(value).replace(",", ""))
    except ValueError:
        return False
    return True


def compact_table(frame: pd.DataFrame) -> str:
    """One ``| a | b |`` line per row, unpadded, under a ``|---|`` rule; pipes in cells escaped."""
    def row(values) -> str:
        return "| " + " | ".join(_escape(str(v)) for v in values) + " |"

    lines = [row(frame.columns), "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + [row(values) for values in frame.itertuples(index=False)])


def _escape(value):
    return value.replace("|", "\\|") if isinstance(value, str) else value


def _link(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` with forward slashes (both absolute, or both relative to the
    working directory)."""
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows): an absolute link
        return path.as_posix()
