"""Reading image and mask files: the one place that opens files for datasets and mask families."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from inpaintbench.core.errors import InputError

def image_mode(channels: int) -> str:
    """The PIL mode of ``channels`` (1: ``"L"``, 3: ``"RGB"``); :class:`InputError` otherwise."""
    if channels not in (1, 3) or isinstance(channels, bool):
        raise InputError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    return "L" if channels == 1 else "RGB"


def select_range(items: list, start: int, limit: int | None, what: str) -> list:
    """``items[start : start + limit]`` (``limit=None``: to the end), with the arguments checked:
    ``start`` an int >= 0, ``limit`` a positive int or None, and a non-empty result."""
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InputError(f"{what} start must be an int >= 0, got {start!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"{what} limit must be a positive int or None, got {limit!r}")
    chosen = items[start:None if limit is None else start + limit]
    if not chosen:
        raise InputError(f"{what} has {len(items)} items; start={start} leaves none")
    return chosen


#: File suffixes (lower case) read as images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_image_files(root: str | os.PathLike, *, recursive: bool = False, what: str = "image folder") -> list[Path]:
    """The image files under ``root`` (suffixes :data:`IMAGE_SUFFIXES`, any case), sorted by
    their path relative to ``root``.

    Raises:
        InputError: ``root`` is missing, not a directory, or holds no image file (the message
            names the folder and the suffixes searched).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"{what} {root} does not exist")
    if not root.is_dir():
        raise InputError(f"{what} {root} is not a directory")
    candidates = root.rglob("*") if recursive else root.iterdir()
    files = sorted(
        (p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        where = "or its sub-folders " if recursive else ""
        raise InputError(f"{what} {root} {where}holds no image files (searched {', '.join(IMAGE_SUFFIXES)})")
    return files


def open_image(path: str | os.PathLike, mode: str):
    """Open an image file and convert it to PIL ``mode`` (``"RGB"``, ``"L"``).

    Alpha is dropped (RGBA -> RGB keeps the colour channels), grey files become RGB with
    three equal channels and colour files become ``"L"`` by ITU-R 601 luma. 16-bit grey files
    (PIL modes ``I;16*`` / ``I``) are scaled to 8 bits (``round(v / 257)``), not clipped: a
    50 % grey stays 50 %. Files larger than PIL's ``Image.MAX_IMAGE_PIXELS`` are refused
    (a decompression bomb), PIL's warning included.

    Raises:
        InputError: the file is missing, too large, or cannot be decoded as an image (named).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                if image.mode.startswith("I;16") or image.mode == "I":
                    values = np.asarray(image).astype(np.float64)
                    if values.min() < 0 or values.max() > 65535:
                        raise InputError(f"image file {path} holds values outside 16 bits ({image.mode}); "
                                         "save it as 8- or 16-bit PNG")
                    image = Image.fromarray(np.round(values / 257.0).astype(np.uint8), "L")
                return image.convert(mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputError(f"image file {path} is too large to open safely: {err} (raise PIL.Image.MAX_IMAGE_PIXELS "
                         "only for files you trust)") from None
    except (OSError, UnidentifiedImageError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"cannot read image file {path}: {err}") from err


def resize_and_crop(image, size: int, resample):
    """Resize a PIL image so its short side is ``size`` pixels, then centre-crop ``size x size``.

    ``resample`` is a :class:`torchvision.transforms.InterpolationMode` (bicubic for photos,
    nearest for masks); the PIL backend antialiases when downscaling.
    """
    from torchvision.transforms import functional as TF

    return TF.center_crop(TF.resize(image, size, interpolation=resample), size)


def image_to_tensor(image) -> torch.Tensor:
    """A PIL ``"L"``/``"RGB"`` image as float32 ``[C, H, W]`` in ``[0, 1]`` (C = 1 or 3)."""
    from torchvision.transforms import functional as TF

    return TF.pil_to_tensor(image).to(torch.float32).div_(255.0)


MASK_POLARITIES = ("white-known", "white-hole")


def mask_from_image(image, polarity: str) -> torch.Tensor:
    """A PIL ``"L"`` mask image as bool ``[H, W]``, True = hole.

    Binarised at 50 % (``value >= 128`` is white); ``polarity`` says what white means in the
    file: ``"white-known"`` (RePaint, MI-GAN) or ``"white-hole"``.
    """
    if polarity not in MASK_POLARITIES:
        raise InputError(f"mask polarity must be one of {MASK_POLARITIES}, got {polarity!r}")
    white = torch.from_numpy(np.asarray(image) >= 128)
    return ~white if polarity == "white-known" else white


def read_mask_file(path: str | os.PathLike, h: int, w: int, polarity: str) -> torch.Tensor:
    """Read one mask image file as bool ``[h, w]``, True = hole.

    The file is converted to 8-bit grey, resized to ``(h, w)`` with nearest-neighbour and
    converted by :func:`mask_from_image` (50 % threshold, ``polarity``).

    Raises:
        InputError: unknown polarity, or a file that cannot be read as an image (named).
    """
    from PIL import Image

    image = open_image(path, "L")
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.NEAREST)
    return mask_from_image(image, polarity)
