"""The leaderboard's document model: one block of each kind, rendered to markdown and to HTML.

The golden strings are written out by hand from the formats' rules (markdown: chunks separated by
one blank line, pipes in tables escaped, figures linked relative to the file's folder; HTML:
text escaped, `code`/**bold**/_italic lines_ converted, figures beside the page linked and others
embedded, the viewer's JSON with ``</`` escaped). Every item of the document must appear exactly
once in each rendering.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from inpaintbench.report.document import BulletList, Document, Figure, Heading, Section, Table, Text
from inpaintbench.report.html import render_html
from inpaintbench.report.markdown import render_markdown

# The smallest valid PNG (1 x 1 grey), written as the figures' files.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==")


@pytest.fixture
def document(tmp_path) -> tuple[Document, Path]:
    base = tmp_path / "report"
    (base / "figures").mkdir(parents=True)
    (base / "figures" / "plot.png").write_bytes(PNG)
    (tmp_path / "elsewhere.png").write_bytes(PNG)
    scores = pd.DataFrame({"method": ["alpha", "beta"], "LPIPS ↓": ["0.100 ± 0.010", "0.200 ± 0.020"],
                           "max |Δ|": ["a|b", "<1>"]})
    runs = pd.DataFrame({"run": ["r1"], "command": ["`inpaintbench run`"]})
    section = Section("task_toy_box", "task: toy · box", blocks=[
        Table(scores),
        Text("_a note on the table._"),
        Table(pd.DataFrame({"method": ["beta"], "Δ": ["+0.1 [0.0, 0.2]"]}), title="Paired comparison",
              caption="Paired comparison on LPIPS."),
        Figure(base / "figures" / "plot.png", "toy · box: quality", title="Quality against compute"),
        BulletList(("`beta` failed on 1 of 2 samples: boom",)),
    ], viewer={"methods": ["alpha", "beta"], "metrics": [], "samples": {"s0": {"note": "</script>"}}})
    doc = Document(
        title="board <one>",
        origin="Generated from `results`.",
        intro=[Table(runs, compact=True), Text("Library versions: torch 2.\nLPIPS (alex): pretrained."),
               Text("**Statistics.** Means & *intervals*.")],
        sections=[section],
        outro=[Heading("Studies and figures"), BulletList(("[faces: LEADERBOARD](faces/LEADERBOARD.md)",)),
               Figure(tmp_path / "elsewhere.png", "outside")],
        companion="PAGE.html")
    return doc, base


MARKDOWN = """\
# board <one>

Generated from `results`. Browsable version (sortable tables, plots, per-sample view): [PAGE.html](PAGE.html).

| run | command |
|---|---|
| r1 | `inpaintbench run` |

Library versions: torch 2.
LPIPS (alex): pretrained.

**Statistics.** Means & *intervals*.

## task: toy · box

| method   | LPIPS ↓       | max \\|Δ\\|   |
|:---------|:--------------|:------------|
| alpha    | 0.100 ± 0.010 | a\\|b        |
| beta     | 0.200 ± 0.020 | <1>         |

_a note on the table._

**Paired comparison on LPIPS.**

| method   | Δ               |
|:---------|:----------------|
| beta     | +0.1 [0.0, 0.2] |

![toy · box: quality](figures/plot.png)

- `beta` failed on 1 of 2 samples: boom

## Studies and figures

- [faces: LEADERBOARD](faces/LEADERBOARD.md)

![outside](../elsewhere.png)
"""


def test_markdown_golden(document):
    doc, base = document
    assert render_markdown(doc, base) == MARKDOWN


def _sortable(head: list[str], rows: list[list[tuple[str, str]]]) -> str:
    """table_html's shape, written out: a header cell per column, ``(data-sort, html)`` per cell."""
    ths = "".join(f'<th title="click to sort">{h}</th>' for h in head)
    trs = "".join("<tr>" + "".join(f'<td data-sort="{k}">{v}</td>' for k, v in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="sortable"><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table></div>'


def test_html_golden(document):
    doc, base = document
    page = render_html(doc, base)
    body = page.split("</style></head><body>", 1)[1].split('\n<script type="application/json"', 1)[0]
    outside = "data:image/png;base64," + base64.b64encode(PNG).decode("ascii")
    expected = "\n".join([
        "<h1>board &lt;one&gt;</h1>",
        "<p>Generated from <code>results</code>.</p>",
        _sortable(["run", "command"], [[("", "r1"), ("", "<code>inpaintbench run</code>")]]),
        "<p>Library versions: torch 2.<br>LPIPS (alex): pretrained.</p>",
        "<p><b>Statistics.</b> Means &amp; <i>intervals</i>.</p>",
        '<nav><a href="#task_toy_box">task: toy · box</a><a href="#viewer">per-sample view</a></nav>',
        '<section id="task_toy_box"><h2>task: toy · box</h2>',
        _sortable(["method", "LPIPS ↓", "max |Δ|"],
                  [[("", "alpha"), ("0.100", "0.100 ± 0.010"), ("", "a|b")],
                   [("", "beta"), ("0.200", "0.200 ± 0.020"), ("", "&lt;1&gt;")]]),
        "<p><i>a note on the table.</i></p>",
        "<h3>Paired comparison</h3>",
        "<p>Paired comparison on LPIPS.</p>",
        _sortable(["method", "Δ"], [[("", "beta"), ("+0.1", "+0.1 [0.0, 0.2]")]]),
        "<h3>Quality against compute</h3>",
        '<img class="fig" src="figures/plot.png" alt="toy · box: quality">',
        "<ul><li><code>beta</code> failed on 1 of 2 samples: boom</li></ul>",
        "</section>",
        '<section id="viewer"><h2>Per-sample view</h2>',
        '<div class="viewer"><label>table <select id="pick-table"></select></label> '
        '<label>image <select id="pick-sample"></select></label><div class="cells" id="cells"></div>'
        '<h3>Flip between two methods</h3><label>A <select id="flip-a"></select></label> '
        '<label>B <select id="flip-b"></select></label> <button id="flip" type="button">flip A / B</button> '
        '<span id="flip-label"></span><br><img id="flip-img" alt="flip view"></div>',
        "</section>",
        "<h2>Studies and figures</h2>",
        '<ul><li><a href="faces/LEADERBOARD.md">faces: LEADERBOARD</a></li></ul>',
        f'<img class="fig" src="{outside}" alt="outside">',
    ])
    assert body == expected
    data = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data and "\\u003c/script>" in data  # the viewer's strings cannot close the element
    assert json.loads(data) == {"tables": [{"title": "task: toy · box", "methods": ["alpha", "beta"],
                                            "metrics": [], "samples": {"s0": {"note": "</script>"}}}]}
    assert page.startswith("<!DOCTYPE html>") and "<title>board &lt;one&gt;</title>" in page
    assert page.endswith("</script></body></html>") and "function sortTable" in page


# One marker per item of the document: each must be rendered once, in both formats.
MARKERS = {
    "markdown": ["# board", "Generated from", "| r1 |", "Library versions", "**Statistics.**", "## task: toy",
                 "| alpha ", "_a note on the table._", "**Paired comparison on LPIPS.**", "| beta     | +0.1 [0.0, 0.2] |",
                 "(figures/plot.png)", "`beta` failed", "## Studies and figures", "[faces: LEADERBOARD]",
                 "(../elsewhere.png)"],
    "html": ["<h1>board", "Generated from", ">r1<", "Library versions", "<b>Statistics.</b>",
             "<h2>task: toy · box</h2>", ">alpha<", "a note on the table.", "<h3>Paired comparison</h3>",
             "<p>Paired comparison on LPIPS.</p>", 'data-sort="+0.1"', 'src="figures/plot.png"',
             "<code>beta</code> failed", "<h2>Studies and figures</h2>", '>faces: LEADERBOARD<', 'alt="outside"'],
}


def test_each_item_is_rendered_once(document):
    doc, base = document
    for fmt, text in (("markdown", render_markdown(doc, base)), ("html", render_html(doc, base))):
        for marker in MARKERS[fmt]:
            assert text.count(marker) == 1, (fmt, marker)


def test_no_sections_and_no_examples(tmp_path):
    doc = Document(title="empty", intro=[Text("_No results yet._")])
    assert render_markdown(doc, tmp_path) == "# empty\n\n_No results yet._\n"
    page = render_html(doc, tmp_path)
    assert "<p><i>No results yet.</i></p>" in page
    assert "<p>No example images were saved with these results.</p>" in page and 'id="pick-table"' not in page
    assert '<script type="application/json" id="viewer-data">{"tables":[]}</script>' in page


def test_an_unknown_block_is_refused(tmp_path):
    doc = Document(title="t", intro=["a bare string"])
    with pytest.raises(TypeError, match="not a document block"):
        render_markdown(doc, tmp_path)
    with pytest.raises(TypeError, match="not a document block"):
        render_html(doc, tmp_path)


# --- the leaderboard builds its document once: every item in both files, once ------------------

@pytest.fixture
def board(tmp_path):
    """A leaderboard of one table with everything: varying holes, examples, a partly failing method."""
    import numpy as np
    import torch

    from inpaintbench.report.leaderboard import write_leaderboard
    from inpaintbench.store.artifacts import example_path, save_examples
    from inpaintbench.store.records import ResultsStore, SampleRecord

    ids = [f"s{i}" for i in range(8)]
    holes = [0.05, 0.05, 0.15, 0.15, 0.25, 0.25, 0.35, 0.35]
    rng = np.random.default_rng(0)
    records = []
    for m, method in enumerate(("good", "close", "partial")):
        for i, sid in enumerate(ids):
            base = dict(task="inpainting", method=method, method_name=method, config={}, config_hash=method,
                        dataset="toy", dataset_hash="dh", mask="wide", mask_hash="mh", mask_config={},
                        sample_id=sid, seed=0)
            if method == "partial" and i == 7:
                records.append(SampleRecord(**base, status="error", error="RuntimeError: kaboom"))
                continue
            records.append(SampleRecord(**base, status="ok", time_s=0.001 * (m + 1), hole_fraction=holes[i],
                                        metrics={"lpips": 0.1 * (m + 1) + rng.uniform(0, 0.01),
                                                 "psnr": 30.0 - 3 * m + rng.normal()}))
    results = tmp_path / "results" / "results.jsonl"
    ResultsStore(results).append(records)
    originals = torch.rand(len(ids), 1, 8, 8, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(len(ids), 1, 8, 8, dtype=torch.bool)
    masks[:, :, 2:6, 2:6] = True
    save_examples(example_path(results.parent, "toy", "wide", "_input"), ids, original=originals, mask=masks)
    for method in ("good", "close", "partial"):
        save_examples(example_path(results.parent, "toy", "wide", method), ids, output=originals)
    markdown = write_leaderboard([results], tmp_path / "report", n_resamples=200).read_text()
    return markdown, (tmp_path / "report" / "LEADERBOARD.html").read_text()


def test_the_leaderboard_renders_each_item_once_in_both_files(board):
    markdown, page = board
    stem = "inpainting_toy_wide"
    once = {
        markdown: ["## inpainting: toy · wide", "_compared on the 7 of 8 images every method completed",
                   "**Paired comparison on LPIPS", "**By hole size (LPIPS (alex);", f"(figures/holes_{stem}.png)",
                   f"(figures/grid_{stem}.png)", f"(figures/compute_{stem}.png)",
                   "- `partial` failed on 1 of 8 samples: RuntimeError: kaboom", "Over the 1 tables:",
                   "**Statistics.**", "Browsable version"],
        page: ["<h2>inpainting: toy · wide</h2>", "<i>compared on the 7 of 8 images every method completed",
               "<h3>Paired comparison</h3>", "<p>Paired comparison on LPIPS", "<h3>By hole size</h3>",
               "<p>By hole size (LPIPS (alex);", f'src="figures/holes_{stem}.png"', f'src="figures/grid_{stem}.png"',
               "<h3>Quality against compute</h3>", f'src="figures/compute_{stem}.png"',
               "<li><code>partial</code> failed on 1 of 8 samples: RuntimeError: kaboom</li>", "Over the 1 tables:",
               "<b>Statistics.</b>"],
    }
    for text, markers in once.items():
        for marker in markers:
            assert text.count(marker) == 1, marker
    # The same tables in both: at a glance, summary, paired comparison, hole-size bins (no run
    # records: no provenance).
    assert len(re.findall(r"^\|[:-]", markdown, re.M)) == page.count("<table") == 4
    assert "Browsable version" not in page and 'id="pick-table"' in page
    data = json.loads(re.search(r'id="viewer-data">(.*?)</script>', page, re.S).group(1))
    assert [t["title"] for t in data["tables"]] == ["inpainting: toy · wide"]
    assert data["tables"][0]["methods"] == ["good", "close", "partial"] and len(data["tables"][0]["samples"]) == 8


def test_viewer_images_are_lossless_small_and_jpeg_large():
    """Digits and 32-px faces stay PNG (exact pixels); 256-px photographs are JPEG, so the default
    page stays small; masks are always PNG."""
    from inpaintbench.report.html import png_data_uri

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    large = rng.integers(0, 256, (3, 256, 256), dtype=np.uint8)
    assert png_data_uri(small).startswith("data:image/png;base64,")
    assert png_data_uri(large).startswith("data:image/jpeg;base64,")
    assert png_data_uri(np.ones((1, 256, 256), dtype=bool)).startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(png_data_uri(small).split(",", 1)[1])))
    assert np.array_equal(np.asarray(decoded), np.transpose(small, (1, 2, 0)))


def test_markdown_tables_keep_cells_as_formatted_and_right_align_numbers():
    """tabulate's number parsing re-formatted numeric-looking cells ("0.0300" -> "0.03",
    "-0.00" -> "-0"): a table shows each number with the digits its metric asks for."""
    import pandas as pd

    from inpaintbench.report.markdown import grid_table

    text = grid_table(pd.DataFrame({"method": ["a", "b"], "FID ↓": ["0.0300", "-0.00"], "n": ["1,200", "3"]}))
    assert "0.0300" in text and "-0.00" in text and "1,200" in text
    rule = text.splitlines()[1]
    assert rule.startswith("|:") and rule.count(":|") == 2  # method left; FID and n right-aligned
