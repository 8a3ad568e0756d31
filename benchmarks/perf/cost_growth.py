"""Cost growth (issue #15, speed targets): how each method's time grows with the image side
and with the number of images per call, fitted and plotted.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/perf/cost_growth.py --out reports/perf [--quick]

Two studies on synthetic RGB images (a smooth sine pattern plus seeded uniform noise) with
one mask of the ``wide`` family (RePaint's thick strokes) shared by every image and resized to
every side (:func:`synthetic_batch`), one image per call unless said:

1. **side**: seconds per call at sides 32, 64, 128, 256 px (batch of 1), fitted as
   ``t = a * side**k`` by least squares on log-log (:func:`fit_power_law`);
2. **images**: seconds per call at side 64 with 1, 2, 4, 8 images in one batched call,
   fitted as ``t = c0 + c1 * n`` (:func:`fit_linear`): ``c1`` is the marginal cost of an
   image, ``c0`` the fixed cost of a call, ``t(1) * 8 / t(8)`` the batching gain.

Each call is timed with :func:`inpaintbench.harness.timing.timed_call` around ``Method.restore``
(the harness's one call), after one untimed warm-up call of the same shape (skipped, and
recorded, where the call is predicted to take over ``--warmup-limit-s``). A point is the
best (minimum) of up to ``--max-repeats`` calls, repeated until ``--repeat-target-s`` of
timed work; every repeat is kept in the JSON. Before each point its time is predicted from
the method's previous points (the last local exponent, at least 2, for sides; linear in
``n`` for images); a point predicted over ``--point-cap-s``, or over what is left of
``--budget-s``, is skipped and recorded as skipped with the prediction, never run.

The DDPM priors (``repaint``, ``ddpm-paste`` with ``weights="ddpm-celeba32"``) model only
their training size (32 px) and refuse other sizes. At other sides the same weights are run
from a temporary folder whose ``config.json`` has ``sample_size`` set to the side (the UNet
is convolutional apart from its attention, so it runs at any multiple of 8): the outputs are
meaningless there, the cost is the real cost of that network at that side.

Outputs in ``--out``: ``cost-growth.json`` (raw points, fits, machine, threads, date, torch
version), ``cost-growth.png`` (two panels: log-log seconds vs side with the fitted lines;
seconds per image vs images per call) and ``COST.md`` (the tables; :func:`render_markdown`).

Only numpy is imported at module level: the fitting and rendering functions are tested
without torch (``tests/unit/test_cost_growth.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

SIDES = (32, 64, 128, 256)
COUNTS = (1, 2, 4, 8)
COUNT_SIDE = 64
QUICK_SIDES = (32, 64)
QUICK_COUNTS = (1, 2)
MASK_FAMILY = "wide"
SEED = 0


@dataclass(frozen=True)
class MethodSpec:
    """One measured method.

    Attributes:
        label: the name in the tables (the registry name).
        name: the registry name given to ``method_registry().create``.
        config: keyword arguments for ``create`` (on top of the registry defaults).
        prior_weights: for DDPM-prior methods only: the committed weights' folder name, run at
            other sides from a copy of its config with ``sample_size`` = side (see the module
            docstring); None for every other method.
    """

    label: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    prior_weights: str | None = None


METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("zero-fill", "zero-fill"),
    MethodSpec("pde-heat", "pde-heat"),
    MethodSpec("telea", "telea"),
    MethodSpec("navier-stokes", "navier-stokes"),
    MethodSpec("biharmonic", "biharmonic"),
    MethodSpec("lama-ffc", "lama-ffc", {"weights": "lama-ffc-celeba32"}),
    MethodSpec("lama-ffc-erode", "lama-ffc-erode", {"inner_config": {"weights": "lama-ffc-celeba32"}}),
    MethodSpec("ddpm-paste", "ddpm-paste", {"weights": "ddpm-celeba32"}, prior_weights="ddpm-celeba32"),
    MethodSpec("repaint", "repaint", {"weights": "ddpm-celeba32"}, prior_weights="ddpm-celeba32"),
)


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """``t = a * side**k`` fitted on log-log.

    Attributes:
        a: seconds at a side of 1 px (the intercept, ``exp`` of the log-log one).
        k: the exponent (dimensionless): time grows as ``side**k``.
        points: how many points were fitted.
        rms_log10: root-mean-square residual in log10 seconds (0 for an exact power law;
            0.1 is a factor of 1.26 off the line on average).
    """

    a: float
    k: float
    points: int
    rms_log10: float

    def predict(self, side: float | np.ndarray) -> float | np.ndarray:
        """Seconds at ``side`` px (scalar or array of any shape)."""
        return self.a * np.power(side, self.k)


@dataclass(frozen=True)
class LinearFit:
    """``t = c0 + c1 * n`` fitted by ordinary least squares.

    Attributes:
        c0: seconds of a call with no images (the fixed cost; may come out slightly negative
            in noise).
        c1: seconds per extra image in the same call (the marginal cost).
        points: how many points were fitted.
    """

    c0: float
    c1: float
    points: int

    def predict(self, n: float | np.ndarray) -> float | np.ndarray:
        """Seconds of a call with ``n`` images (scalar or array of any shape)."""
        return self.c0 + self.c1 * np.asarray(n, dtype=float)


def _as_1d(values: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite, got {array.tolist()}")
    return array


def fit_power_law(sides: Sequence[float], seconds: Sequence[float]) -> PowerLawFit:
    """Fit ``seconds = a * sides**k`` by least squares on ``log(seconds) = log(a) + k log(sides)``.

    Args:
        sides: ``[P]`` image sides in px (> 0), at least two distinct values.
        seconds: ``[P]`` times in seconds (> 0), one per side.

    Returns:
        :class:`PowerLawFit`; an exact power law gives its ``k`` and ``a`` back to rounding.

    Raises:
        ValueError: shapes differ, fewer than two distinct sides, or a side/time <= 0.
    """
    x, y = _as_1d(sides, "sides"), _as_1d(seconds, "seconds")
    if x.shape != y.shape:
        raise ValueError(f"sides {x.shape} and seconds {y.shape} differ in shape")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("sides and seconds must be > 0 for a log-log fit")
    if np.unique(x).size < 2:
        raise ValueError(f"a power law needs at least two distinct sides, got {x.tolist()}")
    lx, ly = np.log(x), np.log(y)
    design = np.stack([lx, np.ones_like(lx)], axis=1)
    (k, log_a), *_ = np.linalg.lstsq(design, ly, rcond=None)
    residual = (ly - (k * lx + log_a)) / math.log(10)
    return PowerLawFit(a=float(math.exp(log_a)), k=float(k), points=int(x.size),
                       rms_log10=float(np.sqrt(np.mean(residual ** 2))))


def fit_linear(counts: Sequence[float], seconds: Sequence[float]) -> LinearFit:
    """Fit ``seconds = c0 + c1 * counts`` by ordinary least squares.

    Args:
        counts: ``[P]`` images per call, at least two distinct values.
        seconds: ``[P]`` seconds per call.

    Returns:
        :class:`LinearFit`.

    Raises:
        ValueError: shapes differ or fewer than two distinct counts.
    """
    x, y = _as_1d(counts, "counts"), _as_1d(seconds, "seconds")
    if x.shape != y.shape:
        raise ValueError(f"counts {x.shape} and seconds {y.shape} differ in shape")
    if np.unique(x).size < 2:
        raise ValueError(f"a line needs at least two distinct counts, got {x.tolist()}")
    design = np.stack([np.ones_like(x), x], axis=1)
    (c0, c1), *_ = np.linalg.lstsq(design, y, rcond=None)
    return LinearFit(c0=float(c0), c1=float(c1), points=int(x.size))


def predict_next_side(sides: Sequence[float], seconds: Sequence[float], side: float,
                      min_exponent: float = 2.0) -> float:
    """Predicted seconds at ``side`` from the measured ``[P]`` points (``P >= 1``, sides
    ascending): the last point scaled by ``(side / last side) ** e``, ``e`` the local exponent
    of the last two points, at least ``min_exponent`` (pixel count; used with one point)."""
    if len(sides) == 0:
        raise ValueError("no points to predict from")
    exponent = min_exponent
    if len(sides) >= 2 and sides[-1] != sides[-2]:
        local = math.log(seconds[-1] / seconds[-2]) / math.log(sides[-1] / sides[-2])
        exponent = max(min_exponent, local)
    return float(seconds[-1] * (side / sides[-1]) ** exponent)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def format_seconds(seconds: float | None) -> str:
    """A time in seconds as a short string with 2-3 significant digits: ``"42 µs"``,
    ``"1.3 ms"``, ``"0.26 s"``, ``"35 s"``; ``"-"`` for None."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    seconds = float(f"{seconds:.3g}")  # 0.0999999 is 0.1 s, not 100 ms
    if seconds < 1e-3:
        value, unit = seconds * 1e6, "µs"
    elif seconds < 0.1:
        value, unit = seconds * 1e3, "ms"
    else:
        value, unit = seconds, "s"
    if value >= 100:
        text = f"{value:.0f}"
    elif value >= 10:
        text = f"{value:.1f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def _point(points: Iterable[dict[str, Any]], key: str, value: int) -> dict[str, Any] | None:
    for point in points:
        if point[key] == value:
            return point
    return None


def _cell(point: dict[str, Any] | None, per_image: bool = False) -> str:
    if point is None:
        return "-"
    if point.get("seconds") is None:
        return f"skipped (~{format_seconds(point['predicted_seconds'])})" if point.get("predicted_seconds") else "skipped"
    seconds = point["seconds"] / point["images"] if per_image else point["seconds"]
    return format_seconds(seconds)


def side_fit(method: dict[str, Any]) -> PowerLawFit | None:
    """The power law of a method record's measured side points (``method["sides"]``, a list of
    ``{"side": px, "seconds": s or None, ...}``); None with fewer than two measured sides."""
    done = [p for p in method["sides"] if p.get("seconds") is not None]
    if len({p["side"] for p in done}) < 2:
        return None
    return fit_power_law([p["side"] for p in done], [p["seconds"] for p in done])


def local_exponent(method: dict[str, Any]) -> float | None:
    """The slope on log-log between a method record's two largest measured sides
    (``log(t2 / t1) / log(s2 / s1)``); None with fewer than two measured sides."""
    done = sorted((p["side"], p["seconds"]) for p in method["sides"] if p.get("seconds") is not None)
    if len({s for s, _ in done}) < 2:
        return None
    (s1, t1), (s2, t2) = done[-2], done[-1]
    return math.log(t2 / t1) / math.log(s2 / s1)


def count_fit(method: dict[str, Any]) -> LinearFit | None:
    """The line of a method record's measured image-count points (``method["counts"]``, a list
    of ``{"images": n, "seconds": s or None, ...}``); None with fewer than two."""
    done = [p for p in method["counts"] if p.get("seconds") is not None]
    if len({p["images"] for p in done}) < 2:
        return None
    return fit_linear([p["images"] for p in done], [p["seconds"] for p in done])


def render_markdown(results: dict[str, Any]) -> str:
    """``COST.md`` from a results record (the JSON's structure).

    Args:
        results: ``{"command": str, "sides": [px...], "counts": [n...], "count_side": px,
            "machine": {...}, "wall_seconds": s, "notes": [str...], "methods": [{"label": str,
            "config": {...}, "sides": [{"side", "seconds" (s, None = skipped),
            "predicted_seconds", "images"...}], "counts": [{"images", "seconds", ...}]}]}``;
            times in seconds per call.

    Returns:
        The markdown text: the side table (exponent k of the fit, seconds per image at each
        side), the images table (per-image seconds at 1 and the largest count, the linear fit,
        the batching gain), the notes, the machine and the command.
    """
    sides, counts = list(results["sides"]), list(results["counts"])
    n_max = max(counts)
    machine = results.get("machine", {})
    lines = [
        "# Cost growth: time vs image side and vs images per call",
        "",
        "Made by (issue #15, speed targets):",
        "",
        "```",
        results["command"],
        "```",
        "",
        (f"**Timings are from one run on a shared, busy {machine.get('cpu_count', '?')}-core CPU with "
         f"{machine.get('torch_threads', '?')} torch thread(s)** (OMP_NUM_THREADS="
         f"{machine.get('omp_num_threads', '?')}, `nice -n 10`): absolute seconds move with the "
         "machine's load; the ratios and exponents are what is comparable."),
        "",
        f"## Time per image vs image side (1 image per call, `{results.get('mask', MASK_FAMILY)}` masks)",
        "",
        "`k` is the exponent of the least-squares fit `t = a * side^k` on log-log over the measured "
        "sides (`pts` of them; `rms` = residual in log10 s). A pixel-linear method has k = 2.",
        "",
        f"`k top` is the local exponent between the two largest measured sides ({sides[-2]} and {sides[-1]} px "
        "when both ran), where fixed per-call costs weigh least.",
        "",
        "| method | k | pts | rms | k top | " + " | ".join(f"{s} px" for s in sides)
        + f" | per image, n=1 at {results['count_side']} px | per image, n={n_max} |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(sides) + "---:|---:|",
    ]
    for method in results["methods"]:
        fit = side_fit(method)
        k = "-" if fit is None else f"{fit.k:.2f}"
        pts = "-" if fit is None else str(fit.points)
        rms = "-" if fit is None else f"{fit.rms_log10:.2f}"
        top = local_exponent(method)
        k_top = "-" if top is None else f"{top:.2f}"
        cells = [_cell(_point(method["sides"], "side", s)) for s in sides]
        one = _cell(_point(method["counts"], "images", 1), per_image=True)
        many = _cell(_point(method["counts"], "images", n_max), per_image=True)
        lines.append(f"| {method['label']} | {k} | {pts} | {rms} | {k_top} | " + " | ".join(cells) + f" | {one} | {many} |")
    lines += [
        "",
        f"## Time vs images per call ({results['count_side']} px, one batched call)",
        "",
        "`t = c0 + c1 * n` fitted by least squares: `c1` is the marginal seconds per image, `c0` "
        f"the fixed cost of a call; gain = t(1) * {n_max} / t({n_max}) (1 = no gain from batching).",
        "",
        "| method | " + " | ".join(f"n={n}" for n in counts) + " | c0 | c1 (per image) | gain |",
        "|---|" + "---:|" * len(counts) + "---:|---:|---:|",
    ]
    for method in results["methods"]:
        cells = [_cell(_point(method["counts"], "images", n)) for n in counts]
        fit = count_fit(method)
        c0 = "-" if fit is None else format_seconds(fit.c0)
        c1 = "-" if fit is None else format_seconds(fit.c1)
        first, last = _point(method["counts"], "images", 1), _point(method["counts"], "images", n_max)
        gain = "-"
        if first and last and first.get("seconds") and last.get("seconds"):
            gain = f"{first['seconds'] * n_max / last['seconds']:.2f}x"
        lines.append(f"| {method['label']} | " + " | ".join(cells) + f" | {c0} | {c1} | {gain} |")
    notes = list(results.get("notes", []))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    lines += [
        "",
        "## Run",
        "",
        f"- date (UTC): {results.get('date', '?')}; study wall time: "
        f"{format_seconds(results.get('wall_seconds'))}",
        f"- machine: {machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} CPUs, "
        f"load average at start {machine.get('load_average_start', '?')}, at end "
        f"{machine.get('load_average_end', '?')}",
        f"- torch {machine.get('torch_version', '?')}, {machine.get('torch_threads', '?')} thread(s), "
        f"CPU kernels {machine.get('torch_cpu_capability', '?')}; python {machine.get('python', '?')}; "
        f"commit {machine.get('git_commit', '?')}",
        "- raw points (every repeat), configs and fits: `cost-growth.json`; plot: `cost-growth.png`",
        "",
    ]
    return "\n".join(lines)


def make_notes(results: dict[str, Any]) -> list[str]:
    """The notes of ``COST.md``, from a results record (see :func:`render_markdown`; also reads
    its ``warmup_limit_s``, ``point_cap_s``, ``budget_s`` settings, in seconds)."""
    methods = {m["label"]: m for m in results["methods"]}
    notes = [
        "A point is the minimum over its repeats (each repeat one `timed_call` around `Method.restore`, "
        "after one untimed warm-up call of the same shape unless predicted over "
        f"{format_seconds(results['warmup_limit_s'])}); every repeat is in the JSON. The n=1 point of the "
        f"images study is the side study's {results['count_side']} px point (the same call, not run twice).",
    ]
    skipped = [f"{m['label']} at {p['side']} px, n={p['images']} ({p['skipped']})"
               for m in results["methods"] for p in m["sides"] + m["counts"] if p.get("seconds") is None]
    notes.append("Skipped points (predicted from the method's earlier points to exceed the per-point cap of "
                 f"{format_seconds(results['point_cap_s'])} or the study's budget of "
                 f"{format_seconds(results['budget_s'])}; not run): " + ("; ".join(skipped) if skipped else "none."))
    fractions = sorted({round(p["hole_fraction"], 4) for m in results["methods"] for p in m["sides"] + m["counts"]
                        if "hole_fraction" in p})
    if fractions:
        notes.append(f"Masks: one `{results.get('mask', MASK_FAMILY)}` mask (of {MASK_POOL} drawn at {MASK_DRAW_SIDE} "
                     "px, the one closest to their mean hole fraction), resized by nearest neighbour to each side "
                     f"and shared by every image of a batch: {min(fractions):.1%}-{max(fractions):.1%} holes at every "
                     "point, so the side study measures the side and the images study the batching, not the "
                     "holes' areas.")
    notes.append("ddpm-paste and repaint use `weights=\"ddpm-celeba32\"`, a prior trained at 32 px that refuses "
                 "other sizes; at larger sides the same weights run from a copy of the config with `sample_size` = "
                 "side: the outputs there are meaningless, the cost is the network's real cost at that side. This "
                 "UNet has self-attention at 1/4 and 1/8 resolution (tokens grow as side^2, attention as side^4), "
                 "so its local exponent rises with the side (`k top`).")
    repaint = methods.get("repaint")
    if repaint is not None:
        fit, top = side_fit(repaint), local_exponent(repaint)
        times = ", ".join(f"{format_seconds(p['seconds'])} at {p['side']}" for p in repaint["sides"]
                          if p.get("seconds") is not None)
        notes.append("Reference point: RePaint's fast preset on the committed MNIST UNet grows as side^2.2 "
                     "(0.26 s at 28 px, 1.0 s at 64, 35 s at 256 per image). Here, on the CelebA 32 px UNet: "
                     f"{times} px (k = {'-' if fit is None else f'{fit.k:.2f}'}, "
                     f"k top = {'-' if top is None else f'{top:.2f}'}).")
    erode = methods.get("lama-ffc-erode")
    if erode is not None:
        calls = sorted({p["stats"]["inner_calls"] for p in erode["sides"] + erode["counts"]
                        if "inner_calls" in p.get("stats", {})})
        span = "-".join(f"{c:g}" for c in (calls[:1] + calls[-1:] if len(calls) > 1 else calls)) or "?"
        notes.append("lama-ffc-erode makes ceil(d / step) inner lama-ffc calls per image (d = the hole's largest "
                     "distance to a known pixel, step = max(1, round(side / 32)) px): with the mask resized, "
                     f"{span} inner calls per image at every point, so its growth is lama-ffc's times a constant.")
    notes.append("pde-heat is the exact sparse LU solve (the default solver); zero-fill is the floor "
                 "(the per-call overhead of validation and compositing).")
    return notes


def render_plot(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the two-panel PNG of a results record (see :func:`render_markdown`) to ``path``:
    left, seconds per call vs side on log-log, measured points and fitted ``a * side^k``
    lines; right, seconds per image vs images per call (log y). Uses matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.ticker
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), dpi=110)
    left, right = fig.subplots(1, 2)
    colours = matplotlib.colormaps["tab10"]
    for i, method in enumerate(results["methods"]):
        colour = colours(i % 10)
        done = [p for p in method["sides"] if p.get("seconds") is not None]
        fit = side_fit(method)
        label = method["label"] + ("" if fit is None else f" (k={fit.k:.2f})")
        if done:
            left.plot([p["side"] for p in done], [p["seconds"] for p in done], "o", color=colour, label=label)
        if fit is not None:
            xs = np.geomspace(min(results["sides"]), max(results["sides"]), 50)
            left.plot(xs, fit.predict(xs), "-", color=colour, alpha=0.6)
        skipped = [p for p in method["sides"] if p.get("seconds") is None and p.get("predicted_seconds")]
        if skipped:
            left.plot([p["side"] for p in skipped], [p["predicted_seconds"] for p in skipped], "x",
                      color=colour, alpha=0.6)
        counted = [p for p in method["counts"] if p.get("seconds") is not None]
        if counted:
            right.plot([p["images"] for p in counted], [p["seconds"] / p["images"] for p in counted], "o-",
                       color=colour, label=method["label"])
    left.set(xscale="log", yscale="log", xlabel="image side (px)", ylabel="seconds per call (1 image)",
             title="time vs side (lines: least-squares a*side^k; x: skipped, predicted)")
    left.set_xticks(list(results["sides"]), [str(s) for s in results["sides"]])
    left.minorticks_off()
    left.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, numticks=12))
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7, loc="upper left")
    right.set(xscale="log", yscale="log", xlabel="images per call", ylabel="seconds per image",
              title=f"time per image vs images per call ({results['count_side']} px)")
    right.set_xticks(list(results["counts"]), [str(n) for n in results["counts"]])
    right.minorticks_off()
    right.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, numticks=12))
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=7, loc="best")
    fig.suptitle(f"cost growth, one run, {results.get('machine', {}).get('torch_threads', '?')} torch thread(s), "
                 "shared CPU: compare ratios and exponents", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


MASK_DRAW_SIDE = 256
MASK_POOL = 8


def synthetic_batch(n: int, side: int, seed: int = SEED):
    """``n`` synthetic RGB images sharing one ``wide`` mask; the first ``m`` of a larger ``n``
    are the same images.

    The mask is the same at every side and for every image, so the side study measures the
    side and the images study the batching, not the masks' hole areas (the classical methods'
    and lama-ffc-erode's cost grows with the holes): :data:`MASK_POOL` masks are drawn at
    :data:`MASK_DRAW_SIDE` px (seeded by ``seed`` alone), the one whose hole fraction is
    closest to the pool's mean is kept, resized to ``side`` by nearest neighbour and repeated
    ``n`` times. The images are seeded by ``(seed, side)``.

    Returns:
        ``(original, mask)``: float32 ``[n, 3, side, side]`` in ``[0, 1]`` (a smooth sine
        pattern, a different phase per channel, plus uniform noise of amplitude 0.1) and bool
        ``[n, 1, side, side]`` (True = hole), the same mask for every image.
    """
    import torch
    import torch.nn.functional as F

    from inpaintbench.core.registry import mask_registry
    from inpaintbench.core.seeding import make_generator

    total = max(n, max(COUNTS))
    gen = make_generator(seed, "cost-growth", "image", side)
    yy, xx = torch.meshgrid(torch.linspace(0, 6, side), torch.linspace(0, 6, side), indexing="ij")
    phase = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
    smooth = 0.5 + 0.25 * torch.sin(xx + 0.5 * yy + phase)
    original = (smooth + 0.1 * torch.rand(total, 3, side, side, generator=gen)).clamp(0, 1)
    pool = mask_registry().create(MASK_FAMILY)(MASK_POOL, MASK_DRAW_SIDE, MASK_DRAW_SIDE,
                                               generator=make_generator(seed, "cost-growth", "mask"))
    fractions = pool.float().mean(dim=(1, 2, 3))
    chosen = pool[int((fractions - fractions.mean()).abs().argmin())][None]
    if side != MASK_DRAW_SIDE:
        chosen = F.interpolate(chosen.float(), size=(side, side), mode="nearest") > 0.5
    return original[:n].contiguous(), chosen.expand(n, -1, -1, -1).contiguous()


def resized_prior(weights: str, side: int, folder: Path) -> Path:
    """A copy of committed DDPM weights ``weights`` that declares ``sample_size = side``: the
    weights file and scheduler config symlinked, ``config.json`` rewritten, in ``folder``.
    Returns the new folder (the committed one itself at its own size)."""
    from inpaintbench.methods import WEIGHTS_DIR

    source = WEIGHTS_DIR / weights
    config = json.loads((source / "config.json").read_text())
    if config.get("sample_size") == side:
        return source
    target = folder / f"{weights}-at-{side}px"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("diffusion_pytorch_model.safetensors", "scheduler_config.json"):
        if (source / name).exists() and not (target / name).exists():
            (target / name).symlink_to(source / name)
    config["sample_size"] = side
    (target / "config.json").write_text(json.dumps(config, indent=2))
    return target


def machine_info() -> dict[str, Any]:
    """What the timings depend on: CPU model and count, load average, torch version, threads
    and CPU kernel level, ``$OMP_NUM_THREADS``, python, platform, the git commit."""
    from inpaintbench.harness.environment import cpu_model, git_commit, timing_settings

    settings = timing_settings()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_start": settings.pop("load_average_1_5_15_min"),
        **settings,
        "niceness": os.nice(0) if hasattr(os, "nice") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": (git_commit() or "?")[:12],
    }


class Budget:
    """Wall-clock budget of the study: ``left()`` seconds of ``total`` since construction."""

    def __init__(self, total_s: float):
        self.total_s = total_s
        self.start = time.perf_counter()

    def left(self) -> float:
        return self.total_s - (time.perf_counter() - self.start)


def time_point(call: Callable[[], Any], *, warm_up: bool, target_s: float, max_repeats: int) -> dict[str, Any]:
    """Time ``call()`` with :func:`inpaintbench.harness.timing.timed_call` on the CPU.

    One untimed warm-up call when ``warm_up``, then timed calls until their sum reaches
    ``target_s`` seconds or ``max_repeats`` calls (at least one).

    Returns:
        ``{"seconds": min of the repeats (s), "median_seconds", "repeats": [s...],
        "warmed_up": bool, "stats": the last call's Restoration.stats, floats averaged over
        the batch}``.
    """
    from inpaintbench.harness.timing import timed_call

    if warm_up:
        call()
    repeats: list[float] = []
    value = None
    while not repeats or (sum(repeats) < target_s and len(repeats) < max_repeats):
        timed = timed_call(call, "cpu")
        repeats.append(timed.seconds)
        value = timed.value
    stats: dict[str, float] = {}
    for key, counter in (getattr(value, "stats", None) or {}).items():
        try:
            stats[key] = float(np.mean(np.asarray(counter, dtype=float)))
        except (TypeError, ValueError):
            continue
    return {"seconds": min(repeats), "median_seconds": float(np.median(repeats)), "repeats": repeats,
            "warmed_up": warm_up, "stats": stats}


def _build(spec: MethodSpec, side: int, folder: Path):
    from inpaintbench.core.registry import method_registry

    config = dict(spec.config)
    if spec.prior_weights is not None:
        config["weights"] = str(resized_prior(spec.prior_weights, side, folder))
    return method_registry().create(spec.name, **config).to("cpu")


def _caller(method, spec: MethodSpec, original, mask) -> Callable[[], Any]:
    from inpaintbench.core.seeding import SampleRNG
    from inpaintbench.core.tasks import Inpainting

    observation = Inpainting(mask).observe(original)
    ids = [str(i) for i in range(original.shape[0])]

    def call():
        rng = SampleRNG.for_samples(SEED, "cost-growth", spec.label, sample_ids=ids)
        return method.restore(observation, rng)

    return call


def measure_method(spec: MethodSpec, *, sides: Sequence[int], counts: Sequence[int], count_side: int,
                   budget: Budget, point_cap_s: float, warmup_limit_s: float, repeat_target_s: float,
                   max_repeats: int, folder: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Both studies for one method (see the module docstring); returns its JSON record."""
    import torch

    record: dict[str, Any] = {"label": spec.label, "name": spec.name, "config": spec.config,
                              "prior_weights": spec.prior_weights, "sides": [], "counts": []}
    measured_sides: list[int] = []
    measured_seconds: list[float] = []

    def run_point(side: int, n: int, predicted: float | None) -> dict[str, Any]:
        point: dict[str, Any] = {"side": side, "images": n, "predicted_seconds": predicted}
        need = (predicted or 0.0) * (2 if predicted is not None and predicted < warmup_limit_s else 1)
        if predicted is not None and (predicted > point_cap_s or need > budget.left()):
            why = (f"predicted {format_seconds(predicted)} > point cap {format_seconds(point_cap_s)}"
                   if predicted > point_cap_s else
                   f"predicted {format_seconds(need)} > budget left {format_seconds(max(budget.left(), 0))}")
            point.update(seconds=None, skipped=why)
            log(f"  {spec.label:15s} side {side:3d} n={n}: SKIPPED ({why})")
            return point
        original, mask = synthetic_batch(n, side)
        method = _build(spec, side, folder)
        warm = predicted is None or predicted < warmup_limit_s
        with torch.inference_mode():
            point.update(time_point(_caller(method, spec, original, mask), warm_up=warm,
                                    target_s=repeat_target_s, max_repeats=max_repeats))
        point["hole_fraction"] = float(mask.float().mean())
        log(f"  {spec.label:15s} side {side:3d} n={n}: {format_seconds(point['seconds'])} "
            f"({len(point['repeats'])} repeats{', warmed up' if warm else ', no warm-up'}; "
            f"predicted {format_seconds(predicted)}) stats={point['stats']}")
        return point

    for side in sides:
        predicted = (predict_next_side(measured_sides, measured_seconds, side) if measured_sides else None)
        point = run_point(side, 1, predicted)
        record["sides"].append(point)
        if point["seconds"] is not None:
            measured_sides.append(side)
            measured_seconds.append(point["seconds"])
    known = _point(record["sides"], "side", count_side)
    last: tuple[int, float] | None = (1, known["seconds"]) if known and known.get("seconds") else None
    for n in counts:
        if n == 1 and last is not None:  # the side study's point at count_side: the same call
            point = dict(known, reused_from="side study")
            record["counts"].append(point)
            continue
        predicted = None if last is None else last[1] * n / last[0]
        point = run_point(count_side, n, predicted)
        record["counts"].append(point)
        if point["seconds"] is not None:
            last = (n, point["seconds"])
    fit = side_fit(record)
    line = count_fit(record)
    record["side_fit"] = None if fit is None else asdict(fit)
    record["k_top"] = local_exponent(record)
    record["count_fit"] = None if line is None else asdict(line)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/perf"), help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: sides {QUICK_SIDES}, counts {QUICK_COUNTS}, 1 repeat, 120 s budget")
    parser.add_argument("--methods", nargs="*", default=None, help="labels to run (default: all)")
    parser.add_argument("--budget-s", type=float, default=1080.0, help="wall-clock budget of the whole study")
    parser.add_argument("--point-cap-s", type=float, default=240.0, help="skip a point predicted to take longer")
    parser.add_argument("--warmup-limit-s", type=float, default=2.0,
                        help="no warm-up call for points predicted to take longer")
    parser.add_argument("--repeat-target-s", type=float, default=2.0,
                        help="repeat a point until this much timed work")
    parser.add_argument("--max-repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--render", type=Path, default=None, metavar="JSON",
                        help="measure nothing: rewrite COST.md and the PNG in --out from this cost-growth.json")
    args = parser.parse_args(argv)
    if args.render is not None:
        results = json.loads(args.render.read_text())
        results["notes"] = make_notes(results)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cost-growth.json").write_text(json.dumps(results, indent=1) + "\n")
        (args.out / "COST.md").write_text(render_markdown(results))
        render_plot(results, args.out / "cost-growth.png")
        return 0

    import torch

    torch.set_num_threads(args.threads)
    sides, counts = (QUICK_SIDES, QUICK_COUNTS) if args.quick else (SIDES, COUNTS)
    if args.quick:
        args.budget_s, args.max_repeats = min(args.budget_s, 120.0), 1
    specs = [s for s in METHODS if args.methods is None or s.label in args.methods]
    unknown = set(args.methods or []) - {s.label for s in METHODS}
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {[s.label for s in METHODS]}")
    args.out.mkdir(parents=True, exist_ok=True)
    command = "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/perf/cost_growth.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    machine = machine_info()
    budget = Budget(args.budget_s)

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - budget.start:7.1f} s] {text}", flush=True)

    log(f"cost growth: {len(specs)} methods, sides {sides}, counts {counts} at {COUNT_SIDE} px, "
        f"budget {args.budget_s:.0f} s, torch {torch.__version__} on {torch.get_num_threads()} thread(s)")
    folder = Path(tempfile.mkdtemp(prefix="cost-growth-"))
    records = []
    try:
        for spec in specs:
            records.append(measure_method(
                spec, sides=sides, counts=counts, count_side=COUNT_SIDE, budget=budget,
                point_cap_s=args.point_cap_s, warmup_limit_s=args.warmup_limit_s,
                repeat_target_s=args.repeat_target_s, max_repeats=args.max_repeats, folder=folder, log=log))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    wall = time.perf_counter() - budget.start
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    results = {
        "command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick, "sides": list(sides), "counts": list(counts), "count_side": COUNT_SIDE,
        "mask": MASK_FAMILY, "seed": SEED, "budget_s": args.budget_s, "point_cap_s": args.point_cap_s,
        "warmup_limit_s": args.warmup_limit_s, "repeat_target_s": args.repeat_target_s,
        "max_repeats": args.max_repeats, "wall_seconds": wall, "machine": machine, "methods": records,
    }
    results["notes"] = make_notes(results)
    (args.out / "cost-growth.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "COST.md").write_text(render_markdown(results))
    render_plot(results, args.out / "cost-growth.png")
    log(f"done in {wall:.0f} s: {args.out / 'COST.md'}, cost-growth.json, cost-growth.png")
    for record in records:
        fit = side_fit(record)
        log(f"  {record['label']:15s} k = {'-' if fit is None else f'{fit.k:.2f}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
