"""The first screen of a leaderboard: best and tied before any prose, folded explanations,
infinite interval ends in words, one grid column order for every table."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
from inpaintbench.report.document import Details, Document, Text
from inpaintbench.report.glance import PSNR_FAVOURS_BLUR, answer_of, answer_text, glance_blocks
from inpaintbench.report.html import render_html
from inpaintbench.report.markdown import render_markdown
from inpaintbench.report.statistics import NO_UPPER_END, format_interval, paired_comparison


def _comparison(key: str = "lpips"):
    """best 0.10 every image; close within noise of it; far clearly worse."""
    rng = np.random.default_rng(0)
    values = pd.DataFrame({"far": 0.30 + rng.normal(0, 0.01, 20), "best": np.full(20, 0.10),
                           "close": 0.10 + rng.normal(0, 0.02, 20)})
    return paired_comparison(values, key, n_resamples=500)


def test_the_answer_is_the_best_and_those_tied_with_it():
    answer = answer_of("inpainting: toy · box", _comparison())
    assert (answer.best, answer.tied, answer.n_images) == ("best", ("close",), 20)
    line = answer_text(answer)
    assert line.startswith("**Best: `best`** (LPIPS (alex) 0.1000)") and "`close`" in line and "`far`" not in line


def test_the_first_screen_lists_every_table_before_any_prose(tmp_path):
    answer = answer_of("inpainting: toy · box", _comparison())
    glance = glance_blocks([answer])
    doc = Document(title="board", answer=glance, origin="Generated from `results`.",
                   intro=[Details("How to read these tables", (Text("**Statistics.** long prose"),))])
    markdown = render_markdown(doc, tmp_path)
    table_at, prose_at = markdown.index("| inpainting: toy · box"), markdown.index("Generated from")
    assert table_at < prose_at < markdown.index("**Statistics.**")
    row = next(line for line in markdown.splitlines() if line.startswith("| inpainting: toy · box"))
    assert "**best** 0.1000" in row and "close" in row and "far" not in row
    assert "<details><summary>How to read these tables</summary>\n\n**Statistics.** long prose\n\n</details>" in markdown
    page = render_html(doc, tmp_path)
    assert page.index("<h3>At a glance</h3>") < page.index("Generated from") < page.index("<details>")
    assert "<details><summary>How to read these tables</summary>\n<p><b>Statistics.</b> long prose</p>\n</details>" in page
    assert PSNR_FAVOURS_BLUR not in markdown  # ranked by LPIPS: no warning


def test_ranking_by_psnr_warns_that_psnr_favours_blur():
    values = pd.DataFrame({"blur": np.full(5, 25.0), "sharp": np.full(5, 20.0)})
    blocks = glance_blocks([answer_of("t", paired_comparison(values, "psnr", n_resamples=100))])
    assert any(isinstance(b, Text) and b.text == PSNR_FAVOURS_BLUR for b in blocks)


def test_an_infinite_interval_end_is_written_in_words():
    assert format_interval(22.8, 16.58, math.inf, "psnr") == f"22.80 [16.58, {NO_UPPER_END}]"
    assert format_interval(math.inf, math.nan, math.nan, "psnr") == "inf (every image exact)"
    assert format_interval(22.8, 16.58, 30.0, "psnr") == "22.80 [16.58, 30.00]"
    assert "inf" not in format_interval(22.8, 16.58, math.inf, "psnr")


def _records(tmp_path, masks: dict[str, dict[str, float]]):
    """A results file with one table per mask; ``masks[mask][method]`` is the method's LPIPS level."""
    import torch

    from inpaintbench.store.artifacts import example_path, save_examples
    from inpaintbench.store.records import ResultsStore, SampleRecord

    ids = [f"s{i}" for i in range(4)]
    records = []
    results = tmp_path / "results" / "results.jsonl"
    originals = torch.rand(len(ids), 1, 8, 8, generator=torch.Generator().manual_seed(0))
    holes = torch.zeros(len(ids), 1, 8, 8, dtype=torch.bool)
    holes[:, :, 2:6, 2:6] = True
    for mask, levels in masks.items():
        for method, level in levels.items():
            for i, sid in enumerate(ids):
                records.append(SampleRecord(
                    task="inpainting", method=method, method_name=method, config={}, config_hash=method,
                    dataset="toy", dataset_hash="dh", mask=mask, mask_hash=f"mh-{mask}", mask_config={},
                    sample_id=sid, seed=0, status="ok", time_s=0.001,
                    metrics={"lpips": level + 0.001 * i, "psnr": 30.0 - 10 * level}))
            save_examples(example_path(results.parent, "toy", mask, method), ids, output=originals)
        save_examples(example_path(results.parent, "toy", mask, "_input"), ids, original=originals, mask=holes)
    ResultsStore(results).append(records)
    return results


def test_grid_and_viewer_columns_keep_one_order_across_masks(tmp_path, monkeypatch):
    import inpaintbench.report.leaderboard as leaderboard

    grids = {}
    real = leaderboard.compose_grid

    def spy(rows, columns, cells, title, **kw):
        grids[title] = list(columns)
        return real(rows, columns, cells, title, **kw)

    monkeypatch.setattr(leaderboard, "compose_grid", spy)
    results = _records(tmp_path, {"box": {"a": 0.1, "b": 0.2, "c": 0.3}, "wide": {"a": 0.3, "b": 0.2, "c": 0.1}})
    markdown = leaderboard.write_leaderboard([results], tmp_path / "report", n_resamples=100).read_text()
    # The tables are ranked (a first on box, c first on wide), the pictures are not.
    box, wide = markdown.split("## inpainting: toy · wide")
    assert box.index("| a ") < box.index("| c ") and wide.index("| c ") < wide.index("| a ")
    assert list(grids.values()) == [["original", "mask", "masked input", "a", "b", "c"]] * 2
    page = (tmp_path / "report" / "LEADERBOARD.html").read_text()
    data = json.loads(re.search(r'id="viewer-data">(.*?)</script>', page, re.S).group(1))
    assert [t["methods"] for t in data["tables"]] == [["a", "b", "c"]] * 2


def test_wrapped_figure_titles_fit_their_width():
    from inpaintbench.report.plots import fit_title

    title = "celeba-val · wide: by hole size (images per bin: " + ", ".join(f"{10*b}-{10*b+10}% 12" for b in range(10)) + ")"
    lines = fit_title(title, 10.4, 8).split("\n")
    assert len(lines) > 1 and all(len(line) * 0.6 * 8 <= 10.4 * 72 for line in lines)
    assert " ".join(lines) == title
