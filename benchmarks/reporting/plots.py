"""Leaderboard plots: metric against hole size, quality against compute (Pareto front)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from inpaintbench.metrics import metric_info  # noqa: E402
from inpaintbench.reporting.statistics import summary_value  # noqa: E402
from inpaintbench.reporting.tables import HOLE_BIN_EDGES, hole_bin_labels  # noqa: E402

#: Marker per method family (registry group); diffusion samplers stand out as triangles.
MARKERS = {"diffusion": "^", "classical": "o", "feed-forward": "s", "gan": "D", "erosion": "P",
           "super-resolution": "v"}


def method_group(method_name: str) -> str:
    """The registry group of a method (``""`` for names the registry does not know)."""
    from inpaintbench.registry import method_registry

    try:
        return method_registry().entry(method_name).group or ""
    except Exception:  # noqa: BLE001 - a plugin no longer installed still gets plotted
        return ""


def _save(fig, out_path: Path) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def _colors(methods: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab20")
    return {m: cmap(i % 20) for i, m in enumerate(methods)}


def hole_size_plot(data: pd.DataFrame, methods: list[str], keys: list[str], out_path: Path, title: str) -> Path:
    """Each metric of ``keys`` per hole-size bin (x: bin centre), one line per method.

    ``data`` are ok records with a ``hole_bin`` column (:func:`inpaintbench.reporting.tables.binned`).
    """
    labels = hole_bin_labels()
    present = sorted(int(b) for b in data["hole_bin"].unique() if b >= 0)
    centres = [(HOLE_BIN_EDGES[b] + HOLE_BIN_EDGES[b + 1]) / 2 for b in present]
    keys = [k for k in keys if k in data and data[k].notna().any()]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False)
    colors = _colors(methods)
    for ax, key in zip(axes[0], keys):
        info = metric_info(key)
        for method in methods:
            mine = data[data["method"] == method]
            ys = [summary_value(mine.loc[mine["hole_bin"] == b, key], key) for b in present]
            group = method_group(str(mine["method_name"].iloc[0])) if len(mine) and "method_name" in mine else ""
            ax.plot(centres, ys, marker=MARKERS.get(group, "o"), ms=4, lw=1, color=colors[method], label=method)
        ax.set_xticks(centres, [labels[b] for b in present], fontsize=7)
        ax.set_xlabel("hole fraction of the image (bin)")
        ax.set_ylabel(f"{info.title} {info.arrow}" + (" (PSNR of mean MSE)" if info.unit == "dB" else ""))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    counts = data.groupby("hole_bin")["sample_id"].nunique()
    fig.suptitle(f"{title}: by hole size (images per bin: "
                 + ", ".join(f"{labels[b]} {counts[b]}" for b in present) + ")", fontsize=8)
    fig.tight_layout()
    return _save(fig, out_path)


def pareto_front(cost: np.ndarray, quality: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Bool mask of the points no other point beats on both cost (lower) and quality.

    Example:
        >>> pareto_front(np.array([1.0, 2.0, 3.0]), np.array([0.3, 0.1, 0.2]), False).tolist()
        [True, True, False]
    """
    cost, quality = np.asarray(cost, float), np.asarray(quality, float)
    q = -quality if higher_is_better else quality  # lower is better for both now
    keep = np.zeros(len(cost), dtype=bool)
    ok = ~(np.isnan(cost) | np.isnan(q))
    for i in np.flatnonzero(ok):
        dominated = ok & (cost <= cost[i]) & (q <= q[i]) & ((cost < cost[i]) | (q < q[i]))
        keep[i] = not dominated.any()
    return keep


def compute_points(frame: pd.DataFrame, ids: list[str], methods: list[str]) -> pd.DataFrame:
    """One row per method on images ``ids``: time per image, NFE (0 without a network),
    LPIPS and PSNR summaries, registry group."""
    ok = frame[(frame["status"] == "ok") & frame["sample_id"].astype(str).isin(set(ids))]
    rows = []
    for method in methods:
        mine = ok[ok["method"] == method]
        if mine.empty:
            continue
        nfe = mine["nfe"].mean() if "nfe" in mine and mine["nfe"].notna().any() else 0.0
        rows.append({"method": method, "group": method_group(str(mine["method_name"].iloc[0])),
                     "time_s": float(mine["time_s"].mean()), "nfe": float(nfe),
                     "lpips": summary_value(mine["lpips"], "lpips") if "lpips" in mine else math.nan,
                     "psnr": summary_value(mine["psnr"], "psnr")})
    return pd.DataFrame(rows)


def compute_plot(points: pd.DataFrame, out_path: Path, title: str) -> Path | None:
    """LPIPS and PSNR (rows) against time per image and NFE (columns), Pareto fronts marked.

    None when no quality metric has values.
    """
    keys = [k for k in ("lpips", "psnr") if k in points and points[k].notna().any()]
    if points.empty or not keys:
        return None
    costs = [("time_s", "time per image (s, log)"), ("nfe", "network evaluations per image (NFE, symlog; 0 = none)")]
    fig, axes = plt.subplots(len(keys), 2, figsize=(11, 3.9 * len(keys)), squeeze=False)
    colors = _colors(list(points["method"]))
    for r, key in enumerate(keys):
        info = metric_info(key)
        for c, (cost, xlabel) in enumerate(costs):
            ax = axes[r][c]
            x = points[cost].to_numpy(float)
            y = points[key].to_numpy(float)
            y_plot = np.where(np.isinf(y), np.nan, y)
            front = pareto_front(x, y, info.higher_is_better)
            for i, row in enumerate(points.itertuples()):
                ax.scatter(x[i], y_plot[i], marker=MARKERS.get(row.group, "o"), s=42 if front[i] else 22,
                           color=colors[row.method], edgecolors="black" if front[i] else "none", zorder=3)
                ax.annotate(row.method, (x[i], y_plot[i]), fontsize=6, xytext=(3, 2), textcoords="offset points")
            order = np.argsort(x[front])
            fx, fy = x[front][order], y_plot[front][order]
            ax.step(fx, fy, where="post", color="black", lw=0.8, alpha=0.6, zorder=2, label="Pareto front")
            if cost == "time_s":
                ax.set_xscale("log")
            else:
                ax.set_xscale("symlog", linthresh=1)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel(f"{info.title} {info.arrow}", fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, loc="best")
    handles = [plt.Line2D([], [], marker=m, ls="", color="grey", label=g) for g, m in MARKERS.items()
               if g in set(points["group"])]
    if handles:
        fig.legend(handles=handles, fontsize=7, loc="upper right", title="family", title_fontsize=7)
    fig.suptitle(f"{title}: quality against compute (outlined: on the Pareto front)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.92, 0.97))
    return _save(fig, out_path)
