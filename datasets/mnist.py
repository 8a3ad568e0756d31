"""MNIST through torchvision's loader."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import Sample

from inpaintbench.core.image_files import select_range

#: Environment variable naming a folder that holds ``MNIST/raw`` (torchvision's layout).
MNIST_ROOT_ENV = "INPAINTBENCH_MNIST_ROOT"


class MNISTDataset(Dataset):
    """MNIST digits as ``[1, 28, 28]`` float32 images in ``[0, 1]`` (white digit on black).

    Args:
        root: folder containing ``MNIST/raw`` as torchvision lays it out. Defaults to
            ``$INPAINTBENCH_MNIST_ROOT``. With ``download=False`` the files must exist.
        split: ``"train"`` or ``"test"``.
        download: let torchvision download the files (needs internet).
        start: index of the first image used (evaluate any slice: ``start=5000, limit=1000``).
        limit: use at most ``limit`` images from ``start`` (``None``: the rest).
        channels: must be 1: MNIST is grey (an RGB model is not run on digits silently).

    Sample ids are ``"mnist-<split>-<index>"``.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "test",
                 download: bool = False, start: int = 0, limit: int | None = None, channels: int = 1):
        from torchvision.datasets import MNIST

        if channels != 1:
            raise InputError(f"MNIST is grey: channels must be 1, got {channels!r}")
        if split not in ("train", "test"):
            raise InputError(f"MNIST split must be 'train' or 'test', got {split!r}")
        root = root if root is not None else os.environ.get(MNIST_ROOT_ENV)
        if root is None:
            raise InputError(
                "MNIST needs a data root: pass root=... (a folder holding MNIST/raw), "
                f"set ${MNIST_ROOT_ENV}, or pass download=True to fetch it"
            )
        root = Path(root).expanduser()
        try:
            data = MNIST(str(root), train=split == "train", download=download)
        except RuntimeError as err:  # torchvision: "Dataset not found. You can use download=True"
            raise InputError(
                f"MNIST files not found under {root / 'MNIST' / 'raw'} ({err}); point root at a folder "
                "holding MNIST/raw (e.g. ../shared/data) or pass download=True when online"
            ) from err
        self.indices = select_range(list(range(len(data.data))), start, limit, f"MNIST {split}")
        self.images = data.data[self.indices[0]:self.indices[-1] + 1].unsqueeze(1).to(torch.float32).div_(255.0)
        self.split = split

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample_id(self, index: int) -> str:
        """The id of item ``index`` (its official index)."""
        return f"mnist-{self.split}-{self.indices[index]}"

    def __getitem__(self, index: int) -> Sample:
        # The id is the official index, so a slice's samples keep their seeds and records.
        return Sample(self.images[index], self.sample_id(index))
