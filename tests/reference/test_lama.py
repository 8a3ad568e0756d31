"""LaMa-FFC: Fourier convolution blocks, the network, its training task, the inference methods
and the VGG16 perceptual loss."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.images import Sample, apply_mask, composite
from inpaintbench.methods.feedforward.ffc_blocks import FFC, FFCResnetBlock, FourierUnit, SpectralTransform
from inpaintbench.methods.feedforward.lama_net import FFCInpaintNet, count_parameters
from inpaintbench.methods.feedforward.lama import MNIST_WEIGHTS, LamaFFC
from inpaintbench.methods.feedforward.lama_train import LamaTask, draw_training_masks
from inpaintbench.methods.feedforward.lama_weights import load_ffc_net, save_ffc_net
from inpaintbench.core.registry import mask_registry, method_registry
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.training.init import seeded_init_
from inpaintbench.core.seeding import make_generator


def _rng(seed: int, n: int = 4) -> SampleRNG:
    """Per-sample generators for a batch of ``n`` images."""
    return SampleRNG.for_samples(seed, sample_ids=[str(i) for i in range(n)])

VGG16_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "lpips" / "vgg16_features.pth"
SIZES = [(28, 28), (32, 32), (64, 64), (27, 31), (5, 9)]


def require_vgg16() -> Path:
    """Skip, with the reason, when the VGG16 weights of ../shared are absent."""
    if not VGG16_FILE.is_file():
        pytest.skip(f"{VGG16_FILE} is absent (real weights live in ../shared beside the checkout)")
    return VGG16_FILE


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _tiny_net(image_channels: int = 1, seed: int = 0) -> FFCInpaintNet:
    net = FFCInpaintNet(image_channels=image_channels, ngf=8, n_downsampling=2, n_blocks=1)
    seeded_init_(net, seed)
    return net.eval()


# --------------------------------------------------------------------------- FFC blocks

@pytest.mark.parametrize("size", SIZES)
def test_ffc_layers_keep_or_halve_the_size(size):
    h, w = size
    pair = (_rand(2, 4, h, w), _rand(2, 12, h, w, seed=1))
    x_l, x_g = FFC(16, 16, 3, ratio_gin=0.75, ratio_gout=0.75, padding=1)(pair)
    assert x_l.shape == (2, 4, h, w) and x_g.shape == (2, 12, h, w)
    y_l, y_g = FFCResnetBlock(16, 0.75)(pair)
    assert y_l.shape == (2, 4, h, w) and y_g.shape == (2, 12, h, w)
    # A stride-2 layer from all-local input into a local/global split (the last downsampling).
    d_l, d_g = FFC(8, 16, 3, ratio_gin=0.0, ratio_gout=0.75, stride=2, padding=1)(_rand(2, 8, h, w))
    assert d_l.shape == (2, 4, math.ceil(h / 2), math.ceil(w / 2)) and d_g.shape == (2, 12, *d_l.shape[2:])


def test_ffc_ratio_zero_has_no_global_branch():
    layer = FFC(8, 8, 3, ratio_gin=0.0, ratio_gout=0.0, padding=1)
    assert layer.convl2g is None and layer.convg2l is None and layer.convg2g is None
    x_l, x_g = layer(_rand(1, 8, 10, 10))
    assert x_g is None and x_l.shape == (1, 8, 10, 10)


@pytest.mark.parametrize("size", [(8, 8), (7, 10)])
def test_fourier_unit_identity_weights_reproduce_the_input(size):
    """rfft2 -> identity 1x1 conv -> irfft2 is the identity: the real/imag plumbing is lossless."""
    unit = FourierUnit(3, 3)
    unit.bn, unit.relu = nn.Identity(), nn.Identity()
    with torch.no_grad():
        unit.conv_layer.weight.copy_(torch.eye(6).view(6, 6, 1, 1))
    x = _rand(2, 3, *size)
    torch.testing.assert_close(unit(x), x, atol=1e-5, rtol=0)


def test_fourier_unit_channel_order_is_real_imag_interleaved():
    """Keeping only the even conv channels keeps Re(FFT): the output is the even part of x,
    (x[n] + x[-n mod N]) / 2 -- which also pins LaMa's (c0.re, c0.im, c1.re, ...) order."""
    unit = FourierUnit(2, 2)
    unit.bn, unit.relu = nn.Identity(), nn.Identity()
    with torch.no_grad():
        unit.conv_layer.weight.copy_(torch.diag(torch.tensor([1.0, 0.0, 1.0, 0.0])).view(4, 4, 1, 1))
    x = _rand(1, 2, 6, 9)
    mirrored = torch.roll(x.flip(-2, -1), shifts=(1, 1), dims=(-2, -1))  # x[-n mod N]
    torch.testing.assert_close(unit(x), (x + mirrored) / 2, atol=1e-5, rtol=0)


def test_spectral_transform_sees_the_whole_image_a_conv_does_not():
    """One changed pixel changes every output pixel of the spectral branch, only a 3x3
    neighbourhood of an ordinary 3x3 convolution."""
    x = _rand(1, 16, 16, 16)
    y = x.clone()
    y[..., 2, 3] += 1.0
    for spectral in (FourierUnit(16, 16).eval(), SpectralTransform(16, 16).eval()):
        seeded_init_(spectral, 0)
        changed = (spectral(y) - spectral(x)).abs().amax(dim=1) > 1e-6
        assert changed.all()
    conv = nn.Conv2d(16, 16, 3, padding=1)
    changed_local = (conv(y) - conv(x)).abs().amax(dim=1) > 1e-6
    assert changed_local.sum() <= 9


@pytest.mark.parametrize("size", SIZES)
def test_network_shape_and_range_at_any_size(size):
    net = _tiny_net()
    mask = _rand(3, 1, *size, seed=2) > 0.6
    out = net(apply_mask(_rand(3, 1, *size), mask), mask)
    assert out.shape == (3, 1, *size)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_network_ignores_pixels_inside_the_hole():
    net = _tiny_net()
    image, mask = _rand(2, 1, 28, 28), _rand(2, 1, 28, 28, seed=1) > 0.5
    tampered = torch.where(mask, 1.0 - image, image)
    torch.testing.assert_close(net(image, mask), net(tampered, mask), rtol=0, atol=0)


def test_committed_config_size_and_initialisation_is_seeded():
    assert 300_000 < count_parameters(FFCInpaintNet(ngf=24, n_downsampling=2, n_blocks=4)) < 1_000_000
    a, b, c = _tiny_net(seed=1), _tiny_net(seed=1), _tiny_net(seed=2)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


# --------------------------------------------------------------------------- training

def test_training_masks_are_seeded_and_mix_families():
    families = [mask_registry().create("half"), mask_registry().create("box")]
    a = draw_training_masks(families, 16, 28, 28, make_generator(0, "m"))
    b = draw_training_masks(families, 16, 28, 28, make_generator(0, "m"))
    assert a.dtype == torch.bool and a.shape == (16, 1, 28, 28)
    assert torch.equal(a, b)
    fractions = a.float().mean(dim=(1, 2, 3))
    assert torch.isclose(fractions, torch.tensor(0.5)).any()  # a half mask
    assert torch.isclose(fractions, torch.tensor(0.25), atol=0.03).any()  # a box of a quarter
    # Random flips put the missing half on more than one side.
    halves = a[torch.isclose(fractions, torch.tensor(0.5))]
    assert len({tuple(h.flatten().tolist()) for h in halves}) > 1


def _tiny_task(**overrides) -> LamaTask:
    kwargs = dict(ngf=8, n_downsampling=2, n_blocks=1, train_masks=["strokes-medium", "box"],
                  perceptual_weight=0.0)
    return LamaTask(**{**kwargs, **overrides})


def test_loss_is_finite_and_reaches_every_parameter():
    task = _tiny_task()
    task.net.train()
    loss, extras = task.loss(_rand(4, 1, 28, 28), 0, make_generator(0, "loss"))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert {"l1", "hole_fraction"} <= extras.keys() and 0 < extras["hole_fraction"] < 1
    loss.backward()
    for name, p in task.net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_perceptual_term_in_the_loss():
    require_vgg16()
    task = _tiny_task(perceptual_weight=0.5, vgg16_weights=str(VGG16_FILE))
    loss, extras = task.loss(_rand(2, 1, 28, 28), 0, make_generator(0, "loss"))
    assert extras["perceptual"] > 0
    assert loss.item() == pytest.approx(extras["l1"] + 0.5 * extras["perceptual"], rel=1e-5)


class _TinyDigits(torch.utils.data.Dataset):
    def __init__(self, n: int = 8):
        self.images = _rand(n, 1, 28, 28)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Sample:
        return Sample(self.images[i], f"tiny-{i}")


def test_shared_training_loop_smoke_and_export_round_trip(tmp_path):
    from inpaintbench.methods.training.loop import TrainConfig, train

    config = TrainConfig(steps=3, batch_size=4, lr=1e-3, log_every=1, checkpoint_every=10, num_threads=1)
    final = train(_tiny_task(), _TinyDigits(), config, tmp_path / "run")
    assert (final / "model.safetensors").is_file() and (final / "config.json").is_file()
    method = LamaFFC(weights=str(final))
    image, mask = _rand(2, 1, 28, 28), _rand(2, 1, 28, 28, seed=3) > 0.7
    out = method.inpaint(apply_mask(image, mask), mask, rng=_rng(0)).image
    torch.testing.assert_close(out, load_ffc_net(final)(apply_mask(image, mask), mask))
    # Same config and seed -> same weights.
    again = train(_tiny_task(), _TinyDigits(), config, tmp_path / "run2")
    torch.testing.assert_close(LamaFFC(weights=str(again)).inpaint(apply_mask(image, mask), mask,
                                                                    rng=_rng(0)).image, out, rtol=0, atol=0)


# --------------------------------------------------------------------------- inference

def test_lama_ffc_shape_range_determinism_no_leak_and_rgb(tmp_path):
    save_ffc_net(_tiny_net(), {"image_channels": 1, "ngf": 8, "n_downsampling": 2, "n_blocks": 1}, tmp_path)
    method = LamaFFC(weights=str(tmp_path))
    image, mask = _rand(3, 1, 28, 28), _rand(3, 1, 28, 28, seed=1) > 0.6
    result = method.inpaint(apply_mask(image, mask), mask, rng=_rng(0))
    out = result.image
    assert out.shape == image.shape and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert result.stats == {"nfe": 1.0}
    tampered = torch.where(mask, 1 - image, image)
    torch.testing.assert_close(method.inpaint(tampered, mask, rng=_rng(5)).image, out, rtol=0, atol=0)
    # A grey model never runs silently on RGB photographs.
    with pytest.raises(InputError, match="1-channel"):
        method.inpaint(apply_mask(image, mask).expand(-1, 3, -1, -1).contiguous(), mask, rng=_rng(0))
    with pytest.raises(InputError, match="mask"):
        method.inpaint(image, None, rng=_rng(0))


def test_lama_ffc_missing_weights_names_file_and_command(tmp_path):
    with pytest.raises(MethodUnavailable, match=r"model\.safetensors|config\.json") as err:
        LamaFFC(weights=str(tmp_path / "nowhere"))
    assert "nowhere" in str(err.value)


def test_missing_mnist_weights_message_gives_the_train_command(monkeypatch, tmp_path):
    import inpaintbench.methods.feedforward.lama as lama

    monkeypatch.setattr(lama, "MNIST_WEIGHTS", tmp_path.resolve())
    with pytest.raises(MethodUnavailable, match=r"Create it with: inpaintbench train lama --config methods/configs/lama-mnist\.toml"):
        lama.LamaFFC()


def test_committed_mnist_model_beats_mean_fill_on_real_digits(digits, box_mask):
    if not (MNIST_WEIGHTS / "model.safetensors").exists():
        pytest.skip(f"{MNIST_WEIGHTS} not trained yet")
    method = method_registry().create("lama-ffc")
    masked = apply_mask(digits, box_mask)
    out = composite(method.inpaint(masked, box_mask, rng=_rng(0)).image, digits, box_mask)
    fill = method_registry().create("mean-fill").inpaint(masked, box_mask, rng=_rng(0))
    err = (out - digits).abs()[box_mask.expand_as(digits)].mean()
    err_fill = (fill - digits).abs()[box_mask.expand_as(digits)].mean()
    assert err < 0.75 * err_fill


# --------------------------------------------------------------------------- perceptual loss

def test_vgg16_features_match_torchvision():
    from torchvision.models.vgg import cfgs, make_layers

    from inpaintbench.methods.training.perceptual import VGG16Features

    require_vgg16()
    ours = VGG16Features(("relu1_2", "relu3_3"), weights=VGG16_FILE)
    reference = make_layers(cfgs["D"])
    reference.load_state_dict({k.removeprefix("features."): v for k, v in
                               torch.load(VGG16_FILE, weights_only=True).items()})
    image = _rand(2, 3, 28, 28)
    normalised = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    relu1_2, relu3_3 = ours(image)
    torch.testing.assert_close(relu1_2, reference[:4](normalised))
    torch.testing.assert_close(relu3_3, reference[:16](normalised))
    assert relu3_3.shape == (2, 256, 7, 7)


def test_perceptual_loss_zero_on_equal_images_and_gradient_to_prediction():
    from inpaintbench.methods.training.perceptual import PerceptualLoss

    require_vgg16()
    loss_fn = PerceptualLoss(("relu1_2", "relu2_2"), weights=VGG16_FILE)
    target = _rand(2, 1, 28, 28)
    assert loss_fn(target, target).item() == 0.0
    prediction = target.flip(-1).requires_grad_(True)
    loss = loss_fn(prediction, target)
    loss.backward()
    assert loss.item() > 0 and prediction.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters())
    # Blurring is penalised more than a faint change of the same image.
    blurred = nn.functional.avg_pool2d(target, 3, stride=1, padding=1)
    assert loss_fn(blurred, target) > loss_fn((target * 0.98).clamp(0, 1), target)


def test_perceptual_weights_missing_file_is_named(monkeypatch, tmp_path):
    from inpaintbench.metrics.lpips_metric import LPIPSUnavailable
    from inpaintbench.methods.training.perceptual import VGG16Features

    monkeypatch.delenv("INPAINTBENCH_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("INPAINTBENCH_LPIPS_WEIGHTS", str(tmp_path))
    with pytest.raises(LPIPSUnavailable, match="vgg16_features.pth"):
        VGG16Features()
    monkeypatch.setenv("INPAINTBENCH_VGG16_WEIGHTS", str(tmp_path / "other.pth"))
    with pytest.raises(LPIPSUnavailable, match="other.pth"):
        VGG16Features()
    with pytest.raises(InputError, match="unknown VGG16 layers"):
        VGG16Features(("relu9_9",))


def test_perceptual_weights_from_the_vgg16_variable(monkeypatch):
    from inpaintbench.methods.training.perceptual import load_vgg16_features_state

    monkeypatch.setenv("INPAINTBENCH_VGG16_WEIGHTS", str(require_vgg16()))
    monkeypatch.setenv("INPAINTBENCH_LPIPS_WEIGHTS", "/nonexistent")
    state = load_vgg16_features_state()
    assert state["0.weight"].shape == (64, 3, 3, 3) and state["28.weight"].shape == (512, 512, 3, 3)
