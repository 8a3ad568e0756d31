"""`inpaintbench plan` tells the truth before anything runs (issue 23): the refused pairs (see
tests/faults/test_refusals.py), whether the LPIPS / FID weights are here without downloading
them, and an estimated time from the recorded cost of the same configuration on the same data."""

from __future__ import annotations

import pytest
import torch

from inpaintbench.cli import main

SUITE = """
[run]
n_images = 2
batch_size = 2
device = "cpu"
{extra}

[[datasets]]
name = "mnist-sample"

[[masks]]
name = "box"

[[methods]]
name = "telea"
"""


@pytest.fixture
def plan(tmp_path, monkeypatch, capsys):
    """``plan(*argv, extra="")``: the lines ``inpaintbench plan`` prints for a one-method suite."""
    downloads = []

    def no_download(*args, **__):  # the metric would catch an exception: record the attempt
        downloads.append(args)
        raise OSError("offline")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty cache
    monkeypatch.chdir(tmp_path)

    def run(*argv: str, extra: str = "") -> list[str]:
        (tmp_path / "s.toml").write_text(SUITE.format(extra=extra))
        capsys.readouterr()
        assert main(["plan", "--suite", str(tmp_path / "s.toml"), *argv]) == 0
        assert not downloads, downloads
        return capsys.readouterr().out.splitlines()

    return run


def _line(lines: list[str], start: str) -> str:
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, lines
    return found[0]


def test_the_estimate_comes_from_records_of_the_same_configuration(plan, tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINTBENCH_LPIPS_WEIGHTS", str(tmp_path / "missing"))
    # telea on the embedded digits is in the committed results (reports/results/default)
    estimate = _line(plan(), "estimated time: ")
    assert "unknown" not in estimate and " s " in estimate, estimate
    # another configuration has no record anywhere
    estimate = _line(plan("--set", "telea.radius=7"), "estimated time: ")
    assert "unknown for 1 method(s) (telea)" in estimate, estimate
    assert not (tmp_path / "inpaintbench-out").exists()  # plan writes nothing


def test_lpips_and_fid_weights_are_looked_for_not_downloaded(plan, tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINTBENCH_LPIPS_WEIGHTS", str(tmp_path / "lpips"))
    monkeypatch.delenv("INPAINTBENCH_FID_WEIGHTS", raising=False)
    (tmp_path / "lpips").mkdir()
    lines = plan(extra="fid = true")
    assert "unavailable" in _line(lines, "LPIPS (alex): ") and "does not exist" in _line(lines, "LPIPS (alex): ")
    assert _line(lines, "FID/KID: ").startswith("FID/KID: unavailable: not on this machine")
    (tmp_path / "lpips" / "alexnet_features.pth").write_bytes(b"")
    lines = plan()
    assert _line(lines, "LPIPS (alex): ") == f"LPIPS (alex): available: {tmp_path / 'lpips' / 'alexnet_features.pth'}"
    assert not [line for line in lines if line.startswith("FID")]  # the suite keeps no outputs for FID
    monkeypatch.delenv("INPAINTBENCH_LPIPS_WEIGHTS")
    line = _line(plan(), "LPIPS (alex): ")
    assert "unavailable: not on this machine: the run tries to download" in line, line
