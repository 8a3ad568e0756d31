"""The code behind ``setup = {name = {...}}`` and ``skip_if = "name"`` in ``cases.toml``.

A setup is ``name(ctx, **arguments)``: it makes the one bad input of a case (files in
``ctx.tmp``, a test method, a monkeypatched limit) before the command runs. ``ctx`` is the
:class:`Ctx` of ``conftest.py``. A skip condition is ``name() -> reason or None``.
"""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import numpy as np
import torch


# ----------------------------------------------------------------------------- setups

def test_methods(ctx) -> None:
    """``run`` and ``list`` also know the misbehaving methods of ``conftest.TEST_METHODS``."""
    ctx.use_test_methods()


def grey_images(ctx, folder: str = "imgs", n: int = 3, size: int = 28) -> None:
    """``n`` grey ``size`` x ``size`` PNGs ``0.png`` ... in ``tmp/folder``."""
    ctx.grey_images(ctx.tmp / folder, n=n, size=size)


def mask_files(ctx, white_fraction: float, folder: str = "masks", n: int = 3) -> None:
    """``n`` mask files whose first ``white_fraction`` of rows are white."""
    for i in range(n):
        ctx.mask_png(ctx.tmp / folder / f"{i}.png", white_fraction)


def paired(ctx, white_fractions: list[float]) -> None:
    """A ``paired`` dataset in ``tmp/paired``: grey images and one mask each."""
    root = ctx.tmp / "paired"
    ctx.grey_images(root / "images", n=len(white_fractions))
    for i, fraction in enumerate(white_fractions):
        ctx.mask_png(root / "masks" / f"{i}.png", fraction)


def control_character_name(ctx, folder: str = "imgs") -> None:
    """One black PNG whose file name holds a control character and a newline."""
    ctx.save_png(ctx.tmp / folder / "bad\x1fname\n.png", np.zeros((28, 28), dtype=np.uint8))


def max_image_pixels(ctx, limit: int) -> None:
    """PIL's decompression-bomb limit lowered to ``limit`` pixels: a warning above it, an
    error above twice it."""
    from PIL import Image

    ctx.monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)


class Evil:
    """Unpickling it creates a marker file: the proof that a loader executed code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(ctx, name: str) -> None:
    """A pickle, named ``tmp/name`` (e.g. ``*.safetensors``), that creates ``ctx.marker`` when
    it is unpickled."""
    (ctx.tmp / name).write_bytes(pickle.dumps({"features.0.weight": Evil(ctx.marker)}))


def read_only_folder(ctx, folder: str = "ro") -> None:
    """``tmp/folder`` without write permission (as root, where permissions do not stop a
    write, ``os.access`` answers for it as it would to a user); writable again at teardown."""
    ro = ctx.tmp / folder
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() == 0:
        real = os.access
        ctx.monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real(p, mode, **kw))
    ctx.finalizers.append(lambda: ro.chmod(0o700))


def full_disk_on_side_files(ctx) -> None:
    """Every ``.npz`` side file (examples, heat maps) hits a full disk half-way through."""
    def full(file, *args, **kwargs):
        if hasattr(file, "write"):
            file.write(b"PK\x03\x04half")
        else:
            Path(str(file)).write_bytes(b"PK\x03\x04half")
        raise OSError(errno.ENOSPC, "No space left on device")

    ctx.monkeypatch.setattr(np, "savez_compressed", full)


PLUGIN_SOURCE = """
from inpaintbench.api import Method

class Crashing(Method):
    def __init__(self, **config):
        raise ZeroDivisionError("plugin constructor exploded")

class Fine(Method):
    preserves_known = True
    def inpaint(self, image, mask, *, rng):
        return image
"""


def broken_plugins(ctx) -> None:
    """Five method plugins: a missing module, a module that raises on import, a constructor that
    raises, a fine one, and one that tries to replace the built-in ``telea``."""
    (ctx.tmp / "import_bomb.py").write_text("raise RuntimeError('plugin import exploded')\n")
    ctx.install_plugins(PLUGIN_SOURCE, **{"missing-module": "inpaintbench_no_such_plugin.mod:Thing",
                                          "import-bomb": "import_bomb:Thing",
                                          "crashing": "faulty_plugin:Crashing",
                                          "fine-plugin": "faulty_plugin:Fine",
                                          "telea": "faulty_plugin:Fine"})


# ----------------------------------------------------------------------------- skip conditions

def mps_available() -> str | None:
    """Apple's MPS backend is present (the case is about it being absent)."""
    return "this machine has MPS" if torch.backends.mps.is_available() else None
