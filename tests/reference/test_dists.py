"""DISTS through the authors' DISTS_pytorch package, loaded offline; LPIPS rows per backbone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InputError
from inpaintbench.metrics.table import METRICS, compute_image_metrics, metric_info

WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "lpips"
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lpips-examples"

needs_package = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("DISTS_pytorch") is None,
    reason="DISTS needs the DISTS_pytorch package (pip install 'inpaintbench[dists]')")


@pytest.fixture(scope="module")
def dists():
    from inpaintbench.metrics.dists_metric import DISTSMetric

    if not (WEIGHTS / "vgg16_features.pth").exists():
        pytest.skip(f"VGG16 weights not found in {WEIGHTS} (../shared/weights is absent)")
    return DISTSMetric(weights=WEIGHTS)


@pytest.fixture(scope="module")
def package_dists():
    """The package's own ``DISTS()``, built its documented way: ``models.vgg16(pretrained=True)``
    (here torchvision's VGG16 given the same ImageNet features, since nothing downloads) and
    alpha/beta read by the package itself from ``sys.prefix/weights.pt``."""
    import torchvision
    from DISTS_pytorch import DISTS_pt

    if not (WEIGHTS / "vgg16_features.pth").exists():
        pytest.skip(f"VGG16 weights not found in {WEIGHTS} (../shared/weights is absent)")
    features = torch.load(WEIGHTS / "vgg16_features.pth", weights_only=True)
    make_vgg16 = torchvision.models.vgg16  # DISTS_pt.models is torchvision.models: patched below

    def vgg16(pretrained=True):
        net = make_vgg16(weights=None)
        net.features.load_state_dict({k.removeprefix("features."): v for k, v in features.items()}, strict=True)
        return net

    saved_models, saved_prefix = DISTS_pt.models.vgg16, sys.prefix
    DISTS_pt.models.vgg16 = vgg16
    sys.prefix = str(Path(DISTS_pt.__file__).parent)  # the package reads os.path.join(sys.prefix, 'weights.pt')
    try:
        return DISTS_pt.DISTS().eval()
    finally:
        DISTS_pt.models.vgg16, sys.prefix = saved_models, saved_prefix


def _pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    return x, (x + 0.2 * torch.rand(shape, generator=g) - 0.1).clamp(0, 1)


def _example(name: str) -> torch.Tensor:
    from PIL import Image

    path = EXAMPLES / f"{name}.png"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data/lpips-examples)")
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255


@needs_package
@pytest.mark.needs_shared
@pytest.mark.parametrize("shape", [(3, 3, 64, 64), (2, 3, 80, 96)])
def test_equal_to_the_package(dists, package_dists, shape):
    x, y = _pair(shape, seed=shape[-1])
    with torch.no_grad():
        expected = package_dists(x, y)
    assert torch.equal(dists(x, y), expected)


@needs_package
@pytest.mark.needs_shared
def test_small_grey_images_are_upsampled_then_repeated(dists, package_dists):
    x, y = _pair((2, 1, 28, 28), seed=3)
    up = lambda t: F.interpolate(t, size=(64, 64), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)  # noqa: E731
    with torch.no_grad():
        expected = package_dists(up(x), up(y))
    assert torch.equal(dists(x, y), expected)
    assert "28x28 images upsampled bilinearly to 64x64" in dists.resize_note(28, 28)
    assert dists.resize_note(64, 64) == ""


@needs_package
@pytest.mark.needs_shared
def test_pinned_values_on_the_lpips_examples(dists):
    # Pinned here (DISTS_pytorch 0.1, torchvision VGG16): p1 is the closer one, as with LPIPS
    # (0.138 vs 0.722) and as the human judges of the LPIPS repository chose.
    ref, p0, p1 = _example("ex_ref"), _example("ex_p0"), _example("ex_p1")
    assert dists(p0, ref).item() == pytest.approx(0.38793, abs=1e-4)
    assert dists(p1, ref).item() == pytest.approx(0.22502, abs=1e-4)
    assert abs(dists(ref, ref).item()) < 1e-6


@needs_package
@pytest.mark.needs_shared
def test_in_the_metric_table(dists):
    x, y = _pair((2, 3, 64, 64), seed=5)
    mask = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    mask[..., 16:48, 16:48] = True
    values = compute_image_metrics(y, x, mask, composited=x, dists=dists)
    assert torch.equal(values["dists"], dists(x, y).double())
    assert "lpips" not in values
    assert metric_info("dists").title == "DISTS" and not metric_info("dists").higher_is_better


def test_missing_package_and_weights_are_refused_in_one_line(tmp_path, monkeypatch):
    from inpaintbench.metrics.dists_metric import DISTSMetric, DISTSUnavailable

    with pytest.raises(DISTSUnavailable, match="DISTS needs the VGG16 backbone: .*vgg16_features.pth") as err:
        DISTSMetric(weights=tmp_path)
    assert "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "DISTS_pytorch", None)
    with pytest.raises(DISTSUnavailable, match="DISTS_pytorch package is not installed"):
        DISTSMetric(weights=WEIGHTS)
    with pytest.raises(InputError, match="DISTS min_side"):
        DISTSMetric(weights=WEIGHTS, min_side=8)


def test_one_lpips_row_per_backbone_keeps_the_default_key():
    from inpaintbench.metrics.lpips_metric import BACKBONE_FILES

    rows = {m.lpips_net: m for m in METRICS if m.needs_lpips}
    assert set(rows) == set(BACKBONE_FILES)
    assert (rows["alex"].name, rows["alex"].title) == ("lpips", "LPIPS (alex)")  # the key of committed records
    assert (rows["vgg"].name, rows["vgg"].title) == ("lpips_vgg", "LPIPS (vgg)")
    assert (rows["squeeze"].name, rows["squeeze"].title) == ("lpips_squeeze", "LPIPS (squeeze)")

    x, y = _pair((1, 3, 16, 16), seed=6)
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool)

    class Fake:
        def __init__(self, net):
            self.net = net

        def __call__(self, a, b):
            return torch.full((a.shape[0],), {"alex": 0.1, "vgg": 0.2, "squeeze": 0.3}[self.net])

    for net, key in (("alex", "lpips"), ("vgg", "lpips_vgg"), ("squeeze", "lpips_squeeze")):
        values = compute_image_metrics(y, x, mask, lpips=Fake(net), composited=x)
        assert [k for k in values if k.startswith("lpips")] == [key]
    # a plain callable (no backbone named) is the default backbone
    plain = compute_image_metrics(y, x, mask, lpips=lambda a, b: torch.zeros(1), composited=x)
    assert "lpips" in plain


def test_unknown_lpips_backbone_is_refused_when_the_suite_is_read():
    from inpaintbench.harness.suite import Suite

    data = {"datasets": ["mnist-sample"], "masks": ["box"], "methods": ["zero-fill"], "run": {"lpips_net": "resnet"}}
    with pytest.raises(InputError, match=r"lpips_net must be an LPIPS backbone \(alex, vgg, squeeze\), got 'resnet'"):
        Suite.from_dict("bad", data)
    data["run"]["lpips_net"] = "vgg"
    assert Suite.from_dict("ok", data).lpips_net == "vgg"


def test_list_names_every_metric():
    from inpaintbench.cli.listing import metrics_listing
    from inpaintbench.metrics.table import SET_METRICS

    text = metrics_listing()
    for metric in (*METRICS, *SET_METRICS):
        assert f"  {metric.name} " in text and metric.title in text
