"""Sweeps, heatmaps and the regression gate."""

from __future__ import annotations

import math

import pytest

from inpaintbench.store.folder import raw_records

from inpaintbench.core.errors import InputError
from inpaintbench.report.gate import TOLERANCES, compare
from inpaintbench.cli import main
from inpaintbench.harness.suite import load_suite
from inpaintbench.harness.sweep import parse_assignments, sweep_suite


def test_parse_assignments_reads_json_values_and_rejects_garbage():
    assert parse_assignments(["a=1", "b=false", "c=0.5", "d=telea"]) == {"a": 1, "b": False, "c": 0.5, "d": "telea"}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_assignments(["novalue"])


def test_sweep_suite_labels_carry_the_swept_value():
    base = load_suite("default")
    suite = sweep_suite(base, methods=["pde-heat"], param="iterations", values=[1, 10], method_options={},
                        mask="disc", mask_param=None, mask_values=[])
    assert [m.label for m in suite.methods] == ["pde-heat[iterations=1]", "pde-heat[iterations=10]"]
    assert [m.config for m in suite.methods] == [{"iterations": 1}, {"iterations": 10}]
    fixed = sweep_suite(base, methods=["pde-heat"], param="iterations", values=[1], method_options={"multiscale": False},
                        mask="disc", mask_param=None, mask_values=[])
    assert fixed.methods[0].label == "pde-heat{multiscale=False}[iterations=1]"
    with pytest.raises(InputError, match="needs --mask-values"):
        sweep_suite(base, methods=["telea"], param=None, values=[], method_options={}, mask="disc",
                    mask_param="radius_fraction", mask_values=[])


def test_disc_radius_sweep_end_to_end(tmp_path, lpips_weights_env):
    out, rep = tmp_path / "out", tmp_path / "rep"
    argv = ["sweep", "--datasets", "mnist-sample", "--methods", "mean-fill,pde-heat", "--mask", "disc",
            "--mask-param", "radius_fraction",
            "--mask-values", "0.2,0.5,0.8", "--n-images", "4", "--device", "cpu", "--out", str(out),
            "--report-dir", str(rep), "-q"]
    assert main(argv) == 0
    records = raw_records([out])
    samples = [r for r in records if r["kind"] == "sample"]
    assert len(samples) == 2 * 3 * 4
    # Bigger holes are harder: PSNR falls with the radius for the heat equation.
    psnr = {}
    for r in samples:
        if r["method_name"] == "pde-heat":
            psnr.setdefault(r["mask_config"]["radius_fraction"], []).append(r["metrics"]["psnr"])
    means = [sum(psnr[k]) / len(psnr[k]) for k in sorted(psnr)]
    assert means[0] > means[1] > means[2]
    text = (rep / "SWEEP.md").read_text()
    assert "![sweep](sweep.png)" in text and (rep / "sweep.png").stat().st_size > 1000
    assert (rep / "heatmaps.png").exists()
    assert main(argv) == 0  # resumes: nothing new written
    again = raw_records([out])
    assert sum(r["kind"] == "sample" for r in again) == len(samples)


def test_a_sweep_of_the_super_resolution_suite_stays_super_resolution(tmp_path):
    out = tmp_path / "out"
    argv = ["sweep", "--suite", "super-resolution", "--methods", "sr-bicubic-ilvr", "--param", "num_steps",
            "--values", "2,3", "--n-images", "2", "--device", "cpu", "--out", str(out),
            "--report-dir", str(tmp_path / "rep"), "-q"]
    assert main(argv) == 0
    samples = [r for r in raw_records([out]) if r["kind"] == "sample"]
    assert {r["task"] for r in samples} == {"super-resolution"}
    assert {r["mask"] for r in samples} == {"x2", "x4"}
    assert all(r["status"] == "ok" for r in samples) and len(samples) == 2 * 2 * 2


def test_sweep_needs_exactly_one_swept_thing(capsys):
    assert main(["sweep", "--methods", "telea"]) == 2
    assert "exactly one thing" in capsys.readouterr().err


def _summary(psnr=30.0, ssim=0.9, lpips=0.1, time_s=0.01):
    return {"m | k": {"psnr": psnr, "ssim": ssim, "lpips": lpips, "known_mse": 0.0, "time_s": time_s}}


def test_compare_passes_within_tolerance_and_flags_regressions():
    assert not compare(_summary(psnr=30.0 - TOLERANCES["psnr"] / 2), _summary()).failed
    worse = compare(_summary(psnr=29.0), _summary())
    assert worse.failed
    row = worse.table[(worse.table["metric"] == "psnr")].iloc[0]
    assert row["verdict"] == "REGRESSION" and row["change"] == "-1"
    assert compare(_summary(lpips=0.2), _summary()).failed
    assert compare(_summary(time_s=0.05), _summary(), time_ratio=3.0).failed
    assert not compare(_summary(time_s=0.02), _summary(), time_ratio=3.0).failed
    # Microsecond methods are not gated on time: their jitter is larger than any threshold.
    assert not compare(_summary(time_s=4e-5), _summary(time_s=5e-6), time_ratio=3.0).failed
    assert compare({}, _summary()).failed  # a method that disappears is a regression
    assert compare(_summary(lpips=math.nan), _summary()).failed  # so is a metric that turns NaN


def test_check_cli_fails_on_a_deliberately_worsened_method(tmp_path, capsys, lpips_weights_env):
    suite = tmp_path / "gate.toml"
    suite.write_text('datasets = ["mnist-sample"]\nmasks = ["narrow"]\nmethods = ["pde-heat", "telea"]\n'
                     '[run]\nn_images = 4\nbatch_size = 4\ndevice = "cpu"\nn_examples = 0\n')
    baseline = tmp_path / "baseline.json"
    assert main(["check", "--suite", str(suite), "--baseline", str(baseline), "--update"]) == 0
    assert main(["check", "--suite", str(suite), "--baseline", str(baseline), "--time-ratio", "100"]) == 0
    capsys.readouterr()
    # One single-grid Jacobi sweep instead of the exact solve: the strokes stay mean-filled
    # (measured: PSNR 25.8 -> 23.0 dB on 8 digits).
    assert main(["check", "--suite", str(suite), "--baseline", str(baseline), "--time-ratio", "100",
                 "--set", "pde-heat.solver=iterative", "--set", "pde-heat.iterations=1",
                 "--set", "pde-heat.multiscale=false"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "pde-heat · narrow" in out
    telea_rows = [line for line in out.splitlines() if "telea · narrow" in line]
    assert telea_rows and not any("REGRESSION" in line for line in telea_rows)


def test_time_rows_are_relative_to_the_reference_workload():
    """A machine three times busier slows the reference as much as the methods: no failure; a
    method twice as slow on an unchanged machine fails; the table keeps one column per cell."""
    busy = compare(_summary(time_s=0.03), _summary(time_s=0.01), speed=3.0)
    assert not busy.failed and busy.table.iloc[-1]["change"] == "×1.00"
    slowed = compare(_summary(time_s=0.02), _summary(time_s=0.01), speed=1.0)
    assert slowed.failed and slowed.slow == {"m | k"}
    assert compare(_summary(time_s=0.06), _summary(time_s=0.01), speed=3.0).failed  # x2 beyond the busy x3
    header = slowed.table.to_markdown(index=False).splitlines()[0]
    assert header.count("|") == len(slowed.table.columns) + 1 and "method · mask" in header


def test_the_gate_confirms_a_slowdown_and_fails_a_method_made_twice_as_slow(tmp_path, monkeypatch):
    """End to end on a synthetic method: a baseline made with it at full speed, then the same
    method made twice as slow (a sleep) fails; the fast one passes on the same machine."""
    import json
    import time

    from inpaintbench.core.method import Method
    from inpaintbench.cli.check import run_check
    from inpaintbench.core.registry import Entry, Registry
    from inpaintbench.harness.suite import Suite
    import inpaintbench.harness.runner as runner_module

    class Sleeper(Method):
        def __init__(self, seconds: float = 0.004):
            super().__init__()
            self.seconds = seconds

        def inpaint(self, image, mask, *, rng):
            time.sleep(self.seconds * image.shape[0])
            return image

    registry = Registry("method", [Entry("sleeper", Sleeper)])
    monkeypatch.setattr(runner_module, "method_registry", lambda: registry)
    monkeypatch.setattr("inpaintbench.harness.executors.method_registry", lambda: registry, raising=False)

    def suite(seconds):
        return Suite.from_dict("gate", {"datasets": ["mnist-sample"], "masks": ["box"],
                                        "methods": [{"name": "sleeper", "label": "sleeper", "seconds": seconds}],
                                        "run": {"n_images": 4, "batch_size": 4, "n_examples": 0}})

    baseline = tmp_path / "baseline.json"
    run_check(suite(0.004), baseline, update=True)
    payload = json.loads(baseline.read_text())
    assert payload["reference_s"] > 0 and "sleeper | box" in payload["results"]
    payload["results"]["sleeper | box"]["time_s"] = 0.004  # the baseline of the fast method, exactly
    baseline.write_text(json.dumps(payload))
    assert not run_check(suite(0.004), baseline).failed
    slowed = run_check(suite(0.008 * 1.2), baseline)
    assert slowed.failed and slowed.slow == {"sleeper | box"}
