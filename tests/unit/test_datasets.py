"""Dataset loaders: the embedded MNIST sample, image folders, paired image + mask folders."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintbench.core.errors import InputError
from inpaintbench.datasets.folder import ImageFolder
from inpaintbench.datasets.make_sample import make_sample
from inpaintbench.datasets.mnist import MNISTDataset
from inpaintbench.datasets.paired import PairedFolder
from inpaintbench.datasets.sample import EmbeddedMNIST
from inpaintbench.core.registry import dataset_registry

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def needs_shared(*parts: str):
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared/data not available)")


def save(path: Path, pixels: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return path


def stripes(h: int, w: int) -> np.ndarray:
    """RGB uint8 [h, w, 3]: red, green and blue vertical thirds."""
    pixels = np.zeros((h, w, 3), np.uint8)
    third = w // 3
    pixels[:, :third, 0] = 255
    pixels[:, third : 2 * third, 1] = 255
    pixels[:, 2 * third :, 2] = 255
    return pixels


# --------------------------------------------------------------------------- embedded MNIST


def test_embedded_mnist_items():
    data = EmbeddedMNIST()
    assert len(data) == 256
    sample = data[5]
    assert sample.image.shape == (1, 28, 28) and sample.image.dtype == torch.float32
    assert sample.sample_id == "mnist-test-5" and sample.mask is None
    assert 0.0 == float(data.images.min()) and float(data.images.max()) == 1.0
    # values are the original bytes / 255
    assert torch.equal((data.images * 255).round() / 255, data.images)
    assert len(EmbeddedMNIST(limit=10)) == 10 and data[-1].sample_id == "mnist-test-255"
    with pytest.raises(IndexError):
        data[256]


def test_embedded_mnist_file_is_small_package_data():
    source = resources.files("inpaintbench.datasets").joinpath("data").joinpath("mnist_test_256.npz")
    raw = source.read_bytes()
    assert len(raw) < 100_000  # compressed uint8, far under the 1 MB budget
    with source.open("rb") as handle, np.load(handle) as archive:
        assert archive.files == ["images"]
        assert archive["images"].dtype == np.uint8 and archive["images"].shape == (256, 28, 28)


@needs_shared("MNIST", "raw", "t10k-images-idx3-ubyte")
def test_embedded_mnist_equals_the_first_mnist_test_digits():
    from inpaintbench.datasets.mnist import MNISTDataset

    full = MNISTDataset(root=SHARED_DATA, split="test", limit=256)
    sample = EmbeddedMNIST()
    assert torch.equal(sample.images, full.images)
    for index in (0, 17, 255):
        assert sample[index].sample_id == full[index].sample_id


@needs_shared("MNIST", "raw", "t10k-images-idx3-ubyte")
def test_make_sample_rebuilds_the_shipped_array(tmp_path):
    out = make_sample(SHARED_DATA, tmp_path / "sample.npz", count=256)
    source = resources.files("inpaintbench.datasets").joinpath("data").joinpath("mnist_test_256.npz")
    with np.load(out) as made, source.open("rb") as handle, np.load(handle) as shipped:
        assert np.array_equal(made["images"], shipped["images"])


def test_registry_builds_the_sample():
    data = dataset_registry().create("mnist-sample")
    assert len(data) == 256 and data[0].sample_id == "mnist-test-0"


# --------------------------------------------------------------------------- image folders


def test_image_folder_sorts_converts_and_names(tmp_path):
    save(tmp_path / "b.png", stripes(30, 60))
    rgba = np.dstack([stripes(30, 30), np.full((30, 30), 7, np.uint8)])
    save(tmp_path / "a.PNG", rgba)
    save(tmp_path / "c.jpg", np.full((40, 30), 200, np.uint8), quality=100)
    save(tmp_path / "sub" / "d.png", stripes(30, 30))
    (tmp_path / "readme.txt").write_text("ignored")

    data = ImageFolder(tmp_path, size=30)
    assert [data[i].sample_id for i in range(len(data))] == ["a", "b", "c"]
    rgba_image, stripes_image, grey_image = (data[i].image for i in range(3))
    assert all(s.shape == (3, 30, 30) and s.dtype == torch.float32 for s in (rgba_image, grey_image))
    assert torch.equal(rgba_image, torch.from_numpy(stripes(30, 30)).permute(2, 0, 1) / 255.0)  # alpha dropped
    # 60x30 -> short side already 30: centre crop keeps columns 15..44 (5 red, 20 green, 5 blue)
    assert torch.equal(stripes_image, torch.from_numpy(stripes(30, 60)[:, 15:45]).permute(2, 0, 1) / 255.0)
    assert torch.allclose(grey_image, torch.full((3, 30, 30), 200 / 255), atol=2 / 255)  # grey -> 3 equal channels

    nested = ImageFolder(tmp_path, size=30, recursive=True)
    assert [nested[i].sample_id for i in range(len(nested))] == ["a", "b", "c", "sub/d"]
    assert len(ImageFolder(tmp_path, size=30, limit=2)) == 2


def test_image_folder_resizes_short_side_then_crops(tmp_path):
    save(tmp_path / "wide.png", stripes(64, 192))
    image = ImageFolder(tmp_path, size=32)[0].image
    assert image.shape == (3, 32, 32)
    # 192x64 -> 96x32, centre crop 32..63: the green third only, away from its edges
    assert torch.allclose(image[:, :, 4:28], torch.tensor([0.0, 1.0, 0.0])[:, None, None].expand(3, 32, 24), atol=0.02)


def test_image_folder_grey_channels_and_native_size(tmp_path):
    save(tmp_path / "x.png", stripes(20, 30))
    grey = ImageFolder(tmp_path, size=None, channels=1)[0].image
    assert grey.shape == (1, 20, 30)
    # ITU-R 601 luma of pure red / green / blue
    assert [round(float(grey[0, 0, c]) * 255) for c in (0, 15, 29)] == [76, 150, 29]


def test_image_folder_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"no image files"):
        ImageFolder(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    data = ImageFolder(tmp_path)
    with pytest.raises(InputError, match="cannot read image file .*broken.jpg"):
        data[0]
    save(tmp_path / "broken.png", stripes(8, 8))
    with pytest.raises(InputError, match=r"several files per sample id \['broken'\]"):
        ImageFolder(tmp_path)
    with pytest.raises(InputError, match="size must be a positive int"):
        ImageFolder(tmp_path, size=0)


@needs_shared("celebahq-256", "images")
def test_image_folder_reads_celebahq():
    data = ImageFolder(SHARED_DATA / "celebahq-256" / "images", size=64, limit=3)
    sample = data[0]
    assert len(data) == 3 and sample.image.shape == (3, 64, 64)
    assert 0.0 <= float(sample.image.min()) < float(sample.image.max()) <= 1.0


# --------------------------------------------------------------------------- paired folders


def make_pairs(root: Path, mask_size: tuple[int, int] = (16, 16)) -> None:
    """images/p.png (16x16 stripes) and images/q.jpg with masks/p.png, masks/q.png whose
    white (= known) part is the left half."""
    save(root / "images" / "p.png", stripes(16, 16)[..., :3])
    save(root / "images" / "q.jpg", stripes(16, 16), quality=100)
    mh, mw = mask_size
    mask = np.zeros((mh, mw), np.uint8)
    mask[:, : mw // 2] = 255
    save(root / "masks" / "p.png", mask)
    save(root / "masks" / "q.png", mask)
    save(root / "masks" / "orphan.png", mask)  # a mask without image is ignored


def test_paired_folder_pairs_by_stem_and_converts_polarity(tmp_path):
    make_pairs(tmp_path)
    data = PairedFolder(tmp_path)
    assert len(data) == 2 and [data[i].sample_id for i in range(2)] == ["p", "q"]
    sample = data[0]
    assert sample.image.shape == (3, 16, 16) and sample.mask.shape == (1, 16, 16) and sample.mask.dtype == torch.bool
    expected_hole = torch.zeros(1, 16, 16, dtype=torch.bool)
    expected_hole[..., 8:] = True  # white = known on the left, so the hole is the right half
    assert torch.equal(sample.mask, expected_hole)
    assert torch.equal(PairedFolder(tmp_path, mask_polarity="white-hole")[0].mask, ~expected_hole)
    assert PairedFolder(tmp_path, channels=1)[1].image.shape == (1, 16, 16)
    assert len(PairedFolder(tmp_path, limit=1)) == 1


def test_paired_folder_size_mismatch(tmp_path):
    make_pairs(tmp_path, mask_size=(32, 32))
    with pytest.raises(InputError, match=r"mask .*p.png is 32x32 but image .*p.png is 16x16"):
        PairedFolder(tmp_path)[0]
    resized = PairedFolder(tmp_path, size=8)[0]
    assert resized.image.shape == (3, 8, 8) and resized.mask.shape == (1, 8, 8)
    assert resized.mask[..., 4:].all() and not resized.mask[..., :4].any()  # still aligned


def test_paired_folder_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        PairedFolder(tmp_path / "nothing")
    save(tmp_path / "images" / "lonely.png", stripes(8, 8))
    with pytest.raises(InputError, match="paired mask folder .* does not exist"):
        PairedFolder(tmp_path)
    save(tmp_path / "masks" / "other.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"image .*lonely.png has no mask"):
        PairedFolder(tmp_path)
    with pytest.raises(InputError, match="mask_polarity"):
        PairedFolder(tmp_path, mask_polarity="black")
    save(tmp_path / "masks" / "lonely.png", np.zeros((8, 12), np.uint8))
    with pytest.raises(InputError, match="different aspect ratios"):
        PairedFolder(tmp_path, size=8)[0]


@needs_shared("migan-examples", "places2_256_freeform")
@pytest.mark.parametrize("subset", ["ffhq_256_freeform", "places2_256_freeform"])
def test_paired_folder_reads_migan_examples(subset):
    root = SHARED_DATA / "migan-examples" / subset
    data = PairedFolder(root)
    assert len(data) == len(list((root / "images").iterdir()))
    sample = data[0]
    assert sample.image.shape == (3, 256, 256) and sample.mask.shape == (1, 256, 256)
    mask_file = np.asarray(Image.open(root / "masks" / f"{sample.sample_id}.png").convert("L"))
    assert torch.equal(sample.mask[0], torch.from_numpy(mask_file == 0))  # black = hole in MI-GAN files
    assert 0.0 < float(sample.mask.float().mean()) < 1.0


def test_any_slice_of_a_dataset_keeps_the_official_ids(shared_data):
    """start/limit pick any slice; sample ids (and so seeds and records) do not depend on it."""
    whole = MNISTDataset(root=shared_data, split="test", limit=12)
    part = MNISTDataset(root=shared_data, split="test", start=7, limit=5)
    assert [part[i].sample_id for i in range(5)] == [whole[7 + i].sample_id for i in range(5)]
    assert torch.equal(part[0].image, whole[7].image)
    with pytest.raises(InputError, match="start"):
        MNISTDataset(root=shared_data, split="test", start=10**6)


def test_image_folder_start_and_channels_are_checked(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", stripes(8, 8))
    assert [s.sample_id for s in ImageFolder(tmp_path, size=None, start=1)] == ["1", "2"]
    with pytest.raises(InputError, match="channels"):
        ImageFolder(tmp_path, channels=2)
