"""Images from a folder of PNG/JPEG files."""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import Sample

from inpaintbench.core.image_files import (
    image_mode,
    image_to_tensor,
    list_image_files,
    open_image,
    resize_and_crop,
    select_range,
)


class ImageFolder(Dataset):
    """Every PNG/JPEG file under ``root``, as square images.

    Args:
        root: the folder.
        size: each image is resized (bicubic, antialiased) so its short side is ``size``
            pixels, then centre-cropped to ``size x size``. ``None`` keeps each file's size.
        start: index (in sorted order) of the first file used.
        limit: use at most ``limit`` files from ``start`` (``None``: the rest).
        channels: 1 loads every file as grey (ITU-R 601 luma); 3 (default) converts every file
            (grey, RGBA, palette) to RGB.
        recursive: also read sub-folders.

    Items are :class:`~inpaintbench.core.images.Sample` with ``image`` float32 ``[C, size, size]`` in
    ``[0, 1]``, ``sample_id`` the file's path relative to ``root`` without suffix (POSIX
    separators, e.g. ``"faces/0001"``) and no mask.

    Raises:
        InputError: missing root, no image file, two files with the same id (e.g. ``a.png``
            and ``a.jpg``), bad ``size``/``limit``; reading an item raises it for an
            unreadable file, naming it.
    """

    def __init__(self, root: str | os.PathLike, size: int | None = 256, start: int = 0, limit: int | None = None,
                 channels: int = 3, recursive: bool = False):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InputError(f"ImageFolder size must be a positive int or None, got {size!r}")
        self.root = Path(root).expanduser()
        files = list_image_files(self.root, recursive=recursive)
        self.files = select_range(files, start, limit, f"image folder {self.root}")
        self.sample_ids = [p.relative_to(self.root).with_suffix("").as_posix() for p in self.files]
        duplicates = sorted({i for i in self.sample_ids if self.sample_ids.count(i) > 1})
        if duplicates:
            raise InputError(f"image folder {self.root} has several files per sample id {duplicates} "
                             "(same name, different suffix); ids must be unique")
        self.size = size
        self.mode = image_mode(channels)

    def __len__(self) -> int:
        return len(self.files)

    def sample_id(self, index: int) -> str:
        """The id of item ``index`` without reading its image."""
        return self.sample_ids[index]

    def __getitem__(self, index: int) -> Sample:
        from torchvision.transforms import InterpolationMode

        image = open_image(self.files[index], self.mode)
        if self.size is not None:
            image = resize_and_crop(image, self.size, InterpolationMode.BICUBIC)
        return Sample(image_to_tensor(image), self.sample_ids[index])
