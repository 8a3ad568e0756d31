"""A run never modifies tracked files (issue 23): `run`, `sweep` and `check --update` write one
output folder in the working directory, `inpaintbench-out/<suite>/` (results and report
together), and a run whose datasets, masks or methods the command line changed gets its own
folder, `<suite>+<digest>/`, so its records never mix with the suite's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintbench.cli import main

REPO = Path(__file__).resolve().parents[2]

SUITE = """
[run]
n_images = 2
batch_size = 2
device = "cpu"
n_examples = 1

[[datasets]]
name = "mnist-sample"

[[masks]]
name = "box"

[[methods]]
name = "zero-fill"

[[methods]]
name = "telea"
"""


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """An empty working directory; the suite file ``tiny.toml`` lies elsewhere."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "tiny.toml").write_text(SUITE)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("INPAINTBENCH_LPIPS_WEIGHTS", str(tmp_path / "no-lpips"))  # no network, no LPIPS
    monkeypatch.delenv("INPAINTBENCH_DATA_ROOT", raising=False)
    return work


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _suite(cwd: Path) -> str:
    return str(cwd.parent / "suites" / "tiny.toml")


def test_a_run_writes_its_results_and_report_into_one_folder_and_nothing_else(cwd, capsys):
    reports, suites = _tree(REPO / "reports"), _tree(cwd.parent / "suites")
    assert main(["run", "--suite", _suite(cwd), "-q"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "suite tiny -> inpaintbench-out/tiny", first
    assert [p.name for p in cwd.iterdir()] == ["inpaintbench-out"]
    assert [p.name for p in (cwd / "inpaintbench-out").iterdir()] == ["tiny"]
    folder = cwd / "inpaintbench-out" / "tiny"
    assert (folder / "LEADERBOARD.md").is_file() and (folder / "LEADERBOARD.html").is_file()
    assert len(list((folder / "units").glob("*.jsonl"))) == 2 and list((folder / "runs").glob("*.jsonl"))
    assert _tree(REPO / "reports") == reports, "a run changed the committed reports"
    assert _tree(cwd.parent / "suites") == suites
    # the report of that folder, regenerated, goes beside its results by default
    before = (folder / "LEADERBOARD.md").stat().st_mtime_ns
    assert main(["report", "--results", str(folder), "--no-html"]) == 0
    assert (folder / "LEADERBOARD.md").stat().st_mtime_ns > before
    assert [p.name for p in cwd.iterdir()] == ["inpaintbench-out"]


def test_a_run_with_other_datasets_gets_its_own_folder_and_resumes_there(cwd, capsys):
    images = cwd.parent / "imgs"
    images.mkdir()
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((28, 28)) * 255).astype(np.uint8)).save(images / f"{i}.png")
    overridden = ["run", "--suite", _suite(cwd), "--datasets", "folder", "--data-root", str(images), "--size", "28",
                  "--no-report", "-q"]
    assert main(overridden) == 0
    first = capsys.readouterr().out.splitlines()[0]
    folders = [p.name for p in (cwd / "inpaintbench-out").iterdir()]
    assert len(folders) == 1 and folders[0].startswith("tiny+") and len(folders[0]) == len("tiny+") + 8, folders
    assert first == f"suite tiny -> inpaintbench-out/{folders[0]} (its own folder: datasets changed on the command line)"
    assert main(overridden) == 0  # the same overrides: the same folder, everything already done
    assert "skipped 4 already done" in capsys.readouterr().out
    assert main(["run", "--suite", _suite(cwd), "--no-report", "-q"]) == 0  # the suite itself: its own folder
    assert sorted(p.name for p in (cwd / "inpaintbench-out").iterdir()) == sorted([folders[0], "tiny"])
    assert main(["run", "--suite", _suite(cwd), "--masks", "wide", "--no-report", "-q"]) == 0
    assert len(list((cwd / "inpaintbench-out").iterdir())) == 3
    # the execution options change nothing that is computed: the suite's own folder
    assert main(["run", "--suite", _suite(cwd), "--batch-size", "1", "--n-images", "1", "--no-report", "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("-> inpaintbench-out/tiny")
    assert main(["plan", "--suite", _suite(cwd), "--datasets", "folder", "--data-root", str(images), "--size",
                 "28"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"suite tiny -> inpaintbench-out/{folders[0]}")


def test_sweep_and_check_update_write_into_the_output_folder(cwd, capsys):
    reports, baselines = _tree(REPO / "reports"), _tree(REPO / "benchmarks")
    assert main(["sweep", "--suite", _suite(cwd), "--methods", "telea", "--param", "radius", "--values", "1,3",
                 "--mask", "box", "-q"]) == 0
    folder = cwd / "inpaintbench-out" / "sweeps" / "radius"
    assert (folder / "SWEEP.md").is_file() and (folder / "units").is_dir()
    assert main(["check", "--suite", _suite(cwd), "--update"]) == 0
    assert (cwd / "inpaintbench-out" / "check" / "quality_baseline_tiny.json").is_file()
    assert [p.name for p in cwd.iterdir()] == ["inpaintbench-out"]
    assert _tree(REPO / "reports") == reports and _tree(REPO / "benchmarks") == baselines


def test_a_report_of_several_folders_needs_a_report_dir(cwd, capsys):
    assert main(["run", "--suite", _suite(cwd), "--no-report", "-q"]) == 0
    folder = str(cwd / "inpaintbench-out" / "tiny")
    capsys.readouterr()
    assert main(["report", "--results", folder, folder]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--report-dir" in err[0]


def test_report_companion_pages_go_beside_the_leaderboard_and_a_page_it_cannot_build_writes_nothing(cwd, capsys):
    assert main(["run", "--suite", _suite(cwd), "-q", "--no-report"]) == 0
    folder = cwd / "inpaintbench-out" / "tiny"
    claims = cwd.parent / "claims.toml"
    claims.write_text('[[claims]]\ntitle = "t"\nsource = "s"\ndataset = "mnist-sample"\nmask = "box"\n'
                      'metric = "psnr"\nbetter = "telea"\nworse = "zero-fill"\n')
    assert main(["report", "--results", str(folder), "--no-html", "--orderings", str(claims)]) == 0
    page = (folder / "ORDERINGS.md").read_text()
    assert "telea" in page and "zero-fill" in page
    # --budgets on results it cannot compare (no LPIPS, no `@NFE` labels): one line, exit 2, no page changed
    before = _tree(folder)
    capsys.readouterr()
    assert main(["report", "--results", str(folder), "--no-html", "--orderings", str(claims), "--budgets"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "budget" in err and err.count("\n") == 1, err
    assert _tree(folder) == before
    assert not (folder / "BUDGETS.md").exists()
