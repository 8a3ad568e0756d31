"""The MNIST sample shipped inside the package: runs the default benchmark with no download."""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch
from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import Sample

#: Package-data file holding ``images``: uint8 ``[256, 28, 28]`` (see ``data/README.md``).
SAMPLE_FILE = "mnist_test_256.npz"


class EmbeddedMNIST(Dataset):
    """The first 256 MNIST test digits as ``[1, 28, 28]`` float32 images in ``[0, 1]``.

    Read from the package data (``inpaintbench/datasets/data/mnist_test_256.npz``) through
    :mod:`importlib.resources`, so it works from an installed wheel. Sample ids are
    ``"mnist-test-<index>"``, identical to :class:`~inpaintbench.datasets.mnist.MNISTDataset`
    with ``split="test"``, so results on the sample line up with results on full MNIST.

    Args:
        limit: keep only the first ``limit`` digits (``None``: all 256).
    """

    def __init__(self, limit: int | None = None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InputError(f"EmbeddedMNIST limit must be a positive int or None, got {limit!r}")
        source = resources.files("inpaintbench.datasets").joinpath("data").joinpath(SAMPLE_FILE)
        with source.open("rb") as handle, np.load(handle) as archive:
            images = archive["images"]
        if limit is not None:
            images = images[:limit]
        self.images = torch.from_numpy(images).unsqueeze(1).to(torch.float32).div_(255.0)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"EmbeddedMNIST index {index} out of range for {len(self)} digits")
        index = index % len(self)
        return Sample(self.images[index], f"mnist-test-{index}")
