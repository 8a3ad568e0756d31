"""Result identity: a sample's numbers depend on (suite seed, method, sample id) only, never on
the batch size or on where an interrupted run resumed; retraining invalidates old records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from inpaintbench.harness.runner import run_suite
from inpaintbench.store.folder import raw_records
from inpaintbench.harness.suite import Suite

#: Per-sample outputs of batched networks agree to float rounding across batch sizes (see
#: tests/test_contract.py::BATCH_ATOL); metrics then agree to this relative tolerance.
METRIC_RTOL = 1e-4


def _suite(batch_size: int, methods=None, shard_size: int = 64) -> Suite:
    return Suite.from_dict("identity", {
        "datasets": ["mnist-sample"], "masks": ["narrow", "box"],
        "methods": methods or [{"name": "repaint", "num_steps": 4, "jump_length": 2},
                               {"name": "ilvr", "num_steps": 4}],
        "run": {"seed": 3, "n_images": 5, "batch_size": batch_size, "device": "cpu", "n_examples": 0,
                "lpips_net": "alex", "shard_size": shard_size},
    })


def _metrics(path: Path) -> dict[tuple, dict[str, float]]:
    """The metrics of every ok sample of a results folder, asserting none appears twice."""
    out = {}
    for record in raw_records([path]):
        if record["kind"] == "sample" and record["status"] == "ok":
            key = (record["method"], record["mask"], record["sample_id"])
            assert key not in out, f"duplicate record {key}"
            out[key] = {k: float(v) for k, v in record["metrics"].items()}
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for name, value in a[key].items():
            other = b[key][name]
            assert (math.isinf(value) and value == other) or math.isclose(value, other, rel_tol=METRIC_RTOL,
                                                                          abs_tol=1e-9), (key, name, value, other)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bs5")
    run_suite(_suite(5), out, progress=False)
    return _metrics(out)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_stochastic_methods_give_the_same_numbers_at_any_batch_size(reference, batch_size, tmp_path):
    run_suite(_suite(batch_size), tmp_path, progress=False)
    _assert_same(_metrics(tmp_path), reference)


@pytest.mark.parametrize("keep_fraction", [0.2, 0.55, 0.9])
def test_a_run_interrupted_anywhere_resumes_to_the_same_numbers(reference, keep_fraction, tmp_path):
    """An interruption leaves the units that were renamed into place and, for the one being
    written, a temporary file cut anywhere (what SIGKILL leaves); the rerun with another batch
    size and other shards must complete it without loss or duplicates."""
    run_suite(_suite(2, shard_size=2), tmp_path, progress=False)
    units = sorted((tmp_path / "units").glob("*.jsonl"))
    kept = int(len(units) * keep_fraction)
    cut = units[kept]
    data = cut.read_bytes()
    (cut.parent / f".{cut.name}.host-1.tmp").write_bytes(data[: len(data) // 2])
    for unit in units[kept:]:
        unit.unlink()
    run_suite(_suite(4, shard_size=3), tmp_path, progress=False)
    _assert_same(_metrics(tmp_path), reference)


def test_retrained_weights_are_recomputed_not_skipped(tmp_path):
    """Any change of a loaded weight file changes the config hash, so a rerun recomputes."""
    import shutil

    from inpaintbench.methods.diffusion.ddpm import MNIST_WEIGHTS

    weights = tmp_path / "prior"
    shutil.copytree(MNIST_WEIGHTS, weights)
    suite = _suite(5, methods=[{"name": "ddpm-paste", "num_steps": 3, "weights": str(weights)}])
    first = run_suite(suite, tmp_path / "out", progress=False)
    assert first.written == 10
    assert run_suite(suite, tmp_path / "out", progress=False).written == 0  # resumed: all done
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights / "diffusion_pytorch_model.safetensors"))
    name = next(iter(tensors))
    tensors[name] = tensors[name] * 1.001
    save_file(tensors, str(weights / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    assert run_suite(suite, tmp_path / "out", progress=False).written == 10  # "retrained": recomputed
