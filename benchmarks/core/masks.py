"""Mask families: seeded generators of hole masks.

Every family is a callable ``family(n, h, w, *, generator) -> bool [n, 1, h, w]`` with
**True = hole** (the :class:`inpaintbench.core.method.MaskFamily` protocol). Its constructor keyword
arguments are its whole configuration (also exposed as ``family.config``); its only source of
randomness is the ``torch.Generator`` it is called with, so the runner's per-sample generator
(suite seed + sample id) gives the same masks on any machine. Families that draw with
numpy/OpenCV take one numpy seed per mask from that generator.

Sizes are expressed relative to the image (fractions of the short side, area ratios), so
the same family works on 28x28 MNIST and on 256x256 faces. Masks are returned on the CPU.

The families:

* :class:`BoxMask`, :class:`FixedBoxMask`, :class:`RandomBoxes` -- axis-aligned rectangles;
* :class:`RandomPixelMask` -- independent missing pixels (DPS's and DiffPIR's "random" masks);
* :class:`StrokeMask` -- LaMa's free-form strokes (presets ``thin``, ``medium``, ``thick``)
  and RePaint's ``Wide`` / ``Narrow`` test masks (``repaint-wide``, ``repaint-narrow``);
* RePaint's fixed masks: :class:`SuperResolveMask`, :class:`AlternatingLinesMask`,
  :class:`HalfMask`, :class:`ExpandMask`;
* :class:`DiscMask` -- a centred disc;
* :class:`FileMasks` -- masks read from image files;
* :class:`DatasetMasks` -- a marker: use each sample's own mask (paired datasets).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.image_files import MASK_POLARITIES, list_image_files, read_mask_file


def _check_request(n: int, h: int, w: int, generator: torch.Generator) -> None:
    """Raise :class:`InputError` unless ``n, h, w`` are positive ints and ``generator`` is one."""
    for what, value in (("n", n), ("h", h), ("w", w)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"mask {what} must be a positive int, got {value!r}")
    if not isinstance(generator, torch.Generator):
        raise InputError(
            f"mask families need an explicit torch.Generator (generator=...), got {type(generator).__name__}"
        )


def _draw_ints(generator: torch.Generator, high: int, count: int) -> list[int]:
    """``count`` ints uniform in ``[0, high)`` from ``generator`` (on whatever device it lives)."""
    return torch.randint(high, (count,), generator=generator, device=generator.device).tolist()


def _numpy_rngs(generator: torch.Generator, count: int) -> list[np.random.Generator]:
    """One numpy generator per mask, seeded from ``generator`` so torch drives all randomness."""
    return [np.random.default_rng(seed) for seed in _draw_ints(generator, 2**62, count)]


def _check_fraction(what: str, value: float, *, allow_zero: bool = False, allow_one: bool = True) -> float:
    lo_ok = value >= 0 if allow_zero else value > 0
    hi_ok = value <= 1 if allow_one else value < 1
    if not (isinstance(value, (int, float)) and lo_ok and hi_ok):
        lo = "[0" if allow_zero else "(0"
        hi = "1]" if allow_one else "1)"
        raise InputError(f"{what} must be a number in {lo}, {hi}, got {value!r}")
    return float(value)


class _Family:
    """Shared plumbing: ``name``, ``config``, argument checks, stacking per-mask arrays."""

    name: str = "mask"

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    def __call__(self, n: int, h: int, w: int, *, generator: torch.Generator) -> torch.Tensor:
        """``n`` masks of ``h x w`` pixels: bool ``[n, 1, h, w]`` on the CPU, True = hole."""
        _check_request(n, h, w, generator)
        mask = self._generate(int(n), int(h), int(w), generator)
        return mask.reshape(int(n), 1, int(h), int(w))

    def _generate(self, n: int, h: int, w: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


def _repeat(mask_hw: torch.Tensor, n: int) -> torch.Tensor:
    """The same ``[h, w]`` bool mask for every one of ``n`` samples, as ``[n, 1, h, w]``."""
    return mask_hw.expand(n, 1, *mask_hw.shape).clone()


# --------------------------------------------------------------------------- boxes


class BoxMask(_Family):
    """One axis-aligned box covering ``area_ratio`` of the image, at a uniform random position.

    The box has the image's aspect ratio: ``round(h * sqrt(area_ratio)) x round(w * sqrt(area_ratio))``
    pixels (at least 1x1), so the hole fraction is ``area_ratio`` up to rounding on any size.

    Args:
        area_ratio: hole area / image area, in ``(0, 1]``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = BoxMask(area_ratio=0.25)(2, 64, 64, generator=g)
        >>> m.shape, m.dtype, m[0].float().mean().item()
        (torch.Size([2, 1, 64, 64]), torch.bool, 0.25)
    """

    name = "box"

    def __init__(self, area_ratio: float = 0.25):
        super().__init__(area_ratio=_check_fraction("BoxMask area_ratio", area_ratio))

    def _generate(self, n, h, w, generator):
        side = math.sqrt(self.config["area_ratio"])
        bh, bw = max(1, round(h * side)), max(1, round(w * side))
        tops = _draw_ints(generator, h - bh + 1, n)
        lefts = _draw_ints(generator, w - bw + 1, n)
        mask = torch.zeros(n, h, w, dtype=torch.bool)
        for i, (top, left) in enumerate(zip(tops, lefts)):
            mask[i, top : top + bh, left : left + bw] = True
        return mask


class FixedBoxMask(_Family):
    """A box of fixed side at a uniform random position inside a margin (DPS's and DiffPIR's box).

    DPS's ``mask_generator`` (``util/img_utils.py``, ``mask_type="box"``; DiffPIR copies it) cuts a
    ``128 x 128`` box of a 256 image with its top-left corner ``np.random.randint(16, 256 - 16 - 128)``
    per axis: rows/columns ``16..111`` (the upper bound is exclusive, so the box ends at least 17
    pixels from the bottom/right border). Sizes are fractions of the image side: at ``h x w`` the box is
    ``round(h * size) x round(w * size)`` and the corner is uniform in
    ``[round(h * margin), h - round(h * margin) - box_h)`` (at least one position).

    Args:
        size: box side / image side, in ``(0, 1]`` (DPS: 128 / 256 = 0.5).
        margin: least distance of the box's top-left corner from the border, as a fraction of the
            side, in ``[0, 1)`` (DPS: 16 / 256 = 0.0625).
    """

    name = "fixed-box"

    def __init__(self, size: float = 0.5, margin: float = 0.0625):
        size = _check_fraction("FixedBoxMask size", size)
        margin = _check_fraction("FixedBoxMask margin", margin, allow_zero=True, allow_one=False)
        super().__init__(size=size, margin=margin)

    def _generate(self, n, h, w, generator):
        size, margin = self.config["size"], self.config["margin"]
        mask = torch.zeros(n, h, w, dtype=torch.bool)
        (bh, top_lo, top_hi), (bw, left_lo, left_hi) = (_box_range(extent, size, margin) for extent in (h, w))
        tops = [top_lo + t for t in _draw_ints(generator, top_hi - top_lo, n)]
        lefts = [left_lo + t for t in _draw_ints(generator, left_hi - left_lo, n)]
        for i, (top, left) in enumerate(zip(tops, lefts)):
            mask[i, top : top + bh, left : left + bw] = True
        return mask


def _box_range(extent: int, size: float, margin: float) -> tuple[int, int, int]:
    """``(side, lo, hi)``: the box side in pixels and the corner's range ``[lo, hi)`` on one axis."""
    side = min(extent, max(1, round(extent * size)))
    lo = round(extent * margin)
    hi = extent - lo - side
    if hi <= lo:  # no room inside the margin: keep the box centred-ish and on the image
        lo = min(lo, extent - side)
        hi = lo + 1
    return side, lo, hi


class RandomPixelMask(_Family):
    """Independent missing pixels: an exact count drawn without replacement (DPS's "random" masks).

    DPS's ``mask_generator`` (``mask_type="random"``) draws a hole fraction ``p`` uniform in
    ``mask_prob_range`` per image, then masks ``int(h * w * p)`` distinct pixels (all channels).
    Here ``fraction`` alone fixes ``p`` (DiffPIR's script: ``mask_prob_range = [0.5, 0.5]``);
    ``max_fraction`` makes ``p`` uniform in ``[fraction, max_fraction]`` per mask (DPS's config:
    ``[0.3, 0.7]``). The count is ``int(h * w * p)`` as in the official code, so the hole fraction is
    exact up to one pixel.

    Args:
        fraction: hole fraction (or the low end of its range), in ``[0, 1]``.
        max_fraction: the high end of the range, in ``[fraction, 1]``; None: ``fraction`` exactly.
    """

    name = "random-pixels"

    def __init__(self, fraction: float = 0.5, max_fraction: float | None = None):
        fraction = _check_fraction("RandomPixelMask fraction", fraction, allow_zero=True)
        config: dict[str, Any] = {"fraction": fraction}
        if max_fraction is not None:
            max_fraction = _check_fraction("RandomPixelMask max_fraction", max_fraction, allow_zero=True)
            if max_fraction < fraction:
                raise InputError(f"RandomPixelMask max_fraction {max_fraction} is smaller than fraction {fraction}")
            config["max_fraction"] = max_fraction
        super().__init__(**config)

    def _generate(self, n, h, w, generator):
        low = self.config["fraction"]
        high = self.config.get("max_fraction", low)
        masks = []
        for rng in _numpy_rngs(generator, n):
            p = rng.uniform(low, high) if high > low else low
            hole = np.zeros(h * w, dtype=bool)
            hole[rng.choice(h * w, int(h * w * p), replace=False)] = True
            masks.append(hole.reshape(h, w))
        return torch.from_numpy(np.stack(masks))


def _draw_boxes(rng: np.random.Generator, h: int, w: int, min_boxes: int, max_boxes: int,
                min_size: float, max_size: float, margin: float) -> np.ndarray:
    """LaMa's random rectangles: ``min_boxes..max_boxes`` boxes, each side a uniform fraction
    in ``[min_size, max_size)`` of the short side, kept ``margin`` (fraction of the short side)
    away from the border. Returns uint8 ``[h, w]``, 1 = hole."""
    short = min(h, w)
    margin_px = int(margin * short)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(min_boxes, max_boxes + 1))):
        sizes = []
        for extent in (h, w):
            room = max(1, extent - 2 * margin_px)
            lo = min(max(1, int(min_size * short)), room)
            hi = min(max(lo + 1, int(max_size * short)), room + 1)
            sizes.append(int(rng.integers(lo, hi)) if hi > lo else lo)
        bh, bw = sizes
        top = int(rng.integers(margin_px, max(margin_px, h - margin_px - bh) + 1))
        left = int(rng.integers(margin_px, max(margin_px, w - margin_px - bw) + 1))
        mask[top : top + bh, left : left + bw] = 1
    return mask


class RandomBoxes(_Family):
    """Several random axis-aligned boxes (LaMa's rectangle generator).

    Args:
        min_boxes, max_boxes: the number of boxes is uniform in ``[min_boxes, max_boxes]``.
        min_size, max_size: each box side is uniform in ``[min_size, max_size)`` times the
            image's short side. Defaults: LaMa's ``thick`` boxes (30..150 px at 256).
        margin: minimum distance of a box from the border, as a fraction of the short side.
    """

    name = "random-boxes"

    def __init__(self, min_boxes: int = 1, max_boxes: int = 3, min_size: float = 30 / 256,
                 max_size: float = 150 / 256, margin: float = 10 / 256):
        if not (isinstance(min_boxes, int) and isinstance(max_boxes, int) and 1 <= min_boxes <= max_boxes):
            raise InputError(f"RandomBoxes needs ints 1 <= min_boxes <= max_boxes, got {min_boxes!r}, {max_boxes!r}")
        _check_fraction("RandomBoxes min_size", min_size)
        _check_fraction("RandomBoxes max_size", max_size)
        if min_size > max_size:
            raise InputError(f"RandomBoxes min_size {min_size} is larger than max_size {max_size}")
        _check_fraction("RandomBoxes margin", margin, allow_zero=True, allow_one=False)
        super().__init__(min_boxes=min_boxes, max_boxes=max_boxes, min_size=float(min_size),
                         max_size=float(max_size), margin=float(margin))

    def _generate(self, n, h, w, generator):
        masks = [_draw_boxes(rng, h, w, **self.config) for rng in _numpy_rngs(generator, n)]
        return torch.from_numpy(np.stack(masks)).bool()


# --------------------------------------------------------------------------- strokes


@dataclasses.dataclass(frozen=True)
class StrokeParams:
    """Parameters of LaMa's free-form stroke generator, relative to the image's short side.

    A mask is ``strokes`` random walks (count uniform in ``[min_strokes, max_strokes]``); each
    walk starts at a uniform pixel and draws ``1..max_segments`` straight segments with round
    caps. A segment's direction is ``k + 0.01`` radians with ``k`` uniform in
    ``{0, ..., max_angle - 1}`` (LaMa's few integer-radian directions, mirrored on every other
    walk), its length uniform in ``[min_length, max_length)`` and its width uniform in
    ``[min_width, max_width)`` of the short side. With probability ``box_probability`` the
    mask is instead LaMa's random boxes (``box_*`` fields, see :class:`RandomBoxes`). Masks
    whose hole fraction exceeds ``max_hole_fraction`` are redrawn (LaMa's
    ``max_tamper_area``); 100 rejections in a row are an :class:`InputError`.
    """

    min_strokes: int
    max_strokes: int
    min_length: float
    max_length: float
    min_width: float
    max_width: float
    max_segments: int = 5
    max_angle: int = 4
    box_probability: float = 0.0
    box_min_boxes: int = 1
    box_max_boxes: int = 3
    box_min_size: float = 30 / 256
    box_max_size: float = 150 / 256
    box_margin: float = 10 / 256
    max_hole_fraction: float = 0.5


# LaMa's evaluation configs (configs/data_gen/random_{thin,medium,thick}_256.yaml), pixel
# values divided by 256. LaMa draws an irregular mask with weight 1 and boxes with weight
# 0.3, i.e. boxes with probability 0.3 / 1.3.
_LAMA_THIN = StrokeParams(min_strokes=4, max_strokes=50, min_length=10 / 256, max_length=50 / 256,
                          min_width=5 / 256, max_width=15 / 256)
_LAMA_MEDIUM = StrokeParams(min_strokes=4, max_strokes=5, min_length=10 / 256, max_length=110 / 256,
                            min_width=5 / 256, max_width=55 / 256, box_probability=0.3 / 1.3,
                            box_min_boxes=1, box_max_boxes=5, box_min_size=10 / 256,
                            box_max_size=50 / 256, box_margin=0.0)
_LAMA_THICK = StrokeParams(min_strokes=1, max_strokes=5, min_length=10 / 256, max_length=210 / 256,
                           min_width=5 / 256, max_width=105 / 256, box_probability=0.3 / 1.3)

#: Named parameter sets of :class:`StrokeMask`. RePaint's "Wide" and "Narrow" test masks
#: were made with LaMa's thick and thin 256 configs; their presets are kept as separate
#: names so that a re-tuning of one never silently changes the other.
STROKE_PRESETS: dict[str, StrokeParams] = {
    "thin": _LAMA_THIN,
    "medium": _LAMA_MEDIUM,
    "thick": _LAMA_THICK,
    "repaint-wide": _LAMA_THICK,
    "repaint-narrow": _LAMA_THIN,
}


def _draw_strokes(rng: np.random.Generator, h: int, w: int, p: StrokeParams) -> np.ndarray:
    """One LaMa stroke mask (see :class:`StrokeParams`): uint8 ``[h, w]``, 1 = hole."""
    short = min(h, w)
    mask = np.zeros((h, w), np.uint8)
    for stroke in range(int(rng.integers(p.min_strokes, p.max_strokes + 1))):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        segments = 1 + int(rng.integers(p.max_segments))
        angles = 0.01 + rng.integers(p.max_angle, size=segments)
        if stroke % 2 == 0:  # LaMa mirrors every other walk, so strokes lean both ways
            angles = 2 * math.pi - angles
        lengths = np.floor(short * rng.uniform(p.min_length, p.max_length, size=segments))
        widths = np.maximum(1, np.floor(short * rng.uniform(p.min_width, p.max_width, size=segments)))
        for angle, length, width in zip(angles.tolist(), lengths.tolist(), widths.astype(int).tolist()):
            # the end may sit on the far border (w, h), as in LaMa; cv2 clips the drawing
            x_end = min(max(int(x + length * math.sin(angle)), 0), w)
            y_end = min(max(int(y + length * math.cos(angle)), 0), h)
            cv2.line(mask, (x, y), (x_end, y_end), 1, width)
            x, y = x_end, y_end
    return mask


def _draw_stroke_mask(rng: np.random.Generator, h: int, w: int, p: StrokeParams) -> np.ndarray:
    """Strokes or boxes, redrawn while the hole fraction exceeds ``p.max_hole_fraction``."""
    for _ in range(100):
        if p.box_probability > 0 and rng.random() < p.box_probability:
            mask = _draw_boxes(rng, h, w, p.box_min_boxes, p.box_max_boxes, p.box_min_size,
                               p.box_max_size, p.box_margin)
        else:
            mask = _draw_strokes(rng, h, w, p)
        if mask.mean() <= p.max_hole_fraction:
            return mask
    raise InputError(
        f"StrokeMask drew 100 masks in a row with more than max_hole_fraction={p.max_hole_fraction} "
        f"of the {h}x{w} image missing; use fewer/thinner strokes or a larger max_hole_fraction"
    )


class StrokeMask(_Family):
    """LaMa-style free-form strokes: random walks of thick line segments.

    Args:
        preset: one of :data:`STROKE_PRESETS` -- ``"thin"``, ``"medium"``, ``"thick"`` (LaMa's
            evaluation masks) or ``"repaint-wide"`` / ``"repaint-narrow"`` (RePaint's "Wide" and
            "Narrow" test masks; hole-area mean and spread match RePaint's files).
        **overrides: any :class:`StrokeParams` field, replacing the preset's value.

    Hole fractions at 256x256 (mean +- std over 4,800 masks): ``thick``/``repaint-wide``
    0.267 +- 0.128 (RePaint's 100 ``thick`` files: 0.249 +- 0.127), ``thin``/``repaint-narrow``
    0.282 +- 0.128 (RePaint's ``thin``: 0.297 +- 0.123), ``medium`` 0.219 +- 0.122.

    Raises:
        InputError: unknown preset or parameter, inconsistent parameters; at call time,
            parameters that keep exceeding ``max_hole_fraction``.
    """

    name = "strokes"

    def __init__(self, preset: str = "medium", **overrides: Any):
        if preset not in STROKE_PRESETS:
            raise InputError(f"unknown stroke preset {preset!r}; choose one of {sorted(STROKE_PRESETS)}")
        known = {f.name for f in dataclasses.fields(StrokeParams)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(f"unknown StrokeMask parameter(s) {unknown}; valid ones: {sorted(known)}")
        params = dataclasses.replace(STROKE_PRESETS[preset], **overrides)
        if not 1 <= params.min_strokes <= params.max_strokes:
            raise InputError(f"StrokeMask needs 1 <= min_strokes <= max_strokes, got {params.min_strokes}, {params.max_strokes}")
        if not 0 < params.min_length <= params.max_length or not 0 < params.min_width <= params.max_width:
            raise InputError("StrokeMask needs 0 < min_length <= max_length and 0 < min_width <= max_width")
        if params.max_segments < 1 or params.max_angle < 1:
            raise InputError("StrokeMask needs max_segments >= 1 and max_angle >= 1")
        _check_fraction("StrokeMask box_probability", params.box_probability, allow_zero=True)
        _check_fraction("StrokeMask max_hole_fraction", params.max_hole_fraction)
        self.params = params
        super().__init__(preset=preset, **overrides)

    def _generate(self, n, h, w, generator):
        masks = [_draw_stroke_mask(rng, h, w, self.params) for rng in _numpy_rngs(generator, n)]
        return torch.from_numpy(np.stack(masks)).bool()


# --------------------------------------------------------------------------- RePaint's fixed masks


class SuperResolveMask(_Family):
    """RePaint's "Super-Resolve": one known pixel per ``scale x scale`` cell, the rest missing.

    The known pixel sits at offset ``(scale // 2, scale // 2)`` inside each cell; for
    ``scale=2`` that is odd rows and odd columns, exactly RePaint's ``nn2`` file (hole
    fraction 3/4). The generator is not used.
    """

    name = "super-resolve"

    def __init__(self, scale: int = 2):
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise InputError(f"SuperResolveMask scale must be an int >= 2, got {scale!r}")
        super().__init__(scale=scale)

    def _generate(self, n, h, w, generator):
        s = self.config["scale"]
        known = torch.zeros(h, w, dtype=torch.bool)
        known[s // 2 :: s, s // 2 :: s] = True
        return _repeat(~known, n)


class AlternatingLinesMask(_Family):
    """RePaint's "Alternating Lines": every even row (0, 2, 4, ...) missing, odd rows known.

    Reproduces RePaint's ``ev2li`` file (hole fraction 1/2 at even heights). The generator is
    not used.
    """

    name = "alternating-lines"

    def __init__(self):
        super().__init__()

    def _generate(self, n, h, w, generator):
        hole = torch.zeros(h, w, dtype=torch.bool)
        hole[0::2] = True
        return _repeat(hole, n)


class HalfMask(_Family):
    """RePaint's "Half": one half of the image missing.

    Args:
        side: the missing half, ``"right"`` (RePaint's ``genhalf``: columns ``w//2..w-1``),
            ``"left"``, ``"top"`` or ``"bottom"``. With an odd size the missing half takes the
            middle row/column. The generator is not used.
    """

    name = "half"
    SIDES = ("left", "right", "top", "bottom")

    def __init__(self, side: str = "right"):
        if side not in self.SIDES:
            raise InputError(f"HalfMask side must be one of {self.SIDES}, got {side!r}")
        super().__init__(side=side)

    def _generate(self, n, h, w, generator):
        hole = torch.zeros(h, w, dtype=torch.bool)
        side = self.config["side"]
        if side == "right":
            hole[:, w // 2 :] = True
        elif side == "left":
            hole[:, : w - w // 2] = True
        elif side == "bottom":
            hole[h // 2 :] = True
        else:
            hole[: h - h // 2] = True
        return _repeat(hole, n)


class ExpandMask(_Family):
    """RePaint's "Expand": only a centred rectangle is known, everything around it missing.

    Args:
        known_fraction: the known rectangle's side as a fraction of the image's side (per
            axis). The default 0.25 is RePaint's ``ex64``: the centre 64x64 of 256x256 known
            (rows/columns 96..159), i.e. 1/16 of the area known, hole fraction 0.9375.
            The generator is not used.
    """

    name = "expand"

    def __init__(self, known_fraction: float = 0.25):
        super().__init__(known_fraction=_check_fraction("ExpandMask known_fraction", known_fraction, allow_one=False))

    def _generate(self, n, h, w, generator):
        f = self.config["known_fraction"]
        kh, kw = max(1, round(h * f)), max(1, round(w * f))
        top, left = (h - kh) // 2, (w - kw) // 2
        hole = torch.ones(h, w, dtype=torch.bool)
        hole[top : top + kh, left : left + kw] = False
        return _repeat(hole, n)


# --------------------------------------------------------------------------- disc


class DiscMask(_Family):
    """A centred disc of missing pixels.

    Args:
        radius_fraction: radius as a fraction of half the short side (1.0: the disc touches
            the short sides), in ``(0, 1]``. A pixel is a hole when its centre lies within the
            radius of the image centre. The generator is not used.
    """

    name = "disc"

    def __init__(self, radius_fraction: float = 0.5):
        super().__init__(radius_fraction=_check_fraction("DiscMask radius_fraction", radius_fraction))

    def _generate(self, n, h, w, generator):
        radius = self.config["radius_fraction"] * min(h, w) / 2
        ys = torch.arange(h, dtype=torch.float64) - (h - 1) / 2
        xs = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
        hole = ys[:, None] ** 2 + xs[None, :] ** 2 <= radius**2
        return _repeat(hole, n)


# --------------------------------------------------------------------------- masks from files


# (mask files are read by inpaintbench.core.image_files)


class FileMasks(_Family):
    """Masks read from a folder of image files (PNG/JPEG), one file chosen per mask.

    Args:
        folder: directory of mask images (searched non-recursively unless ``recursive``).
        polarity: ``"white-known"`` (RePaint and MI-GAN files) or ``"white-hole"``.
        recursive: also search sub-folders.
        match: ``"random"`` (default): each mask picks a file uniformly with the generator (so
            a sample's seed fixes its file). ``"sample"``: the sample's own file, the one whose
            stem is the sample id's last component (RePaint's protocol: image ``000042`` gets
            mask ``000042``); a folder of a single file gives that file to every sample.

    Files are listed once, in sorted order; each is read with :func:`read_mask_file`
    (nearest-neighbour resize to ``(h, w)``, 50 % threshold) and converted to True = hole.

    Raises:
        InputError: missing folder, a folder with no image files, an unreadable file.
    """

    name = "files"

    def __init__(self, folder: str | os.PathLike, polarity: str = "white-known", recursive: bool = False,
                 match: str = "random"):
        if polarity not in MASK_POLARITIES:
            raise InputError(f"FileMasks polarity must be one of {MASK_POLARITIES}, got {polarity!r}")
        if match not in ("random", "sample"):
            raise InputError(f"FileMasks match must be 'random' or 'sample', got {match!r}")
        self.files: list[Path] = list_image_files(folder, recursive=recursive, what="mask folder")
        super().__init__(folder=str(folder), polarity=polarity, recursive=recursive,
                         **({"match": match} if match != "random" else {}))
        self.by_stem = {p.stem: p for p in self.files}

    @property
    def per_sample(self) -> bool:
        """True when the mask depends on the sample id (``match="sample"``), not on a seed."""
        return self.config.get("match") == "sample"

    def for_sample(self, sample_id: str, h: int, w: int) -> torch.Tensor:
        """The mask of one sample under ``match="sample"``: bool ``[1, 1, h, w]``, True = hole."""
        if len(self.files) == 1:
            path = self.files[0]
        else:
            stem = sample_id.rsplit("/", 1)[-1]
            if stem not in self.by_stem:
                raise InputError(f"mask folder {self.config['folder']} has no mask for sample {sample_id!r} "
                                 f"(expected {stem}.png or .jpg there)")
            path = self.by_stem[stem]
        return read_mask_file(path, h, w, self.config["polarity"])[None, None]

    def _generate(self, n, h, w, generator):
        picks = _draw_ints(generator, len(self.files), n)
        return torch.stack([read_mask_file(self.files[i], h, w, self.config["polarity"]) for i in picks])


class DatasetMasks(_Family):
    """Marker family: use each sample's own mask (``Sample.mask``) from a paired dataset.

    The runner recognises this family and passes the dataset's masks through; calling it
    directly is an error, because it has no masks of its own.
    """

    name = "dataset"

    def __init__(self):
        super().__init__()

    def _generate(self, n, h, w, generator):
        raise InputError(
            "the 'dataset' mask family has no masks of its own: it means 'use each sample's own "
            "mask (Sample.mask)' and only works with a paired dataset such as 'paired' "
            "(image + mask folders); pick another mask family for this dataset"
        )


def mixed_masks(families: Sequence[Callable[..., torch.Tensor]], n: int, h: int, w: int, *,
                generator: torch.Generator) -> torch.Tensor:
    """Masks for ``n`` images, each image's family drawn uniformly from ``families``.

    The one way training code mixes mask families (LaMa-style, mask predictor, GAN).

    Args:
        families: mask families (``family(n, h, w, generator=g) -> bool [n, 1, h, w]``).
        n, h, w: number of masks and their size in pixels.
        generator: draws each image's family, then the masks family by family, in order.

    Returns:
        bool ``[n, 1, h, w]`` on the generator's device, True = hole.
    """
    if not families:
        raise InputError("mixed_masks needs at least one mask family")
    device = generator.device
    choice = torch.randint(len(families), (n,), generator=generator, device=device)
    masks = torch.zeros((n, 1, h, w), dtype=torch.bool, device=device)
    for k, family in enumerate(families):
        rows = (choice == k).nonzero(as_tuple=True)[0]
        if len(rows):
            masks[rows] = family(len(rows), h, w, generator=generator).to(device)
    return masks
