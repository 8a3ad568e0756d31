"""The `photos` dataset: scikit-image's free colour photographs, read from its wheel (no download)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.registry import dataset_registry
from inpaintbench.datasets import photos as photos_module
from inpaintbench.datasets.photos import PHOTOS, Photos

IDS = ["astronaut", "chelsea", "coffee", "rocket"]


@pytest.fixture(scope="module")
def default_photos() -> list:
    data = dataset_registry().create("photos")
    return [data[i] for i in range(len(data))]


def test_default_items_are_rgb_256_float_images_in_unit_range(default_photos):
    assert [s.sample_id for s in default_photos] == IDS
    for sample in default_photos:
        assert sample.image.shape == (3, 256, 256) and sample.image.dtype == torch.float32
        assert sample.mask is None
        assert 0.0 <= float(sample.image.min()) and float(sample.image.max()) <= 1.0
        assert float(sample.image.std()) > 0.1  # a photograph, not a flat or black frame
        # colour, not grey copied three times
        assert float((sample.image[0] - sample.image[2]).abs().mean()) > 0.02


def test_pixels_are_the_skimage_pictures_centre_cropped(default_photos):
    """Oracle: scikit-image's own loader and resize (another resampling filter, so close, not equal)."""
    import skimage.data
    from skimage.transform import resize

    for sample in default_photos:
        pixels = getattr(skimage.data, sample.sample_id)().astype(np.float64) / 255.0
        h, w = pixels.shape[:2]
        scale = 256 / min(h, w)
        resized = resize(pixels, (round(h * scale), round(w * scale)), anti_aliasing=True)
        top, left = round((resized.shape[0] - 256) / 2), round((resized.shape[1] - 256) / 2)
        expected = torch.from_numpy(resized[top:top + 256, left:left + 256]).permute(2, 0, 1).float()
        error = float((sample.image - expected).abs().mean())
        assert error < 0.02, f"{sample.sample_id}: mean |difference| {error:.3f} from skimage's picture"


def test_ids_are_stable_across_sizes_channels_and_ranges():
    small = Photos(size=32, channels=1)
    assert [small.sample_id(i) for i in range(len(small))] == IDS
    assert [small[i].sample_id for i in range(len(small))] == IDS
    assert small[0].image.shape == (1, 32, 32)
    part = Photos(start=1, limit=2)
    assert [part[i].sample_id for i in range(len(part))] == ["chelsea", "coffee"]
    assert list(PHOTOS) == IDS  # the order is part of what the default run's shards hold


def test_reading_is_deterministic(default_photos):
    again = Photos()
    for index, sample in enumerate(default_photos):
        assert torch.equal(again[index].image, sample.image)


@pytest.mark.parametrize("options, words", [
    ({"size": 0}, "size must be a positive int"),
    ({"size": True}, "size must be a positive int"),
    ({"channels": 2}, "channels must be 1"),
    ({"start": 4}, "start=4 leaves none"),
    ({"limit": 0}, "limit must be a positive int"),
])
def test_bad_options_are_refused_in_one_line(options, words):
    with pytest.raises(InputError, match=words):
        Photos(**options)


def test_a_missing_or_changed_file_is_refused_not_downloaded(tmp_path, monkeypatch):
    folder = photos_module.skimage_data_folder()
    for name, _ in PHOTOS.values():
        shutil.copy(folder / name, tmp_path / name)
    monkeypatch.setattr(photos_module, "skimage_data_folder", lambda: tmp_path)
    assert len(Photos()) == 4  # the copies are accepted
    data = bytearray((tmp_path / "coffee.png").read_bytes())
    data[-20] ^= 0xFF
    (tmp_path / "coffee.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match="coffee.png is not the picture"):
        Photos()
    assert len(Photos(limit=2)) == 2  # only the photographs used are checked
    (tmp_path / "astronaut.png").unlink()
    with pytest.raises(InputError, match="astronaut.png is missing"):
        Photos()


def test_the_default_suite_runs_photos_beside_the_digits():
    from inpaintbench.harness.suite import load_suite

    suite = load_suite("default")
    assert [d.name for d in suite.datasets] == ["mnist-sample", "photos"]
    assert suite.datasets[0].config == {}  # the digits' specs (and so their unit hashes) as committed
    # a data root (flag or $INPAINTBENCH_DATA_ROOT) is for datasets read from disk, not the embedded ones
    rooted = suite.with_overrides(data_root="/data")
    assert [d.config for d in rooted.datasets] == [{}, {}]
    assert suite.with_overrides(dataset_options={"size": 64}).datasets[1].config == {"size": 64}
