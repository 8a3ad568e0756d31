"""The speed report: ratios within one run, per group, against the group's baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inpaintbench.report.speed import EXIT_BAD_INPUT, SpeedReportError, main, speed_table


def case(group: str, name: str, minimum: float, median: float, baseline: bool = False, **extra) -> dict:
    """One pytest-benchmark entry, times in seconds."""
    return {
        "group": group, "name": name, "fullname": f"bench.py::{name}",
        "stats": {"min": minimum, "median": median, "max": 2 * median, "mean": median, "rounds": 5},
        "extra_info": {"baseline": baseline, "device": "cpu", "torch_threads": 1, **extra},
    }


def write_run(path: Path, cases: list[dict], date: str = "2026-01-02T03:04:05+00:00") -> Path:
    path.write_text(json.dumps({
        "machine_info": {"node": "box", "system": "Linux", "release": "6.1", "machine": "x86_64",
                         "python_version": "3.11.7", "torch_version": "2.14.1", "torch_threads": 1,
                         "omp_num_threads": "1", "cpu": {"brand_raw": "Test CPU 9000", "count": 2}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": date, "version": "5.3.1", "benchmarks": cases,
    }))
    return path


def row(markdown: str, name: str) -> list[str]:
    """The cells of the table row naming ``name``."""
    (line,) = [l for l in markdown.splitlines() if l.startswith("|") and f"| {name} |" in l]
    return [c.strip() for c in line.strip("|").split("|")]


def test_ratios_against_the_groups_baseline_and_the_header(tmp_path):
    path = write_run(tmp_path / "run.json", [
        case("ssim 8 images", "torch", 0.002, 0.003, images=8, max_abs_diff_vs_reference=4e-9, note="NFE 3"),
        case("ssim 8 images", "skimage loop", 0.010, 0.012, baseline=True),
        case("lpips", "alex", 0.5, 0.4, images_per_s=20.0),  # no baseline: no ratios
    ])
    text = speed_table([path])
    # group, case, rounds, min, median, min/base, median/base, speed-up, images/s, max diff
    assert row(text, "torch") == ["ssim 8 images", "torch", "5", "2.000", "3.000", "0.200", "0.250", "5.00x", "2,667", "4.0e-09", "NFE 3"]
    assert row(text, "skimage loop")[5:8] == ["baseline", "baseline", "1.00x"]
    assert row(text, "alex")[5:9] == ["—", "—", "—", "20.0"]
    # the baseline row comes first in its group
    lines = text.splitlines()
    assert lines.index(next(l for l in lines if "| skimage loop |" in l)) < lines.index(next(l for l in lines if "| torch |" in l))
    for needed in ("Test CPU 9000", "threads: torch 1; OMP_NUM_THREADS 1", "2026-01-02T03:04:05", "`0123456789ab`",
                   "absolute times are not"):
        assert needed in text, needed


def test_each_run_is_compared_within_itself(tmp_path):
    fast_machine = write_run(tmp_path / "a.json", [case("g", "torch", 0.001, 0.001), case("g", "loop", 0.004, 0.004, True)])
    slow_machine = write_run(tmp_path / "b.json", [case("g", "torch", 0.010, 0.010), case("g", "loop", 0.020, 0.020, True)],
                             date="2026-02-01T00:00:00+00:00")
    text = speed_table([fast_machine, slow_machine])
    first, second = text.split("## Run `b.json`")
    assert "## Run `a.json`" in first
    assert row(first, "torch")[5] == "0.250" and row(second, "torch")[5] == "0.500"


def test_a_group_with_two_baselines_is_refused(tmp_path):
    path = write_run(tmp_path / "two.json", [case("g", "a", 1.0, 1.0, True), case("g", "b", 1.0, 1.0, True)])
    with pytest.raises(SpeedReportError, match="group 'g' has 2 baselines"):
        speed_table([path])


def test_command_line_writes_the_table_and_refuses_bad_files_in_one_line(tmp_path, capsys):
    path = write_run(tmp_path / "run.json", [case("g", "torch", 0.001, 0.002), case("g", "loop", 0.004, 0.004, True)])
    out = tmp_path / "reports" / "perf" / "SPEED.md"
    assert main([str(path), "--out", str(out)]) == 0
    assert out.read_text() == speed_table([path])
    (tmp_path / "bad.json").write_text("{not json")
    assert main([str(tmp_path / "bad.json")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json" in err
    (tmp_path / "other.json").write_text(json.dumps({"results": []}))
    assert main([str(tmp_path / "other.json")]) == EXIT_BAD_INPUT
    assert "not a pytest-benchmark JSON file" in capsys.readouterr().err
