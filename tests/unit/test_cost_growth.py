"""The cost-growth study's fitting and rendering (benchmarks/perf/cost_growth.py), on synthetic
points: no method is run and nothing is timed here."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "cost_growth.py"


def _load():
    spec = importlib.util.spec_from_file_location("cost_growth_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


cg = _load()


@pytest.mark.parametrize("k", [0.0, 1.0, 2.0, 2.2, 3.5])
def test_exact_power_law_recovers_k_and_a(k):
    sides = [32, 64, 128, 256]
    seconds = [0.003 * s ** k for s in sides]
    fit = cg.fit_power_law(sides, seconds)
    assert abs(fit.k - k) < 1e-9
    assert math.isclose(fit.a, 0.003, rel_tol=1e-9)
    assert fit.points == 4
    assert fit.rms_log10 < 1e-9
    assert math.isclose(float(fit.predict(512)), 0.003 * 512 ** k, rel_tol=1e-9)


def test_reference_point_repaint_exponent():
    # RePaint's fast preset on the committed MNIST UNet: 0.26 s at 28 px, 1.0 s at 64, 35 s at 256
    fit = cg.fit_power_law([28, 64, 256], [0.26, 1.0, 35.0])
    assert 2.1 < fit.k < 2.3
    assert 0.05 < fit.rms_log10 < 0.15  # not an exact power law: the local slope rises with the side


def test_power_law_under_multiplicative_noise():
    rng = np.random.default_rng(0)
    sides = np.array([32, 64, 128, 256] * 5, dtype=float)
    seconds = 1e-4 * sides ** 2 * np.exp(rng.normal(0, 0.05, sides.size))
    fit = cg.fit_power_law(sides, seconds)
    assert abs(fit.k - 2.0) < 0.05
    assert 0.01 < fit.rms_log10 < 0.04  # ~0.05 / ln(10)


def test_two_points_give_the_local_slope():
    fit = cg.fit_power_law([64, 128], [1.0, 8.0])
    assert abs(fit.k - 3.0) < 1e-12


@pytest.mark.parametrize("sides, seconds", [
    ([64], [1.0]),                 # one point
    ([64, 64], [1.0, 1.1]),        # one distinct side
    ([32, 64], [0.0, 1.0]),        # zero time
    ([32, 64], [1.0, -1.0]),       # negative time
    ([32, 64, 128], [1.0, 2.0]),   # shapes differ
    ([32, 64], [1.0, float("nan")]),
])
def test_power_law_refuses_bad_points(sides, seconds):
    with pytest.raises(ValueError):
        cg.fit_power_law(sides, seconds)


def test_exact_line_recovers_c0_c1():
    counts = [1, 2, 4, 8]
    fit = cg.fit_linear(counts, [0.25 + 0.125 * n for n in counts])
    assert abs(fit.c0 - 0.25) < 1e-12 and abs(fit.c1 - 0.125) < 1e-12
    assert fit.points == 4
    assert abs(float(fit.predict(16)) - 2.25) < 1e-12


def test_line_refuses_one_count():
    with pytest.raises(ValueError):
        cg.fit_linear([4, 4], [1.0, 1.1])


def test_prediction_uses_the_local_exponent_but_at_least_pixel_count():
    assert cg.predict_next_side([32], [1.0], 64) == pytest.approx(4.0)              # one point: k = 2
    assert cg.predict_next_side([32, 64], [1.0, 8.0], 128) == pytest.approx(64.0)   # local k = 3
    assert cg.predict_next_side([32, 64], [1.0, 1.1], 128) == pytest.approx(4.4)    # k floored at 2


def test_local_exponent_is_the_slope_of_the_two_largest_measured_sides():
    sides = [{"side": 32, "seconds": 1.0}, {"side": 64, "seconds": 2.0}, {"side": 128, "seconds": 16.0},
             {"side": 256, "seconds": None}]
    assert cg.local_exponent({"sides": sides}) == pytest.approx(3.0)
    assert cg.local_exponent({"sides": sides[:1]}) is None


@pytest.mark.parametrize("seconds, text", [
    (None, "-"), (4.2e-5, "42 µs"), (1.25e-3, "1.25 ms"), (0.26, "0.26 s"), (35.0, "35 s"),
    (123.4, "123 s"), (0.0123, "12.3 ms"),
])
def test_format_seconds(seconds, text):
    assert cg.format_seconds(seconds) == text


def _results():
    """A results record with one power-law method (k = 2, c0 = 0.1 s, c1 = 0.05 s) and one whose
    256 px point was skipped."""
    def points(a, k, skip_256=False):
        out = []
        for s in (32, 64, 128, 256):
            if skip_256 and s == 256:
                out.append({"side": s, "images": 1, "seconds": None, "predicted_seconds": 300.0,
                            "skipped": "predicted 300 s > point cap 240 s"})
            else:
                out.append({"side": s, "images": 1, "seconds": a * s ** k, "predicted_seconds": None})
        return out

    counts = [{"side": 64, "images": n, "seconds": 0.1 + 0.05 * n} for n in (1, 2, 4, 8)]
    return {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/perf/cost_growth.py --out reports/perf",
        "sides": [32, 64, 128, 256], "counts": [1, 2, 4, 8], "count_side": 64, "mask": "wide",
        "date": "2026-01-01T00:00:00Z", "wall_seconds": 123.0,
        "machine": {"cpu_count": 2, "torch_threads": 1, "omp_num_threads": "1", "torch_version": "2.x"},
        "notes": ["a note"],
        "methods": [
            {"label": "square", "sides": points(1e-4, 2.0), "counts": counts},
            {"label": "slow", "sides": points(1e-3, 3.0, skip_256=True), "counts": counts[:1]},
        ],
    }


def _row(text, label):
    return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def test_markdown_side_table():
    text = cg.render_markdown(_results())
    assert ("| method | k | pts | rms | k top | 32 px | 64 px | 128 px | 256 px | per image, n=1 at 64 px "
            "| per image, n=8 |") in text
    cells = [c.strip() for c in _row(text, "square").split("|")[1:-1]]
    # 1e-4 * s^2: 0.1024 s, 0.41 s, 1.64 s, 6.55 s; per image 0.15 s at n=1, 0.5 / 8 at n=8
    assert cells == ["square", "2.00", "4", "0.00", "2.00", "0.1 s", "0.41 s", "1.64 s", "6.55 s", "0.15 s", "62.5 ms"]
    slow = [c.strip() for c in _row(text, "slow").split("|")[1:-1]]
    assert slow[1:3] == ["3.00", "3"]           # fitted on the three measured sides
    assert slow[4] == "3.00"                    # k top: 64 -> 128 px, the largest measured pair
    assert slow[8] == "skipped (~300 s)"
    assert slow[10] == "-"                      # no n=8 point


def test_markdown_images_table_command_and_note():
    text = cg.render_markdown(_results())
    square = text.splitlines()
    rows = [line for line in square if line.startswith("| square |")]
    assert len(rows) == 2
    cells = [c.strip() for c in rows[1].split("|")[1:-1]]
    assert cells == ["square", "0.15 s", "0.2 s", "0.3 s", "0.5 s", "0.1 s", "50 ms", "2.40x"]
    assert "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/perf/cost_growth.py --out reports/perf" in text
    assert "one run on a shared, busy 2-core CPU with 1 torch thread" in text
    assert "ratios and exponents are what is comparable" in text
    assert "- a note" in text


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "cost.png"
    cg.render_plot(_results(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_notes_name_skipped_points_and_the_reference():
    results = dict(_results(), warmup_limit_s=2.0, point_cap_s=240.0, budget_s=1080.0)
    results["methods"][1]["label"] = "repaint"
    notes = "\n".join(cg.make_notes(results))
    assert "repaint at 256 px, n=1 (predicted 300 s > point cap 240 s)" in notes
    assert "side^2.2" in notes and "k = 3.00, k top = 3.00" in notes
    results["methods"] = results["methods"][:1]
    assert "not run): none." in "\n".join(cg.make_notes(results))
