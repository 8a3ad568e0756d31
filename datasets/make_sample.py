"""Make ``datasets/data/mnist_test_256.npz``, the MNIST sample shipped in the package.

Run from the repository root with an existing MNIST copy (torchvision layout, ``MNIST/raw``)::

    python -m inpaintbench.datasets.make_sample --root ../shared/data

The file holds one array, ``images``: uint8 ``[count, 28, 28]``, the first ``count`` digits of
the official MNIST test set in order (white digit on black), saved with
:func:`numpy.savez_compressed`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from .mnist import MNISTDataset

#: The shipped file, beside this module (the package data of ``inpaintbench.datasets``).
SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "mnist_test_256.npz"


def make_sample(root: str | os.PathLike, out: str | os.PathLike = SAMPLE_PATH, count: int = 256) -> Path:
    """Write the first ``count`` MNIST test digits under ``root`` to ``out`` and return ``out``.

    ``images`` is uint8 ``[count, 28, 28]`` in ``0..255``: MNISTDataset's ``[0, 1]`` floats
    times 255, which restores the original bytes exactly.
    """
    test = MNISTDataset(root=root, split="test", limit=count)
    images = test.images[:, 0].mul(255.0).round().to(torch.uint8).numpy()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--root`` (folder holding MNIST/raw), ``--out``, ``--count``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder holding MNIST/raw (e.g. ../shared/data)")
    parser.add_argument("--out", default=str(SAMPLE_PATH), help="output .npz (default: the shipped file)")
    parser.add_argument("--count", type=int, default=256, help="number of test digits (default 256)")
    args = parser.parse_args(argv)
    path = make_sample(args.root, args.out, args.count)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
