"""LPIPS with the real backbone: against the lpips package itself, refusals, resizing."""

from __future__ import annotations

import math
import os
import urllib.error
import warnings
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintbench.metrics.lpips_metric import BACKBONE_FILES, LPIPS_WEIGHTS_ENV, LPIPSMetric, LPIPSUnavailable

WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "lpips"
#: A folder holding the LPIPS repository's ex_ref.png / ex_p0.png / ex_p1.png, if a user has one.
EXAMPLES_ENV = "INPAINTBENCH_LPIPS_EXAMPLES"

needs_weights = pytest.mark.skipif(
    not (WEIGHTS / BACKBONE_FILES["alex"]).is_file(),
    reason=f"LPIPS backbone weights not found in {WEIGHTS} (../shared/weights is absent)",
)


@pytest.fixture(autouse=True)
def no_weights_env(monkeypatch):
    """Tests choose their weights explicitly; a user's env var must not change them."""
    monkeypatch.delenv(LPIPS_WEIGHTS_ENV, raising=False)


@pytest.fixture(scope="module")
def alex() -> LPIPSMetric:
    if not (WEIGHTS / BACKBONE_FILES["alex"]).is_file():
        pytest.skip(f"LPIPS backbone weights not found in {WEIGHTS} (../shared/weights is absent)")
    return LPIPSMetric("alex", weights=WEIGHTS)


@pytest.fixture(scope="module")
def package_alex() -> lpips.LPIPS:
    if not (WEIGHTS / BACKBONE_FILES["alex"]).is_file():
        pytest.skip(f"LPIPS backbone weights not found in {WEIGHTS} (../shared/weights is absent)")
    return package_lpips("alex")


def package_lpips(net: str) -> lpips.LPIPS:
    """The reference: the lpips package as its README builds it, backbone from the same file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lpips passes torchvision a deprecated argument
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    features = torch.load(WEIGHTS / BACKBONE_FILES[net], map_location="cpu", weights_only=True)
    model.net.load_state_dict({k: features["features." + k.split(".", 1)[1]] for k in model.net.state_dict()})
    return model.eval()


def synthetic_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic 64x64 RGB pair built from formulas (no RNG, no files)."""
    ramp = torch.linspace(0, 1, 64)
    yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")
    wave = 2 * math.pi * (3 * xx + 2 * yy)
    ref = torch.stack([0.5 + 0.5 * torch.sin(wave), xx, yy * (1 - xx)])
    dist = torch.stack([0.5 + 0.5 * torch.sin(wave + 1.0), xx.flip(1), (yy * (1 - xx)) ** 2])
    return ref[None], dist[None]


def random_pair(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    return x, (x + 0.2 * torch.randn(shape, generator=gen)).clamp(0, 1)


@needs_weights
def test_matches_lpips_package_exactly(alex, package_alex):
    x, y = random_pair((3, 3, 64, 64), seed=0)
    with torch.no_grad():
        ref = package_alex(x, y, normalize=True).flatten()
    got = alex(x, y)
    assert got.shape == (3,) and torch.equal(got, ref)
    assert alex.resized_to is None and alex.resize_note(64, 64) == ""
    assert got.grad_fn is None and not any(p.requires_grad for p in alex.parameters())


@needs_weights
def test_identical_images_give_zero(alex):
    x, _ = random_pair((2, 3, 64, 64), seed=1)
    assert torch.equal(alex(x, x), torch.zeros(2))


@needs_weights
def test_small_grayscale_images_are_upsampled_then_repeated(alex, package_alex):
    x, y = random_pair((2, 1, 28, 28), seed=2)
    got = alex(x, y)
    assert alex.resized_to == (64, 64)
    assert alex.resize_note(28, 28) == (
        "LPIPS (alex): 28x28 images upsampled bilinearly to 64x64 (the backbone needs a short side of at least 64 px)"
    )
    up = [F.interpolate(t, size=(64, 64), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1) for t in (x, y)]
    with torch.no_grad():
        ref = package_alex(*up, normalize=True).flatten()
    assert torch.equal(got, ref)
    assert alex.input_size(28, 40) == (64, 91)  # aspect ratio kept, short side = min_side


@needs_weights
@pytest.mark.parametrize(
    ("net", "expected"),
    [("alex", 0.218156), pytest.param("vgg", 0.479910, marks=pytest.mark.slow), ("squeeze", 0.307997)],
)
def test_every_backbone_loads_and_gives_its_pinned_value(net, expected):
    # Pinned once with the shared weights; the LPIPS example images are not available here.
    metric = LPIPSMetric(net, weights=WEIGHTS / BACKBONE_FILES[net])
    x, y = synthetic_pair()
    got = metric(x, y)
    assert got.item() == pytest.approx(expected, abs=1e-4)
    if net == "squeeze":  # alex is compared above; building the package's VGG twice is slow
        with torch.no_grad():
            assert torch.equal(got, package_lpips(net)(x, y, normalize=True).flatten())


@needs_weights
def test_official_example_images_when_available(alex):
    # ../shared/data/lpips-examples holds the LPIPS repository's images (their README's 0.722 / 0.138).
    folder = os.environ.get(EXAMPLES_ENV) or str(WEIGHTS.parents[1] / "data" / "lpips-examples")
    if not (Path(folder) / "ex_ref.png").is_file():
        pytest.skip(
            "the LPIPS repository's ex_ref.png/ex_p0.png/ex_p1.png are not in the pip package nor in "
            f"../shared/data/lpips-examples; set {EXAMPLES_ENV} to a folder holding them to check 0.722 / 0.138"
        )
    from PIL import Image

    def load(name: str) -> torch.Tensor:
        rgb = np.asarray(Image.open(Path(folder) / name).convert("RGB"), dtype=np.float32) / 255
        return torch.from_numpy(rgb).permute(2, 0, 1)[None]

    ref = load("ex_ref.png")
    assert alex(ref, load("ex_p0.png")).item() == pytest.approx(0.722, abs=1e-3)
    assert alex(ref, load("ex_p1.png")).item() == pytest.approx(0.138, abs=1e-3)


def test_missing_weights_argument_is_refused(tmp_path):
    with pytest.raises(LPIPSUnavailable, match=r"alexnet_features\.pth") as err:
        LPIPSMetric("alex", weights=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_env_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(LPIPS_WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(LPIPSUnavailable, match=rf"vgg16_features\.pth.*\${LPIPS_WEIGHTS_ENV}"):
        LPIPSMetric("vgg")


def test_offline_without_weights_is_refused_naming_file_and_env_var(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(LPIPSUnavailable) as err:
        LPIPSMetric("alex")
    message = str(err.value)
    assert "alexnet_features.pth" in message and LPIPS_WEIGHTS_ENV in message
    assert "download.pytorch.org" in message and "Name or service not known" in message


@needs_weights
def test_incomplete_or_wrong_backbone_is_refused_never_random(tmp_path):
    features = torch.load(WEIGHTS / BACKBONE_FILES["alex"], map_location="cpu", weights_only=True)
    del features["features.8.bias"]
    torch.save(features, tmp_path / "partial.pth")
    with pytest.raises(LPIPSUnavailable, match=r"missing \['features\.8\.bias'\]"):
        LPIPSMetric("alex", weights=tmp_path / "partial.pth")
    with pytest.raises(LPIPSUnavailable, match="do not match the alex backbone"):
        LPIPSMetric("alex", weights=WEIGHTS / BACKBONE_FILES["vgg"])


@needs_weights
def test_whole_torchvision_state_dict_is_accepted(tmp_path, alex):
    features = torch.load(WEIGHTS / BACKBONE_FILES["alex"], map_location="cpu", weights_only=True)
    features["classifier.1.weight"] = torch.zeros(4, 4)  # a full model file: the head is ignored
    torch.save(features, tmp_path / "alexnet_full.pth")
    metric = LPIPSMetric("alex", weights=tmp_path / "alexnet_full.pth")
    x, y = synthetic_pair()
    assert torch.equal(metric(x, y), alex(x, y))


def test_bad_arguments_raise_input_errors(tmp_path):
    from inpaintbench.core.errors import InputError

    with pytest.raises(InputError, match="unknown LPIPS backbone 'resnet'"):
        LPIPSMetric("resnet", weights=tmp_path)
    with pytest.raises(InputError, match="min_side"):
        LPIPSMetric("alex", weights=tmp_path, min_side=8)


@needs_weights
def test_rejects_mismatched_images(alex):
    from inpaintbench.core.errors import InputError

    x, y = random_pair((1, 3, 64, 64), seed=3)
    with pytest.raises(InputError, match="same shape"):
        alex(x, y[..., :32])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        alex(2 * x - 1, y)


def test_importing_the_metrics_does_not_import_lpips_or_torchvision():
    # lpips and torchvision cost ~2.5 s of start-up; they load only when an LPIPSMetric is built.
    import subprocess
    import sys

    code = (
        "import sys, inpaintbench.metrics, inpaintbench.metrics.lpips_metric; "
        "print(sorted(m for m in ('lpips', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
