"""From the CLI to JSON lines to markdown, on the embedded sample and on real RGB data."""

from __future__ import annotations

from pathlib import Path

import pytest

from inpaintbench.store.folder import raw_records

from inpaintbench.cli import main
from inpaintbench.core.registry import method_registry

TINY_SUITE = """
datasets = ["mnist-sample"]
masks = ["narrow", "half"]
methods = ["zero-fill", "biharmonic", "telea", "{bad}"]

[run]
seed = 0
n_images = 6
batch_size = 4
device = "cpu"
n_examples = 3
"""


def _failing_method_entry():
    """A method that raises on every call, registered through a real Entry (not a mock)."""
    from inpaintbench.core.method import Method

    class Exploding(Method):
        def inpaint(self, image, mask, *, rng):
            raise RuntimeError("kaboom")

    return Exploding


def _records(path: Path) -> list[dict]:
    """Every record line of a results folder, raw (a duplicate would appear twice)."""
    return raw_records([path])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Run the tiny suite through the CLI once per module; returns (results file, report dir).

    A method that always raises is added through a real registry Entry, so the run must
    record its failures and go on.
    """
    from inpaintbench.core.registry import Entry, Registry

    tmp = tmp_path_factory.mktemp("tiny")
    entries = [method_registry().entry(n) for n in method_registry().names()]
    registry = Registry("method", [*entries, Entry("exploding", _failing_method_entry())])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("inpaintbench.harness.runner.method_registry", lambda: registry)
        lpips_dir = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "lpips"
        if lpips_dir.exists():
            patch.setenv("INPAINTBENCH_LPIPS_WEIGHTS", str(lpips_dir))
        suite = tmp / "tiny.toml"
        suite.write_text(TINY_SUITE.format(bad="exploding"))
        out, reports = tmp / "results", tmp / "reports"
        assert main(["run", "--suite", str(suite), "--out", str(out), "--report-dir", str(reports), "-q"]) == 0
    return out, reports


def test_cli_run_writes_records_and_a_leaderboard(tiny_run):
    results, reports = tiny_run
    records = _records(results)
    samples = [r for r in records if r["kind"] == "sample"]
    assert records[0]["kind"] == "run" and records[0]["git_commit"] is not None
    assert {r["method"] for r in samples} == {"zero-fill", "biharmonic", "telea", "exploding"}
    assert len(samples) == 4 * 2 * 6  # methods x masks x images
    ok = [r for r in samples if r["status"] == "ok"]
    assert all(r["time_s"] > 0 and r["config_hash"] for r in ok)
    assert all(r["metrics"]["known_mse"] == 0.0 for r in ok)  # all three keep known pixels
    board = (reports / "LEADERBOARD.md").read_text()
    assert "## inpainting: mnist-sample · narrow" in board and "## inpainting: mnist-sample · half" in board
    assert "| biharmonic" in board and "PSNR ↑" in board
    for grid in ("figures/grid_inpainting_mnist-sample_narrow.png", "figures/grid_inpainting_mnist-sample_half.png"):
        assert (reports / grid).stat().st_size > 1000 and f"]({grid})" in board


def test_a_crashing_method_becomes_error_records_and_the_run_goes_on(tiny_run):
    results, reports = tiny_run
    errors = [r for r in _records(results) if r.get("status") == "error"]
    assert errors and all(r["method"] == "exploding" and "kaboom" in r["error"] for r in errors)
    # every sample of `exploding` failed: it is out of the table and said so (issue 13)
    assert "`exploding` failed on all samples: RuntimeError: kaboom" in (reports / "LEADERBOARD.md").read_text()


def test_sanity_ordering_biharmonic_beats_zero_fill_on_thin_strokes(tiny_run):
    results, _ = tiny_run
    psnr = {}
    for r in _records(results):
        if r.get("status") == "ok" and r["mask"] == "narrow":
            psnr.setdefault(r["method"], []).append(r["metrics"]["psnr"])
    mean = {m: sum(v) / len(v) for m, v in psnr.items()}
    assert mean["biharmonic"] > mean["zero-fill"] + 3.0


def test_rerun_resumes_without_duplicating(tiny_run):
    results, reports = tiny_run
    before = [r for r in _records(results) if r["kind"] == "sample" and r["status"] == "ok"]
    suite = results.parent / "tiny.toml"
    assert main(["run", "--suite", str(suite), "--out", str(results), "--report-dir", str(reports), "-q",
                 "--methods", "zero-fill,biharmonic,telea"]) == 0
    after = [r for r in _records(results) if r["kind"] == "sample" and r["status"] == "ok"]
    assert len(after) == len(before)


def test_report_regenerates_from_results_alone(tiny_run, tmp_path):
    results, reports = tiny_run
    first = (reports / "LEADERBOARD.md").read_text()
    again = tmp_path / "again"
    assert main(["report", "--results", str(results), "--report-dir", str(again)]) == 0
    # Same tables (the header's provenance lists runs, and the rerun test may have added one).
    tables = lambda text: text[text.index("## "):]  # noqa: E731
    assert tables((again / "LEADERBOARD.md").read_text()) == tables(first)
    assert (again / "figures" / "grid_inpainting_mnist-sample_half.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--methods", "biharmonik", "--n-images", "2"], "unknown method 'biharmonik'. Did you mean 'biharmonic'"),
        (["run", "--masks", "wdie", "--n-images", "2"], "unknown mask family 'wdie'. Did you mean 'wide'"),
        (["run", "--datasets", "folder", "--data-root", "/nonexistent/x"], "/nonexistent/x"),
        (["report", "--results", "/nonexistent/results.jsonl"], "does not exist"),
    ],
)
def test_bad_input_gives_one_clear_line_and_writes_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    extra = ["--out", str(out), "--report-dir", str(tmp_path / "rep")] if argv[0] == "run" else []
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists() or not any(out.rglob("*.jsonl"))


@pytest.mark.needs_shared
def test_rgb_256_images_from_a_real_folder(tmp_path, shared_data):
    root = shared_data / "celebahq-256" / "images"
    out = tmp_path / "out"
    assert main(["run", "--datasets", "celebahq", "--data-root", str(root), "--masks", "strokes-medium",
                 "--methods", "telea,pde-heat", "--n-images", "2", "--device", "cpu", "--out", str(out),
                 "--report-dir", str(tmp_path / "rep"), "-q"]) == 0
    samples = [r for r in _records(out) if r["kind"] == "sample"]
    assert len(samples) == 4 and all(r["status"] == "ok" for r in samples)


@pytest.mark.needs_shared
def test_paired_migan_folder_with_its_own_masks(tmp_path, shared_data):
    root = shared_data / "migan-examples" / "places2_256_freeform"
    out = tmp_path / "out"
    assert main(["run", "--datasets", "paired", "--data-root", str(root), "--masks", "dataset",
                 "--methods", "telea", "--n-images", "2", "--device", "cpu", "--out", str(out),
                 "--report-dir", str(tmp_path / "rep"), "-q"]) == 0
    samples = [r for r in _records(out) if r["kind"] == "sample"]
    assert len(samples) == 2 and all(r["status"] == "ok" for r in samples)
    assert all(0.0 < r["hole_fraction"] < 1.0 for r in samples)


@pytest.mark.parametrize("suite", ["repaint-celebahq", "lama-celebahq", "gan-places512"])
def test_paper_suites_stop_with_one_line_naming_what_is_missing(suite, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--suite", suite, "--data-root", str(tmp_path / "no-data"), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no-data" in err[0]
    assert not out.exists()


def test_a_run_in_which_no_method_can_be_built_is_refused(tmp_path, capsys):
    """All data present, every method unavailable: one line naming why, nothing written."""
    suite = tmp_path / "s.toml"
    suite.write_text('datasets = ["mnist-sample"]\nmasks = ["box"]\n'
                     f'methods = [{{ name = "lama-official", checkpoint = "{tmp_path / "nope.ckpt"}" }}]\n')
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--report-dir", str(tmp_path / "rep"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no method" in err[0] and "nope.ckpt" in err[0]
    assert not out.exists()
