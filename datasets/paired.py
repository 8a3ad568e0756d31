"""Images with their own masks: ``<root>/images/<stem>.*`` paired with ``<root>/masks/<stem>.*``.

This is the layout of MI-GAN's examples (``ffhq_256_freeform``, ``places2_256_freeform``...):
an image and its mask share a file stem (``images/12.png`` + ``masks/12.png``,
``images/Places365_val_00000262.jpg`` + ``masks/Places365_val_00000262.png``) and are told
apart by the folder they sit in.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import Sample

from inpaintbench.core.image_files import (
    MASK_POLARITIES,
    image_mode,
    image_to_tensor,
    list_image_files,
    mask_from_image,
    open_image,
    resize_and_crop,
    select_range,
)


class PairedFolder(Dataset):
    """Image + mask pairs from ``root/images`` and ``root/masks`` (matched by file stem).

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        mask_polarity: what white means in the mask files: ``"white-known"`` (MI-GAN, RePaint;
            the default) or ``"white-hole"``. Masks are converted to True = hole here.
        size: ``None`` keeps the files' size, and an image whose mask has another size is an
            error; an int resizes both to a short side of ``size`` (image bicubic, mask
            nearest-neighbour) and centre-crops both to ``size x size`` (image and mask must
            then share an aspect ratio).
        start: index (in sorted order) of the first pair used.
        limit: use at most ``limit`` pairs from ``start`` (``None``: the rest).
        channels: 1 loads images as grey, 3 (default) as RGB.
        image_dir, mask_dir: the sub-folder names.

    Items are :class:`~inpaintbench.core.images.Sample` with ``image`` float32 ``[C, H, W]`` in
    ``[0, 1]``, ``sample_id`` the shared stem and ``mask`` bool ``[1, H, W]`` (True = hole,
    binarised at 50 %). Masks without an image are ignored.

    Raises:
        InputError: missing folders, an image without a mask (named), several masks for one
            image, an image/mask size mismatch with ``size=None`` (named), unreadable files.
    """

    def __init__(self, root: str | os.PathLike, mask_polarity: str = "white-known", size: int | None = None,
                 start: int = 0, limit: int | None = None, channels: int = 3, image_dir: str = "images",
                 mask_dir: str = "masks"):
        if mask_polarity not in MASK_POLARITIES:
            raise InputError(f"PairedFolder mask_polarity must be one of {MASK_POLARITIES}, got {mask_polarity!r}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InputError(f"PairedFolder size must be a positive int or None, got {size!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise InputError(f"paired folder {self.root} does not exist or is not a directory")
        images = list_image_files(self.root / image_dir, what="paired image folder")
        masks_by_stem: dict[str, list[Path]] = {}
        for path in list_image_files(self.root / mask_dir, what="paired mask folder"):
            masks_by_stem.setdefault(path.stem, []).append(path)
        self.pairs: list[tuple[str, Path, Path]] = []
        for image in images:
            found = masks_by_stem.get(image.stem, [])
            if not found:
                raise InputError(f"image {image} has no mask: expected {self.root / mask_dir / image.stem}.<png|jpg>")
            if len(found) > 1:
                raise InputError(f"image {image} has several masks {[str(p) for p in found]}; keep one")
            self.pairs.append((image.stem, image, found[0]))
        self.pairs = select_range(self.pairs, start, limit, f"paired folder {self.root}")
        self.mask_polarity = mask_polarity
        self.size = size
        self.mode = image_mode(channels)

    def __len__(self) -> int:
        return len(self.pairs)

    def sample_id(self, index: int) -> str:
        """The id of item ``index`` without reading its files."""
        return self.pairs[index][0]

    def __getitem__(self, index: int) -> Sample:
        from torchvision.transforms import InterpolationMode

        stem, image_path, mask_path = self.pairs[index]
        image = open_image(image_path, self.mode)
        mask_image = open_image(mask_path, "L")
        if self.size is None:
            if mask_image.size != image.size:
                raise InputError(
                    f"mask {mask_path} is {mask_image.size[0]}x{mask_image.size[1]} but image {image_path} is "
                    f"{image.size[0]}x{image.size[1]} (width x height); pass size= to resize both"
                )
        else:
            (iw, ih), (mw, mh) = image.size, mask_image.size
            if iw * mh != mw * ih:  # resizing both would silently misalign them
                raise InputError(
                    f"mask {mask_path} ({mw}x{mh}) and image {image_path} ({iw}x{ih}) have different "
                    "aspect ratios, so they cannot be resized onto each other"
                )
            image = resize_and_crop(image, self.size, InterpolationMode.BICUBIC)
            mask_image = resize_and_crop(mask_image, self.size, InterpolationMode.NEAREST)
        width, height = image.size
        mask = mask_from_image(mask_image, self.mask_polarity)
        return Sample(image_to_tensor(image), stem, mask.reshape(1, height, width))
