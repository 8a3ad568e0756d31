"""Records of two seeds in one results folder never share a table (issue 21): the report refuses
with one line naming both, instead of averaging two seeds as one set of images."""

from __future__ import annotations

from inpaintbench.cli import main


def _run(out, seed):
    return main(["run", "--datasets", "mnist-sample", "--methods", "zero-fill", "--masks", "box", "--n-images", "2",
                 "--seed", str(seed),
                 "--out", str(out), "--no-report", "-q"])


def test_two_seeds_in_one_folder_are_refused_by_the_report(tmp_path, capsys):
    out = tmp_path / "results"
    assert _run(out, 0) == 0
    assert main(["report", "--results", str(out), "--report-dir", str(tmp_path / "one"), "--no-html"]) == 0
    assert _run(out, 1) == 0
    capsys.readouterr()
    assert main(["report", "--results", str(out), "--report-dir", str(tmp_path / "two"), "--no-html"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "2 seeds (0 and 1)" in err[0]
    assert not (tmp_path / "two" / "LEADERBOARD.md").exists()
