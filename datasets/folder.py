"""Images from a folder of PNG/JPEG files, and the file helpers other loaders share."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from inpaintbench.api import InputError, Sample

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
    three equal channels and colour files become ``"L"`` by ITU-R 601 luma.

    Raises:
        InputError: the file is missing or cannot be decoded as an image (named).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode)
    except (OSError, UnidentifiedImageError, ValueError) as err:
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


class ImageFolder(Dataset):
    """Every PNG/JPEG file under ``root``, as square images.

    Args:
        root: the folder.
        size: each image is resized (bicubic, antialiased) so its short side is ``size``
            pixels, then centre-cropped to ``size x size``. ``None`` keeps each file's size.
        limit: keep only the first ``limit`` files in sorted order (``None``: all).
        grayscale: load as 1-channel ``"L"``; otherwise every file (grey, RGBA, palette) is
            converted to 3-channel RGB.
        recursive: also read sub-folders.

    Items are :class:`~inpaintbench.api.Sample` with ``image`` float32 ``[C, size, size]`` in
    ``[0, 1]``, ``sample_id`` the file's path relative to ``root`` without suffix (POSIX
    separators, e.g. ``"faces/0001"``) and no mask.

    Raises:
        InputError: missing root, no image file, two files with the same id (e.g. ``a.png``
            and ``a.jpg``), bad ``size``/``limit``; reading an item raises it for an
            unreadable file, naming it.
    """

    def __init__(self, root: str | os.PathLike, size: int | None = 256, limit: int | None = None,
                 grayscale: bool = False, recursive: bool = False):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InputError(f"ImageFolder size must be a positive int or None, got {size!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InputError(f"ImageFolder limit must be a positive int or None, got {limit!r}")
        self.root = Path(root).expanduser()
        files = list_image_files(self.root, recursive=recursive)
        self.files = files if limit is None else files[:limit]
        self.sample_ids = [p.relative_to(self.root).with_suffix("").as_posix() for p in self.files]
        duplicates = sorted({i for i in self.sample_ids if self.sample_ids.count(i) > 1})
        if duplicates:
            raise InputError(f"image folder {self.root} has several files per sample id {duplicates} "
                             "(same name, different suffix); ids must be unique")
        self.size = size
        self.mode = "L" if grayscale else "RGB"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        from torchvision.transforms import InterpolationMode

        image = open_image(self.files[index], self.mode)
        if self.size is not None:
            image = resize_and_crop(image, self.size, InterpolationMode.BICUBIC)
        return Sample(image_to_tensor(image), self.sample_ids[index])
