"""CelebA aligned faces (Liu et al. 2015) at a small square size.

Two layouts are read:

* **a plain split folder** (the shared copy: ``ROOT/train/*.jpg``, ``ROOT/val/*.jpg``; ``ROOT``
  may also be a folder holding ``celeba/`` such as ``../shared/data``);
* **torchvision's layout** for users who downloaded CelebA (``torchvision.datasets.CelebA``):
  ``ROOT/celeba/img_align_celeba/*.jpg`` and the official split file
  ``ROOT/celeba/list_eval_partition.txt`` (0 = train, 1 = valid, 2 = test). ``split="val"``
  reads partition 1.

Preprocessing is the usual one of 64x64 CelebA work (DCGAN, DDPM/DDIM CelebA-64): a centre
crop of ``crop x crop`` (140) of the 178x218 aligned image, then a bicubic, antialiased resize
to ``size x size``.
"""

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
    select_range,
)

#: The official partition numbers of ``list_eval_partition.txt``.
PARTITIONS = {"train": 0, "val": 1, "valid": 1, "test": 2}
#: Environment variable naming the CelebA root when ``root`` is not given.
CELEBA_ROOT_ENV = "INPAINTBENCH_CELEBA_ROOT"


def _split_files(root: Path, split: str) -> list[Path]:
    for base in (root, root / "celeba"):
        if (base / split).is_dir():
            return list_image_files(base / split, what=f"CelebA {split} folder")
    tv = root / "celeba" if (root / "celeba" / "img_align_celeba").is_dir() else root
    images, partition = tv / "img_align_celeba", tv / "list_eval_partition.txt"
    if images.is_dir() and partition.is_file():
        wanted = PARTITIONS[split]
        names = []
        for line in partition.read_text().split("\n"):
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) == wanted:
                names.append(parts[0])
        return [images / name for name in sorted(names)]
    raise InputError(
        f"no CelebA {split!r} images under {root}: expected {root / split}/*.jpg (a plain split folder, "
        f"e.g. ../shared/data/celeba) or torchvision's layout {root}/celeba/img_align_celeba + "
        "list_eval_partition.txt (torchvision.datasets.CelebA(root, download=True) when online)"
    )


class CelebA(Dataset):
    """CelebA faces as float32 ``[3, size, size]`` images in ``[0, 1]``.

    Args:
        root: a plain split folder or torchvision's layout (see the module docstring);
            default ``$INPAINTBENCH_CELEBA_ROOT``.
        split: ``"train"``, ``"val"`` (torchvision's ``"valid"``) or ``"test"``.
        size: output side in pixels, after the centre crop.
        crop: side of the centre crop taken from the 178x218 aligned image (140, the usual).
        start: index of the first image of the split (sorted by file name) to use.
        limit: at most this many images from ``start`` (None: the rest of the split).
        channels: 3 (RGB, default) or 1 (grey, ITU-R 601 luma).

    Sample ids are ``"celeba/<file stem>"`` (the official image number), the same for both
    layouts, so results and seeds agree whichever copy a user holds.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "val", size: int = 64,
                 crop: int = 140, start: int = 0, limit: int | None = None, channels: int = 3):
        if split not in PARTITIONS:
            raise InputError(f"CelebA split must be one of {sorted(PARTITIONS)}, got {split!r}")
        for name, value, low in (("size", size, 1), ("crop", crop, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"CelebA {name} must be an int >= {low}, got {value!r}")
        root = root if root is not None else os.environ.get(CELEBA_ROOT_ENV)
        if root is None:
            raise InputError(f"CelebA needs a data root: pass root=... (e.g. ../shared/data/celeba) "
                             f"or set ${CELEBA_ROOT_ENV}")
        files = _split_files(Path(root).expanduser(), "val" if split == "valid" else split)
        self.files = select_range(files, start, limit, f"CelebA {split!r}")
        self.size, self.crop, self.mode = size, crop, image_mode(channels)

    def __len__(self) -> int:
        return len(self.files)

    def sample_id(self, index: int) -> str:
        """The id of item ``index`` without reading its image."""
        return f"celeba/{self.files[index].stem}"

    def __getitem__(self, index: int) -> Sample:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        path = self.files[index]
        image = TF.center_crop(open_image(path, self.mode), self.crop)
        image = TF.resize(image, [self.size, self.size], interpolation=InterpolationMode.BICUBIC, antialias=True)
        return Sample(image_to_tensor(image).clamp_(0.0, 1.0), self.sample_id(index))
