"""Metric options of a run (issue 22 items 2 and 6): DISTS computed when a suite asks for it,
LPIPS columns named by their backbone, FID weights checked before a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from inpaintbench.core.errors import InputError
from inpaintbench.harness.suite import Suite

WEIGHTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "weights" / "lpips"
SUITE = {"run": {"n_images": 2, "batch_size": 2, "device": "cpu", "n_examples": 0},
         "datasets": ["mnist-sample"], "masks": ["box"], "methods": ["zero-fill"]}


def _suite(**run) -> Suite:
    return Suite.from_dict("t", {**SUITE, "run": {**SUITE["run"], **run}})


def test_dists_is_off_by_default_and_a_boolean():
    assert _suite().dists is False
    assert _suite(dists=True).dists is True
    with pytest.raises(InputError, match="dists must be true or false"):
        _suite(dists="false")  # a quoted "false" is truthy: refused, not read as true
    with pytest.raises(InputError, match="fid must be true or false"):
        _suite(fid=1)


def test_dists_off_builds_nothing():
    from inpaintbench.metrics.options import run_dists

    assert run_dists(False, "/nonexistent", "cpu") is None


def test_dists_asked_for_with_missing_weights_is_one_line_naming_the_file(tmp_path):
    from inpaintbench.metrics.options import run_dists

    if importlib.util.find_spec("DISTS_pytorch") is None:
        pytest.skip("DISTS_pytorch is not installed")
    with pytest.raises(InputError) as err:
        run_dists(True, tmp_path, "cpu")
    message = str(err.value)
    assert "\n" not in message
    assert "dists = true" in message and "vgg16_features.pth" in message and "--lpips-weights" in message


def test_fid_weights_missing_is_one_line_naming_the_file(tmp_path):
    from inpaintbench.metrics.options import check_fid_weights

    with pytest.raises(InputError, match="nope.pth.*do not exist.*--fid-weights"):
        check_fid_weights(tmp_path / "nope.pth")


@pytest.mark.skipif(not (WEIGHTS / "vgg16_features.pth").is_file() or importlib.util.find_spec("DISTS_pytorch") is None,
                    reason="needs ../shared/weights/lpips/vgg16_features.pth and DISTS_pytorch")
def test_a_run_with_dists_records_it_per_sample(tmp_path):
    import torch

    from inpaintbench.harness.data import open_dataset
    from inpaintbench.harness.runner import run_suite
    from inpaintbench.metrics.dists_metric import DISTSMetric
    from inpaintbench.report.tables import summary_table
    from inpaintbench.store.results import load_records

    suite = _suite(dists=True)
    summary = run_suite(suite, tmp_path / "out", progress=False, lpips_weights=str(WEIGHTS))
    assert summary.written == 2 and summary.errors == 0
    frame = load_records([tmp_path / "out"])[0]
    # The recorded value is DISTS of the composited output: zero-fill's holes are 0, the rest the original.
    view = open_dataset(suite.datasets[0], suite.n_images)
    images, _ = view.load([0, 1])
    task = suite.conditions()[0].task_for(list(view.ids[:2]), tuple(images.shape), suite.seed, None)
    composited = images.masked_fill(task.generated_region(), 0.0)
    expected = DISTSMetric(weights=WEIGHTS)(composited, images).double()
    recorded = torch.tensor([frame.set_index("sample_id").loc[sid, "dists"] for sid in view.ids[:2]])
    assert torch.allclose(recorded, expected, atol=1e-6), (recorded, expected)
    columns = summary_table(frame).columns
    assert "DISTS ↓" in columns and "LPIPS (alex) ↓" in columns
