"""Real photographs without a download: the colour photographs scikit-image ships in its wheel.

scikit-image (a core dependency) bundles a few sample images inside ``skimage/data``; the
four colour photographs among them are free to use, as their docstrings in
:mod:`skimage.data` state:

========== =================== ========================================================== ===========
sample id  file                what, by whom                                              licence
========== =================== ========================================================== ===========
astronaut  ``astronaut.png``   Eileen Collins, NASA portrait (NASA Great Images)          public domain
chelsea    ``chelsea.png``     Chelsea the cat, photograph by Stefan van der Walt         CC0
coffee     ``coffee.png``      a coffee cup on wood, photograph by Rachel Michetti        CC0
rocket     ``rocket.jpg``      Falcon 9 launching DSCOVR, SpaceX                          public domain
========== =================== ========================================================== ===========

The other bundled pictures are grey, synthetic, microscopy or astronomy images (camera,
coins, moon, text, ihc, hubble_deep_field, ...), and the rest of ``skimage.data`` is fetched
with pooch on first use: neither is used here, so this dataset never downloads.

The files are read straight from the installed package's folder (found without importing
scikit-image) and identified by content: each file's SHA-256 is pinned below (the values of
scikit-image's own registry, the same in 0.22 to 0.26), so a scikit-image that ships a
different picture under the same name is refused instead of silently changing results.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inpaintbench.core.errors import InputError
from inpaintbench.core.identity import file_sha256
from inpaintbench.core.image_files import image_mode, select_range
from inpaintbench.datasets.folder import ImageFolder

#: ``sample id -> (file in skimage/data, its SHA-256)``, in the dataset's order.
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    "chelsea": ("chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    "coffee": ("coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    "rocket": ("rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
}


def skimage_data_folder() -> Path:
    """The ``data`` folder of the installed scikit-image (found without importing it).

    Raises:
        InputError: scikit-image is not installed.
    """
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("dataset 'photos' reads the photographs scikit-image ships, but scikit-image is not "
                         "installed: pip install scikit-image")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _checked_file(folder: Path, name: str, sha256: str) -> Path:
    """``folder / name`` after checking it exists and holds the pinned content."""
    path = folder / name
    if not path.is_file():
        raise InputError(f"dataset 'photos': {path} is missing; reinstall scikit-image (pip install --force-reinstall "
                         "scikit-image) or leave the dataset out (--datasets mnist-sample)")
    digest = file_sha256(path)
    if digest != sha256:
        raise InputError(f"dataset 'photos': {path} is not the picture these results are keyed on (sha256 "
                         f"{digest[:12]}..., expected {sha256[:12]}...); install scikit-image 0.22-0.26 or leave "
                         "the dataset out (--datasets mnist-sample)")
    return path


class Photos(ImageFolder):
    """scikit-image's four free colour photographs (see the module docstring), as square images:
    an :class:`~inpaintbench.datasets.folder.ImageFolder` over the pinned files (its items, ids
    and reading), whose files are named by :data:`PHOTOS` rather than listed from a folder.

    Args:
        size: each photograph is resized (bicubic, antialiased) so its short side is ``size``
            pixels, then centre-cropped to ``size x size`` (the same preprocessing as
            :class:`~inpaintbench.datasets.folder.ImageFolder`).
        channels: 3 (RGB, default) or 1 (grey, ITU-R 601 luma).
        start: index of the first photograph (in the order of :data:`PHOTOS`) to use.
        limit: use at most ``limit`` photographs from ``start`` (``None``: the rest).

    Items are :class:`~inpaintbench.core.images.Sample` with ``image`` float32
    ``[channels, size, size]`` in ``[0, 1]``, ``sample_id`` the picture's name in
    :mod:`skimage.data` (``"astronaut"``, ...), the same at every size, and no mask.

    Raises:
        InputError: bad ``size``/``channels``/``start``/``limit``, scikit-image missing, or a
            bundled file missing or with other content than pinned (named).
    """

    def __init__(self, size: int = 256, channels: int = 3, start: int = 0, limit: int | None = None):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InputError(f"dataset 'photos' size must be a positive int, got {size!r}")
        self.size = size
        self.mode = image_mode(channels)
        self.sample_ids = select_range(list(PHOTOS), start, limit, "dataset 'photos'")
        folder = skimage_data_folder()
        self.files = [_checked_file(folder, *PHOTOS[name]) for name in self.sample_ids]
