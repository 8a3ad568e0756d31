"""Fault battery (issue 14), the results folder under crashes and damage: crash-safe side files
(item 8), malformed lines (item 9), reading never truncates (item 10), full disks and bad report
folders (item 12), resuming (item 16).

Each test damages a folder a first run wrote, or a write half-way, and checks that nothing is
lost, duplicated or half-written.
"""

from __future__ import annotations

import errno
from pathlib import Path

import torch


def _break_line(path: Path, lineno: int, text: str = '{"kind": "sample", "method": ', replace: bool = False) -> None:
    """Insert ``text`` as line ``lineno`` of ``path`` (or replace that line)."""
    lines = path.read_text().splitlines(keepends=True)
    if replace:
        lines[lineno - 1] = text + "\n"
    else:
        lines.insert(lineno - 1, text + "\n")
    path.write_text("".join(lines))


# ----------------------------------------------------------------------------- 8. crash-safe side files

def test_08_crash_between_heat_map_and_records_does_not_double_count(ctx):
    from inpaintbench.store.artifacts import heatmap_path, load_heatmap
    from inpaintbench.store.folder import ResultsFolder

    real = ResultsFolder.commit_unit
    state = {"crashed": False}

    def crashing(self, unit, header, records):
        if not state["crashed"]:
            state["crashed"] = True
            raise OSError(5, "Input/output error")  # the machine dies between heat map and records
        return real(self, unit, header, records)

    ctx.monkeypatch.setattr(ResultsFolder, "commit_unit", crashing)
    code, _, err = ctx.run(n=4)
    assert code == 2, err
    ctx.monkeypatch.setattr(ResultsFolder, "commit_unit", real)
    assert ctx.run(n=4)[0] == 0
    heat = load_heatmap(heatmap_path(ctx.out, "mnist-sample", "box", "zero-fill"))
    assert heat is not None and heat[2] == 4 == len(ctx.samples("ok"))


def test_08_corrupt_heat_map_is_a_warning_and_a_rebuild(ctx):
    from inpaintbench.store.artifacts import heatmap_path, load_heatmap

    assert ctx.run()[0] == 0
    heat = heatmap_path(ctx.out, "mnist-sample", "box", "zero-fill")
    heat.write_bytes(b"PK\x03\x04 this is not an npz")
    code, _, err = ctx.run(n=4)
    assert code == 0, err
    assert any(heat.name in w and "corrupt" in w for w in ctx.warnings(err)), err
    assert load_heatmap(heat) is not None and len(ctx.samples("ok")) == 4
    code, _, err = ctx.run(n=4)  # and the folder stays usable
    assert code == 0 and not [w for w in ctx.warnings(err) if "corrupt" in w], err


def test_08_corrupt_example_file_does_not_kill_the_folder(ctx):
    assert ctx.run()[0] == 0
    (ctx.out / "examples" / "mnist-sample" / "box" / "_input.npz").write_bytes(b"garbage")
    code, _, err = ctx.run(n=4)
    assert code == 0 and any("corrupt" in w for w in ctx.warnings(err)), err
    code, _, err = ctx.cli("report", "--results", ctx.out, "--report-dir", ctx.tmp / "rep")
    assert code == 0, err


# ----------------------------------------------------------------------------- 9. malformed lines

def test_09_report_skips_a_malformed_line_naming_file_and_line(ctx):
    assert ctx.run()[0] == 0
    (unit,) = ctx.unit_files()
    _break_line(unit, 2)
    before = ctx.file_bytes(ctx.out)
    code, out, err = ctx.cli("report", "--results", ctx.out, "--report-dir", ctx.tmp / "rep")
    assert code == 0, err
    bad = [w for w in ctx.warnings(err) if unit.name in w and "line 2" in w]
    assert len(bad) == 1, err
    assert ctx.file_bytes(ctx.out) == before  # reading never writes, never quarantines
    assert "| zero-fill" in (ctx.tmp / "rep" / "LEADERBOARD.md").read_text()


def test_09_resume_quarantines_the_line_and_keeps_every_good_record(ctx):
    assert ctx.run()[0] == 0
    (unit,) = ctx.unit_files()
    _break_line(unit, 3, "not json at all", replace=True)  # one record destroyed
    code, out, err = ctx.run()
    assert code == 0, err
    assert "wrote 1 records" in out and "skipped 1" in out  # only the lost record recomputed
    quarantine = unit.with_name(unit.name + ".quarantine").read_text()
    assert "not json at all" in quarantine
    assert len(ctx.samples("ok")) == 2  # every remaining line parses
    assert any("line 3" in w for w in ctx.warnings(err)), err


def test_09_valid_json_with_a_wrong_schema_is_malformed_too(ctx):
    assert ctx.run()[0] == 0
    (unit,) = ctx.unit_files()
    _break_line(unit, 2, '{"kind": "sample", "method": 3}', replace=True)
    _break_line(unit, 2, '[1, 2, 3]')
    code, out, err = ctx.run()
    assert code == 0 and "wrote 1 records" in out, err
    assert len(unit.with_name(unit.name + ".quarantine").read_text().splitlines()) == 2


def test_09_reading_the_store_never_writes(ctx):
    from inpaintbench.store.records import ResultsStore, SampleRecord

    assert ctx.run()[0] == 0
    (unit,) = ctx.unit_files()
    _break_line(unit, 2)
    before = ctx.file_bytes(ctx.out)
    records = list(ResultsStore(unit))
    assert sum(isinstance(r, SampleRecord) for r in records) == 2
    assert ctx.file_bytes(ctx.out) == before


# ----------------------------------------------------------------------------- 10. reading never truncates

def test_10_report_on_an_empty_folder_or_into_a_file_is_one_line(ctx):
    assert ctx.run()[0] == 0
    (ctx.tmp / "empty").mkdir()
    code, _, err = ctx.cli("report", "--results", ctx.tmp / "empty", "--report-dir", ctx.tmp / "rep")
    ctx.one_error(code, err, "holds no results", "empty")
    (ctx.tmp / "rep").write_text("x")
    before = ctx.file_bytes(ctx.out)
    code, _, err = ctx.cli("report", "--results", ctx.out, "--report-dir", ctx.tmp / "rep")
    ctx.one_error(code, err, "report", "directory")
    assert ctx.file_bytes(ctx.out) == before


def test_10_report_leaves_a_partial_last_line_alone(ctx):
    assert ctx.run()[0] == 0
    (unit,) = ctx.unit_files()
    with open(unit, "a") as handle:
        handle.write('{"kind": "sample", "meth')
    before = ctx.file_bytes(ctx.out)
    code, _, err = ctx.cli("report", "--results", ctx.out, "--report-dir", ctx.tmp / "rep")
    assert code == 0, err
    assert ctx.file_bytes(ctx.out) == before


def test_10_a_killed_writers_temporary_file_is_never_read(ctx):
    assert ctx.run()[0] == 0
    (unit,) = ctx.unit_files()
    text = unit.read_text()
    unit.unlink()  # killed before its rename: only the temporary file, cut short, is there
    (unit.parent / f".{unit.name}.otherhost-7.tmp").write_text(text[: len(text) // 2])
    code, out, err = ctx.cli("report", "--results", ctx.tmp / "nothing-here", "--report-dir", ctx.tmp / "rep")
    assert code == 2
    code, out, err = ctx.run(n=4)
    assert code == 0 and "wrote 4 records" in out, err
    assert len(ctx.samples("ok")) == 4


# ----------------------------------------------------------------------------- 12. full disks, bad report folders

def test_12_report_dir_is_a_file_fails_before_the_run(ctx):
    (ctx.tmp / "rep").write_text("x")
    code, _, err = ctx.cli("run", "--methods", "zero-fill", "--masks", "box", "--n-images", 2, "--device", "cpu",
                           "--out", ctx.out, "--report-dir", ctx.tmp / "rep", "-q")
    ctx.one_error(code, err, "report", "directory")
    assert not ctx.out.exists()
    code, _, err = ctx.cli("report", "--results", ctx.tmp / "rep", "--report-dir", ctx.tmp / "rep")
    assert code == 2 and "Traceback" not in err


def test_12_full_disk_on_the_results_file(ctx):
    assert ctx.run()[0] == 0
    before = {p: b for p, b in ctx.file_bytes(ctx.out).items() if p.startswith(("units/", "runs/"))}

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    ctx.monkeypatch.setattr("os.fsync", full)
    code, _, err = ctx.run(n=4)
    ctx.monkeypatch.undo()
    ctx.one_error(code, err, "no space left", "rerun")
    after = {p: b for p, b in ctx.file_bytes(ctx.out).items() if p.startswith(("units/", "runs/"))}
    assert after == before and ctx.no_tmp_files(ctx.out)


def test_12_sample_ids_with_the_separator_still_read_back(ctx):
    from inpaintbench.store.artifacts import load_examples, save_examples

    path = ctx.tmp / "ex.npz"
    save_examples(path, ["a\x1fb", "c"], original=torch.rand(2, 1, 4, 4))
    loaded = load_examples(path)
    assert set(loaded) == {"a\x1fb", "c"} and all("original" in v for v in loaded.values())


# ----------------------------------------------------------------------------- 16. resuming

def test_16_a_rerun_says_it_resumed(ctx):
    assert ctx.run()[0] == 0
    code, out, err = ctx.run()
    assert code == 0 and "skipped 2" in out
    runs = [r for r in ctx.records() if r["kind"] == "run"]
    assert [r["resumed"] for r in runs] == [0, 2]
