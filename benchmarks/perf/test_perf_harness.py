"""The harness's own share of a run's wall time (target: at most 5 % for a diffusion run).

One benchmark per method runs a small suite through the real runner (units, metrics with
LPIPS when its weights are set, records, examples, heat maps) and puts the harness share of
its units (wall - timed calls - warm-up, over wall; see
:func:`inpaintbench.store.results.harness_share`) in ``extra_info``:

    python -m pytest benchmarks/perf/test_perf_harness.py --benchmark-only \\
        --benchmark-json reports/perf/harness-benchmark.json
"""

from __future__ import annotations

import itertools

import pytest

from inpaintbench.store.results import harness_share, load_records
from inpaintbench.harness.runner import run_suite
from inpaintbench.harness.suite import Suite

#: A diffusion sampler at its default (fast) schedule, its no-resampling ablation, and a
#: classical method for contrast (its calls take microseconds, so the harness dominates).
METHODS = {"repaint": {}, "ddpm-paste": {}, "telea": {}}

_runs = itertools.count()


@pytest.mark.parametrize("method", list(METHODS))
def test_harness_share(benchmark, tmp_path, method):
    suite = Suite.from_dict("harness", {
        "datasets": ["mnist-sample"], "masks": ["wide", "box"],
        "methods": [{"name": method, **METHODS[method]}],
        "run": {"n_images": 8, "batch_size": 8, "device": "cpu", "n_examples": 6, "num_threads": 1}})
    folders = []

    def run():
        folder = tmp_path / f"run-{next(_runs)}"  # fresh each round: nothing resumed
        folders.append(folder)
        return run_suite(suite, folder, progress=False)

    benchmark.group = "harness share of a run"
    benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=0)
    frame, _, _ = load_records([folders[-1]])
    share = harness_share(frame.attrs["units"]).set_index("method").loc[method]
    benchmark.extra_info.update(
        images=16, harness_share=float(share["harness_share"]), method_s=float(share["method_s"]),
        wall_s=float(share["wall_s"]),
        note=f"harness {share['harness_share']:.1%} of {share['wall_s']:.2f} s unit wall time "
             f"(calls {share['method_s']:.2f} s, warm-up {share['warmup_s']:.2f} s)")
    assert 0.0 <= share["harness_share"] <= 1.0
