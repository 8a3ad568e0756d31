"""The time of ``inpaintbench report`` on the committed default results (issue 23: a report must
take at most 10 % of the run it reports on).

Run: ``python -m pytest benchmarks/perf/test_perf_report.py -q --benchmark-only``. One round
writes ``LEADERBOARD.md``, ``LEADERBOARD.html`` and every figure into a fresh folder, from the
records of ``reports/results/default`` (6 tables, 16 methods, 1,536 records): reading records,
the paired bootstraps, the plots, the grids and the per-sample view. The faces suites (15
tables, 17,700 records) are timed by hand (README: report times), as they take longer than a
benchmark round should.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "reports" / "results" / "default"


@pytest.mark.skipif(not RESULTS.is_dir(), reason="needs the committed reports/results/default")
def test_report_of_the_default_results(timed, tmp_path):
    from inpaintbench.report.leaderboard import write_leaderboard

    counter = iter(range(100))
    board = timed(lambda: write_leaderboard([RESULTS], tmp_path / f"report{next(counter)}"),
                  rounds=2, warmup_rounds=0)
    text = board.read_text()
    assert text.count("\n## inpainting: ") == 6 and "At a glance" in (board.parent / "LEADERBOARD.html").read_text()
