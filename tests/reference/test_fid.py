"""FID / KID on the standard 2015-12-05 Inception network, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pathlib import Path

from inpaintbench.metrics.fid import FIDScorer, FIDUnavailable, check_weights
from inpaintbench.store.artifacts import save_originals, save_outputs
from inpaintbench.store.records import ResultsStore, SampleRecord

FID_WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "fid" / "inception-2015-12-05-fid.pth"

pytest.importorskip("torchmetrics", reason="FID/KID need the [fid] extra (torchmetrics, torch-fidelity)")
pytest.importorskip("torch_fidelity", reason="FID/KID need the [fid] extra (torchmetrics, torch-fidelity)")


def require_weights() -> Path:
    if not FID_WEIGHTS.exists():
        pytest.skip(f"{FID_WEIGHTS} is absent (the FID Inception lives in ../shared/weights/fid beside the checkout)")
    return FID_WEIGHTS


def write_results(path, psnr: dict[str, float], n: int = 4):
    """Sample records of dataset ``toy``, mask ``box``: one PSNR per method, images s0..s{n-1}."""
    ResultsStore(path).append([SampleRecord(
        task="inpainting", method=m, method_name=m, config={}, config_hash=m, dataset="toy", dataset_hash="dh",
        mask="box", mask_hash="mh", mask_config={}, sample_id=f"s{i}", seed=0, status="ok",
        metrics={"psnr": value}, time_s=0.001) for m, value in psnr.items() for i in range(n)])
    return path


def _fake_inception(path):
    """A file with the right layout but not the FID network's bytes (e.g. another Inception)."""
    torch.save({"Mixed_7c.branch_pool.conv.weight": torch.zeros(192, 2048, 1, 1)}, path)
    return path


def test_non_standard_network_is_refused_with_one_line(tmp_path):
    path = _fake_inception(tmp_path / "inception_v3_imagenet.pth")
    with pytest.raises(FIDUnavailable, match=r"FID/KID refused: .* is not the 2015-12-05 FID Inception") as err:
        FIDScorer(path)
    assert "\n" not in str(err.value)
    with pytest.raises(FIDUnavailable, match="do not exist"):
        check_weights(tmp_path / "missing.pth")


def test_leaderboard_says_why_fid_is_missing(tmp_path, digits, monkeypatch):
    from inpaintbench.report.leaderboard import write_leaderboard
    results = write_results(tmp_path / "results.jsonl", {"copy": 30.0, "zero": 10.0})
    ids = [f"s{i}" for i in range(4)]
    save_originals(tmp_path, "toy", ids, digits)
    save_outputs(tmp_path, "toy", "box", "copy", ids, digits)
    monkeypatch.setenv("INPAINTBENCH_FID_WEIGHTS", str(_fake_inception(tmp_path / "other.pth")))
    board = write_leaderboard([results], tmp_path / "rep", html=False, n_resamples=100).read_text()
    assert "FID/KID refused" in board and "FID ↓" not in board


@pytest.mark.needs_shared
def test_fid_of_a_set_against_itself_is_zero(digits):
    require_weights()
    scorer = FIDScorer(FID_WEIGHTS)
    images = np.round(digits.numpy() * 255).astype(np.uint8)
    features = scorer.features(images)
    assert features.shape == (4, 2048)
    same = scorer.score(features, features)
    assert abs(same.fid) < 1e-3
    assert same.n == 4 and same.kid_subset_size == 2 and same.small
    other = scorer.score(features, scorer.features(255 - images))
    assert other.fid > 10 and other.kid > same.kid


@pytest.mark.slow
@pytest.mark.needs_shared
def test_fid_and_kid_columns_from_kept_outputs(tmp_path, digits, monkeypatch):
    from inpaintbench.report.leaderboard import write_leaderboard
    require_weights()
    results = write_results(tmp_path / "results.jsonl", {"copy": 30.0, "invert": 5.0})
    ids = [f"s{i}" for i in range(4)]
    save_originals(tmp_path, "toy", ids, digits)
    save_outputs(tmp_path, "toy", "box", "copy", ids, digits)
    save_outputs(tmp_path, "toy", "box", "invert", ids, 1 - digits)
    board = write_leaderboard([results], tmp_path / "rep", fid_weights=str(FID_WEIGHTS), html=False,
                              n_resamples=100).read_text()
    summary = board.split("## inpainting: toy · box")[1].split("**Paired")[0]
    row = {line.split("|")[1].strip(): line for line in summary.splitlines() if line.startswith("| ")}
    assert "FID ↓" in board and "KID ↓" in board and "too few for FID to be meaningful" in board
    # "copy" is its own originals: its KID is an unbiased estimate of 0, which may print negative
    assert "unbiased estimate, so it can be slightly negative" in board
    fid = {m: float(line.split("|")[-3]) for m, line in row.items() if m in ("copy", "invert")}
    assert abs(fid["copy"]) < 0.01 and fid["invert"] > 10
    # the real set's features are cached per (dataset, size): a second report recomputes nothing
    assert (tmp_path / "outputs" / ".features" / "real_toy_28x28.npz").exists()
    # P-IDS/U-IDS: 4 images are far too few, said instead of two columns of zeros ...
    assert "P-IDS/U-IDS not computed: 4 images are too few" in board and "P-IDS ↑" not in board
    # ... and shown, from the same cached features, where the set is large enough.
    monkeypatch.setattr("inpaintbench.metrics.fid.IDS_MEANINGFUL_IMAGES", 2)
    board = write_leaderboard([results], tmp_path / "rep2", fid_weights=str(FID_WEIGHTS), html=False,
                              n_resamples=100).read_text()
    summary = board.split("## inpainting: toy · box")[1].split("**Paired")[0]
    header = next(line for line in summary.splitlines() if line.startswith("| method"))
    assert [cell.strip() for cell in header.split("|")[-5:-1]] == ["FID ↓", "KID ↓", "P-IDS ↑", "U-IDS ↑"]
    assert "each output paired with its own original by sample id" in board


def test_a_fid_suite_keeps_every_composited_output(tmp_path, lpips_weights_env):
    """``[run] fid = true``: the runner keeps every original and composited output (uint8 npz),
    not only the examples; without it nothing more than the examples is kept."""
    from inpaintbench.store.artifacts import originals_path, outputs_path
    from inpaintbench.store.artifacts import load_examples
    from inpaintbench.harness.runner import run_suite
    from inpaintbench.harness.suite import Suite

    data = {"datasets": ["mnist-sample"], "masks": ["box"], "methods": ["zero-fill"],
            "run": {"n_images": 3, "batch_size": 2, "n_examples": 1, "device": "cpu", "fid": True}}
    run_suite(Suite.from_dict("fid-tiny", data), tmp_path / "on", progress=False)
    outputs = load_examples(outputs_path(tmp_path / "on", "mnist-sample", "box", "zero-fill"))
    assert len(outputs) == 3 and all(o["output"].dtype == np.uint8 for o in outputs.values())
    assert len(load_examples(originals_path(tmp_path / "on", "mnist-sample"))) == 3
    data["run"]["fid"] = False
    run_suite(Suite.from_dict("fid-tiny", data), tmp_path / "off", progress=False)
    assert not (tmp_path / "off" / "outputs").exists()


def test_scores_are_remembered_for_exactly_their_records_when_the_outputs_are_gone(tmp_path, digits):
    """The kept outputs of a large set are not committed: a report of a folder without them shows
    the scores remembered in set-scores.json, but only for records equal to those they were
    computed with; changed records get no remembered score."""
    import shutil

    from inpaintbench.report.fid_scores import SCORES_FILE
    from inpaintbench.report.leaderboard import write_leaderboard
    require_weights()

    def fid_cells(folder, name):
        board = write_leaderboard([folder / "results.jsonl"], folder / name, fid_weights=str(FID_WEIGHTS),
                                  html=False, n_resamples=100).read_text()
        summary = board.split("## inpainting: toy · box")[1].split("**Paired")[0]
        header = next(line for line in summary.splitlines() if line.startswith("| method"))
        if "FID ↓" not in header:
            return {}, board
        at = [c.strip() for c in header.split("|")].index("FID ↓")
        rows = [line.split("|") for line in summary.splitlines() if line.startswith("| ") and "---" not in line]
        return {r[1].strip(): r[at].strip() for r in rows[1:]}, board

    write_results(tmp_path / "results.jsonl", {"copy": 30.0, "invert": 5.0})
    ids = [f"s{i}" for i in range(4)]
    save_originals(tmp_path, "toy", ids, digits)
    save_outputs(tmp_path, "toy", "box", "copy", ids, digits)
    save_outputs(tmp_path, "toy", "box", "invert", ids, 1 - digits)
    computed, board = fid_cells(tmp_path, "rep")
    assert (tmp_path / SCORES_FILE).is_file() and "remembered" not in board
    shutil.rmtree(tmp_path / "outputs")
    remembered, board = fid_cells(tmp_path, "rep2")
    assert remembered == computed and "remembered in `set-scores.json`" in board
    # other records (here: another PSNR of "invert") are other outputs: no remembered score for them
    other = tmp_path / "other"
    other.mkdir()
    write_results(other / "results.jsonl", {"copy": 30.0, "invert": 6.0})
    shutil.copy(tmp_path / SCORES_FILE, other / SCORES_FILE)
    cells, _ = fid_cells(other, "rep")
    assert float(cells["copy"]) == float(computed["copy"]) and cells["invert"] == "–", (cells, computed)
