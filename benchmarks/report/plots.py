"""Leaderboard plots: metric against hole size, quality against compute (Pareto front), and the
comparison grid of example images.

Matplotlib and pandas are imported inside the functions that need them: importing this module
must not cost every command that touches the reports their import time. Figures are drawn on
Matplotlib's Agg canvas directly (:func:`agg_subplots`), never through pyplot, so no backend
is chosen, no window can open and no global figure list has to be closed. The comparison grid
is one composed image (:func:`compose_grid`), not one Matplotlib axes per image.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from inpaintbench.core.io import atomic_write
from inpaintbench.metrics.table import metric_info
from inpaintbench.report.statistics import summary_value
from inpaintbench.report.tables import HOLE_BIN_EDGES, hole_bin_labels

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: Marker per method family (registry group); diffusion samplers stand out as triangles.
MARKERS = {"diffusion": "^", "classical": "o", "feed-forward": "s", "gan": "D", "erosion": "P",
           "super-resolution": "v"}


def method_group(method_name: str) -> str:
    """The registry group of a method (``""`` for names the registry does not know)."""
    from inpaintbench.core.registry import method_registry

    try:
        return method_registry().entry(method_name).group or ""
    except Exception:  # noqa: BLE001 - a plugin no longer installed still gets plotted
        return ""


def agg_subplots(nrows: int, ncols: int, **figure_kw: Any) -> tuple[Figure, np.ndarray]:
    """A Matplotlib figure on the Agg canvas and its axes, like ``plt.subplots(..., squeeze=False)``.

    Args:
        nrows, ncols: the axes grid (>= 1 each).
        figure_kw: :class:`matplotlib.figure.Figure` arguments (``figsize`` in inches, ``dpi``).

    Returns:
        the figure and an object array of axes of shape ``[nrows, ncols]``. Save it with
        ``fig.savefig``; nothing needs closing (the figure is garbage once unreferenced).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**figure_kw)
    FigureCanvasAgg(fig)  # the canvas savefig and tight_layout render with: Agg, whatever the default backend
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig: Figure, out_path: Path) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    return out_path


def _colors(methods: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {m: cmap(i % 20) for i, m in enumerate(methods)}


def hole_size_plot(data: pd.DataFrame, methods: list[str], keys: list[str], out_path: Path, title: str) -> Path:
    """Each metric of ``keys`` per hole-size bin (x: bin centre), one line per method.

    ``data`` are ok records with a ``hole_bin`` column (:func:`inpaintbench.report.tables.binned`).
    """
    labels = hole_bin_labels()
    present = sorted(int(b) for b in data["hole_bin"].unique() if b >= 0)
    centres = [(HOLE_BIN_EDGES[b] + HOLE_BIN_EDGES[b + 1]) / 2 for b in present]
    keys = [k for k in keys if k in data and data[k].notna().any()]
    fig, axes = agg_subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8))
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
    width, height = fig.get_size_inches()
    title = fit_title(f"{title}: by hole size (images per bin: "
                      + ", ".join(f"{labels[b]} {counts[b]}" for b in present) + ")", width, 8)
    fig.suptitle(title, fontsize=8)
    # Fixed margins (inches) instead of tight_layout, which drew every figure twice: the legend
    # (about 1.5 in) right of the last axes, the wrapped title above.
    fig.subplots_adjust(left=0.75 / width, right=1 - 1.6 / width, bottom=0.6 / height,
                        top=1 - (0.2 + 0.16 * title.count("\n") + 0.25) / height, wspace=0.3)
    return _save(fig, out_path)


def fit_title(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points.

    A line holds ``width_in * 72 / (0.6 * fontsize)`` characters: 0.6 em is wider than the
    average glyph of Matplotlib's DejaVu Sans, so a wrapped title is never cut at the edges.

    Example:
        >>> fit_title("a b c", 0.1, 10)
        'a\nb\nc'
    """
    import textwrap

    return "\n".join(textwrap.wrap(text, max(1, int(width_in * 72 / (0.6 * fontsize))),
                                   break_long_words=False, break_on_hyphens=False)) or text


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
    import pandas as pd

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
    """The headline quality metric (LPIPS, else PSNR when no LPIPS was computed) against time per
    image (log axis), Pareto front marked; each point is labelled with its method and, for
    network methods, its NFE.

    One panel: drawing an axis (its log ticks and labels) is most of a report's time, and the
    tables beside the figure give the other metric and the NFE (the equal-NFE comparison is
    ``report --budgets``).

    None when no quality metric has values.
    """
    keys = [k for k in ("lpips", "psnr") if k in points and points[k].notna().any()]
    if points.empty or not keys:
        return None
    key, info = keys[0], metric_info(keys[0])
    fig, axes = agg_subplots(1, 1, figsize=(8.5, 4.6))
    ax = axes[0][0]
    methods = list(points["method"])
    colors = _colors(methods)
    markers = [MARKERS.get(group, "o") for group in points["group"]]
    x = points["time_s"].to_numpy(float)
    y = points[key].to_numpy(float)
    y_plot = np.where(np.isinf(y), np.nan, y)
    front = pareto_front(x, y, info.higher_is_better)
    # One scatter per marker (family), not one per point: each call is a collection to draw.
    for marker in dict.fromkeys(markers):
        pick = [i for i, m in enumerate(markers) if m == marker]
        ax.scatter(x[pick], y_plot[pick], marker=marker, s=np.where(front[pick], 42, 22),
                   c=[colors[methods[i]] for i in pick], zorder=3,
                   edgecolors=["black" if front[i] else "none" for i in pick])
    for i, (method, nfe) in enumerate(zip(methods, points["nfe"])):
        label = f"{method} ({nfe:.0f} NFE)" if nfe > 0 else method
        ax.annotate(label, (x[i], y_plot[i]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    order = np.argsort(x[front])
    ax.step(x[front][order], y_plot[front][order], where="post", color="black", lw=0.8, alpha=0.6, zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("time per image (s, log)", fontsize=8)
    ax.set_ylabel(f"{info.title} {info.arrow}", fontsize=8)
    ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    # One legend for the figure (families and the front): a per-axes legend at loc="best" made
    # Matplotlib try every position against every point, the figure's largest cost.
    handles = [Line2D([], [], marker=m, ls="", color="grey", label=g) for g, m in MARKERS.items()
               if g in set(points["group"])]
    handles.append(Line2D([], [], color="black", lw=0.8, alpha=0.6, label="Pareto front"))
    fig.legend(handles=handles, fontsize=7, loc="upper right", title="family", title_fontsize=7)
    width, height = fig.get_size_inches()
    title = fit_title(f"{title}: quality against time (outlined: on the Pareto front)", width - 2.4, 9)
    fig.suptitle(title, x=(width - 1.2) / 2 / width, fontsize=9)  # centred left of the legend
    fig.subplots_adjust(left=0.8 / width, right=1 - 1.35 / width, bottom=0.55 / height,
                        top=1 - (0.3 + 0.17 * title.count("\n") + 0.25) / height)
    return _save(fig, out_path)


# --- the comparison grid: one composed image ---------------------------------------------------

#: Images are upscaled by an integer factor (nearest neighbour) until a tile is at least this
#: many pixels on its longer side: a 28x28 digit becomes 112x112 and stays crisp. Larger
#: images are shown at their own size (never downscaled, which would alias).
GRID_MIN_TILE = 96
#: Pixels of separator between neighbouring tiles (and around the block of tiles).
GRID_GAP = 3
#: Grey of the separators: it sets off both a white mask tile and a black background image.
GRID_SEPARATOR = 150
#: Grey of an empty tile (no output for that image); it carries the words :data:`GRID_EMPTY_TEXT`.
GRID_EMPTY = 225
GRID_EMPTY_TEXT = "no output"
_PAGE = 255  # margins (title, column titles, row labels)
_INK = 0
_TITLE_PX, _LABEL_PX, _EMPTY_PX = 14, 12, 11  # font sizes
_PAD = 6  # pixels around text blocks
# Column titles may break after these characters (method labels: ``ddpm-paste{a=1}[strength=0.5]``).
_BREAKS = re.compile(r"[^\s\-_\[\]{}(),=/.]*[\s\-_\[\]{}(),=/.]?")


@dataclass(frozen=True)
class GridLayout:
    """Where everything of a :func:`compose_grid` picture lies (pixels, ``(y, x)`` / ``(height, width)``).

    Attributes:
        columns: column titles, left to right.
        rows: row labels (sample ids), top to bottom.
        scale: the integer upscaling factor of an image of the grid's base size.
        tile: ``(height, width)`` of every tile: the base size times ``scale``.
        origin: top-left pixel of tile ``(0, 0)``.
        gap: separator between neighbouring tiles (and around the block of tiles).
        size: ``(height, width)`` of the whole picture.
        title_lines, column_lines, row_lines: the title, each column title and each row label
            as wrapped lines.
    """

    columns: tuple[str, ...]
    rows: tuple[str, ...]
    scale: int
    tile: tuple[int, int]
    origin: tuple[int, int]
    gap: int
    size: tuple[int, int]
    title_lines: tuple[str, ...]
    column_lines: tuple[tuple[str, ...], ...]
    row_lines: tuple[tuple[str, ...], ...]

    def box(self, row: int, col: int) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of tile ``(row, col)`` in the picture (0-based indices)."""
        y = self.origin[0] + row * (self.tile[0] + self.gap)
        x = self.origin[1] + col * (self.tile[1] + self.gap)
        return slice(y, y + self.tile[0]), slice(x, x + self.tile[1])

    @property
    def block(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the block of tiles with its separators."""
        y, x = self.origin[0] - self.gap, self.origin[1] - self.gap
        return (slice(y, y + len(self.rows) * (self.tile[0] + self.gap) + self.gap),
                slice(x, x + len(self.columns) * (self.tile[1] + self.gap) + self.gap))


@lru_cache(maxsize=None)
def _font(size: int):
    from PIL import ImageFont

    try:  # Pillow >= 10.1 bundles a scalable font; no font file has to exist on the machine
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # older Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _line_height(font) -> int:
    return int(font.getbbox("Ag|")[3]) + 3


def _wrap(text: str, font, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels, broken after punctuation where possible."""
    lines, line = [], ""
    for token in (t for t in _BREAKS.findall(text) if t):
        if line and font.getlength((line + token).rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += token
        while len(line) > 1 and font.getlength(line.rstrip()) > width:  # one token wider than a tile
            cut = 1
            while cut < len(line) - 1 and font.getlength(line[:cut + 1]) <= width:
                cut += 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def grid_layout(rows: Sequence[str], columns: Sequence[str], title: str, image_size: tuple[int, int], *,
                min_tile: int = GRID_MIN_TILE, gap: int = GRID_GAP) -> GridLayout:
    """The layout :func:`compose_grid` draws for ``rows`` x ``columns`` images of ``image_size``.

    Args:
        rows, columns: row labels and column titles.
        title: the line above everything.
        image_size: ``(height, width)`` of the largest image (pixels, >= 1 each).
        min_tile: the tile's longer side is at least this many pixels: ``scale`` is the smallest
            integer reaching it (1 for images already that large: never downscaled).
        gap: separator width in pixels.
    """
    base_h, base_w = (max(1, int(v)) for v in image_size)
    scale = max(1, math.ceil(min_tile / max(base_h, base_w)))
    th, tw = base_h * scale, base_w * scale
    title_font, label_font = _font(_TITLE_PX), _font(_LABEL_PX)
    heads = tuple(tuple(_wrap(c, label_font, tw)) for c in columns)
    label_w = min(200, max((math.ceil(label_font.getlength(r)) for r in rows), default=0))
    labels = tuple(tuple(_wrap(r, label_font, label_w)) if label_w else ("",) for r in rows)
    left = label_w + 2 * _PAD if label_w else _PAD
    width = left + len(columns) * (tw + gap) + gap + _PAD
    titles = tuple(_wrap(title, title_font, width - 2 * _PAD))
    head_h = max((len(h) for h in heads), default=0) * _line_height(label_font)
    top = _PAD + len(titles) * _line_height(title_font) + _PAD + head_h + 2
    height = top + len(rows) * (th + gap) + gap + _PAD
    return GridLayout(tuple(columns), tuple(rows), scale, (th, tw), (top + gap, left + gap), gap, (height, width),
                      titles, heads, labels)


def _tile(image: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """A ``[C, h, w]`` uint8 (or bool) image as a ``[height, width, channels]`` tile, nearest neighbour."""
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = image[None]
    # Index arrays: an exact integer repeat when the tile is a multiple of the image (the usual case).
    ys = np.arange(height) * image.shape[1] // height
    xs = np.arange(width) * image.shape[2] // width
    out = image[:, ys][:, :, xs].transpose(1, 2, 0)
    return np.broadcast_to(out, (height, width, channels)) if out.shape[2] != channels else out


def compose_grid(rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[np.ndarray | None]],
                 title: str, *, min_tile: int = GRID_MIN_TILE, gap: int = GRID_GAP) -> tuple[np.ndarray, GridLayout]:
    """Tile images into one picture: a title, column titles, row labels and a block of tiles.

    Args:
        rows: one label per row (drawn left of the row, wrapped at 200 pixels).
        columns: one title per column (drawn above it, wrapped to the tile width).
        cells: ``cells[r][c]`` is a uint8 ``[C, h, w]`` image (C = 1 or 3, values 0-255; a bool
            image is drawn as 0 / 255) or None for an empty tile (grey :data:`GRID_EMPTY`,
            marked "no output"). Every image is resized by nearest neighbour to one tile size:
            the largest ``h`` and ``w`` among the cells times the integer scale of
            :func:`grid_layout`, so an image of that size is repeated pixel for pixel.
        title: the line above everything (wrapped when wider than the picture).
        min_tile, gap: see :func:`grid_layout` (pixels).

    Returns:
        the picture, uint8 ``[H, W, C]`` with ``C = 3`` when any cell is a colour image, else 1,
        and its :class:`GridLayout` (``picture[layout.box(r, c)]`` is the tile of ``cells[r][c]``).
    """
    from PIL import Image, ImageDraw

    if len(cells) != len(rows) or any(len(row) != len(columns) for row in cells):
        raise ValueError(f"cells must be {len(rows)} rows of {len(columns)} images")
    images = [np.asarray(c) for row in cells for c in row if c is not None]
    size = (max((i.shape[-2] for i in images), default=1), max((i.shape[-1] for i in images), default=1))
    channels = 3 if any(i.ndim == 3 and i.shape[0] == 3 for i in images) else 1
    layout = grid_layout(rows, columns, title, size, min_tile=min_tile, gap=gap)
    th, tw = layout.tile

    canvas = np.full((*layout.size, channels), _PAGE, dtype=np.uint8)
    canvas[layout.block] = GRID_SEPARATOR
    empty = []
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            box = layout.box(r, c)
            if image is None:
                canvas[box] = GRID_EMPTY
                empty.append(box)
            else:
                canvas[box] = _tile(image, th, tw, channels)

    # Text goes in the margins only (and on the empty tiles): every image tile keeps its exact pixels.
    picture = Image.fromarray(np.ascontiguousarray(canvas[:, :, 0]) if channels == 1 else canvas)
    draw = ImageDraw.Draw(picture)

    def write(lines, font, x0: float, y: float, width: float | None, shade: int) -> None:
        for line in lines:  # each line centred in [x0, x0 + width], or left-aligned at x0
            x = x0 + (width - font.getlength(line)) / 2 if width is not None else x0
            draw.text((x, y), line, fill=shade if channels == 1 else (shade,) * 3, font=font)
            y += _line_height(font)

    title_font, label_font, empty_font = _font(_TITLE_PX), _font(_LABEL_PX), _font(_EMPTY_PX)
    write(layout.title_lines, title_font, 0, _PAD, layout.size[1], _INK)
    top = layout.origin[0] - gap - 2
    for c, lines in enumerate(layout.column_lines):  # bottom-aligned on the tiles
        write(lines, label_font, layout.box(0, c)[1].start, top - len(lines) * _line_height(label_font), tw, _INK)
    for r, lines in enumerate(layout.row_lines):  # vertically centred on the row
        ys = layout.box(r, 0)[0]
        write(lines, label_font, _PAD, ys.start + (th - len(lines) * _line_height(label_font)) / 2, None, _INK)
    note = _wrap(GRID_EMPTY_TEXT, empty_font, tw - 4)
    for ys, xs in empty:
        write(note, empty_font, xs.start, ys.start + (th - len(note) * _line_height(empty_font)) / 2, tw, 110)
    out = np.asarray(picture)
    return (out[:, :, None] if out.ndim == 2 else out), layout


def save_png(image: np.ndarray, out_path: Path) -> Path:
    """Write a uint8 ``[H, W, C]`` (C = 1 or 3) or ``[H, W]`` picture as a PNG, atomically."""
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return atomic_write(out_path, buffer.getvalue())
