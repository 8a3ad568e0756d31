"""CoModGAN (``comodgan``): the suite's generator against the MI-GAN authors' PyTorch port
(``lib/model_zoo/comodgan.py`` in ``../shared/reference/mi-gan``, a test oracle only) with replayed
latents and noise, loading, size rules and the method contract on random weights."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask
from inpaintbench.methods.gan.comodgan_network import COMODGAN_NUM_WS, CoModGANGenerator
from inpaintbench.methods.gan.loaders import CheckpointError
from inpaintbench.methods.gan.methods import MIGAN, CoModGAN

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mi-gan"
_REFERENCE_TOPS = ("lib", "torch_utils", "dnnlib")


@pytest.fixture(scope="module")
def official():
    """``build(resolution)`` -> the port's ``Generator(Mapping(num_ws), Encoder(R), Synthesis(R))``,
    as ``scripts/evaluate_fid_lpips.py`` builds it."""
    if not (REFERENCE / "lib" / "model_zoo" / "comodgan.py").is_file():
        pytest.skip(f"{REFERENCE} is absent (the official CoModGAN port lives in ../shared/reference beside the checkout)")
    before = set(sys.modules)
    sys.path.insert(0, str(REFERENCE))
    try:
        module = importlib.import_module("lib.model_zoo.comodgan")
    finally:
        sys.path.remove(str(REFERENCE))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in _REFERENCE_TOPS:
                del sys.modules[name]

    def build(resolution: int) -> torch.nn.Module:
        return module.Generator(module.Mapping(num_ws=COMODGAN_NUM_WS[resolution]),
                                module.Encoder(resolution=resolution), module.Synthesis(resolution=resolution))
    return build


def _random_state(resolution: int, seed: int) -> dict[str, torch.Tensor]:
    """The default random initialisation (seeded), with random biases, noise strengths and
    ``w_avg`` so that every term (bias, noise, truncation) is live."""
    torch.manual_seed(seed)
    net = CoModGANGenerator(resolution)
    g = torch.Generator().manual_seed(seed + 1)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith(("noise_strength", ".bias", "w_avg")):
            value = value + 0.3 * torch.randn(value.shape, generator=g)
        state[key] = value.clone()
    return state


def _rng(n: int, tag: str = "comodgan-test") -> SampleRNG:
    return SampleRNG.for_samples(0, tag, sample_ids=[str(i) for i in range(n)])


def _inputs(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    mask = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        y, x = torch.randint(0, size // 2, (2,), generator=g).tolist()
        mask[i, :, y:y + size // 3, x:x + size // 3] = True
    return image, mask


@pytest.fixture(scope="module")
def weights_256(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = _random_state(256, seed=11)
    path = tmp_path_factory.mktemp("comodgan") / "comodgan_256_random.safetensors"
    save_file(state, str(path))
    return path, state


def test_state_dict_keys_and_shapes_equal_the_official_port(official):
    for resolution in (256, 512):
        ours = {k: tuple(v.shape) for k, v in CoModGANGenerator(resolution).state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in official(resolution).state_dict().items()}
        assert list(ours.items()) == list(theirs.items())


@pytest.mark.slow
@pytest.mark.parametrize("resolution", [256, 512])
def test_output_equals_the_official_port_with_replayed_latent_and_noise(official, resolution):
    """Both noise modes, with truncation. The port normalises styles by their RMS over the whole
    batch and the suite per sample (module docstring): each sample is compared with the port
    run on that sample alone, where the two are the same computation."""
    state = _random_state(resolution, seed=resolution)
    theirs = official(resolution).eval()
    theirs.load_state_dict(state, strict=True)
    ours = CoModGANGenerator(resolution).eval()
    ours.load_state_dict(state, strict=True)
    image, mask = _inputs(1, resolution, seed=2)
    x = MIGAN.network_input(apply_mask(image, mask), mask)
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(4))
    worst = 0.0
    with torch.no_grad():
        for mode, psi in (("const", 1.0), ("random", 0.7)):
            torch.manual_seed(9)  # the port draws its noise from the global generator: replay it
            expected = theirs(x.clone(), z.clone(), noise_mode=mode, truncation_psi=psi)
            torch.manual_seed(9)
            got = ours(x.clone(), z.clone(), noise_mode=mode, noise_fn=lambda *s: torch.randn([1, *s]),
                       truncation_psi=psi)
            assert expected.abs().max() > 0.1
            worst = max(worst, (got - expected).abs().max().item())
        assert worst <= 1e-5, f"max |suite - official| = {worst:.3g} at {resolution}"
        # One perturbed layer is seen.
        ours.synthesis.b8.conv1.affine.bias.add_(0.05)
        got = ours(x.clone(), z.clone(), noise_mode="const")
        expected = theirs(x.clone(), z.clone(), noise_mode="const")
        assert (got - expected).abs().max().item() > 1e-4


def test_the_method_draws_z_and_noise_as_the_authors_forward_does(official, weights_256):
    """``comodgan`` with a sample's generator equals the port's ``model(x)`` (``z=None``,
    ``noise_mode='random'``, the authors' evaluation) with the global generator in that state."""
    path, state = weights_256
    theirs = official(256).eval()
    theirs.load_state_dict(state, strict=True)
    method = CoModGAN(checkpoint=str(path))
    image, mask = _inputs(1, 256, seed=5)
    masked = apply_mask(image, mask)
    got = method.inpaint(masked, mask, rng=_rng(1)).image
    torch.set_rng_state(_rng(1).generators[0].get_state())
    with torch.no_grad():
        expected = theirs(MIGAN.network_input(masked, mask))
    expected = (expected * 0.5 + 0.5).clamp(0, 1)
    assert (got - expected).abs().max().item() <= 1e-5


def test_loading_errors_are_one_line_and_missing_weights_say_where(weights_256, tmp_path, monkeypatch):
    path, state = weights_256
    with pytest.raises(CheckpointError, match=r"key 'synthesis\.b512\.") as err:
        CoModGAN(checkpoint=str(path), resolution=512)
    assert "\n" not in str(err.value)
    # A MI-GAN file is not a CoModGAN one: the first key of the network is named.
    save_file({"synthesis.b4.conv1.conv1.weight": torch.zeros(512, 1, 3, 3)}, str(tmp_path / "migan.safetensors"))
    with pytest.raises(CheckpointError, match=r"'mapping\.w_avg' is missing"):
        CoModGAN(checkpoint=str(tmp_path / "migan.safetensors"))
    monkeypatch.delenv("INPAINTBENCH_COMODGAN", raising=False)
    with pytest.raises(MethodUnavailable, match=r"INPAINTBENCH_COMODGAN.*comodgan_256_places2\.pt"):
        CoModGAN.check_available()
    with pytest.raises(InputError, match="noise_mode"):
        CoModGAN(checkpoint=str(path), noise_mode="fixed")


def test_size_rules(weights_256):
    assert CoModGAN.native_sizes == (256, 512)
    with pytest.raises(InputError, match=r"comodgan needs 256x256 images, this dataset is 512x512: pass --size 256"):
        CoModGAN.check_size(512, 512)


@pytest.mark.slow
def test_contract_batch_invariance_no_leak_and_per_sample_randomness(weights_256):
    method = CoModGAN(checkpoint=str(weights_256[0]))
    assert not method.deterministic
    image, mask = _inputs(2, 256, seed=8)
    masked = apply_mask(image, mask)
    out = method.inpaint(masked, mask, rng=_rng(2)).image
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1 and torch.isfinite(out).all()
    # Float rounding only: a grouped convolution over 1 or 2 samples rounds differently, and
    # random weights drive the raw output to about +-30 (1e-6 relative is ~3e-5 here).
    for i in range(2):
        alone = method.inpaint(masked[i:i + 1], mask[i:i + 1], rng=_rng(2)[i:i + 1]).image
        assert (alone - out[i:i + 1]).abs().max() <= 1e-4
    # Same seeds, same output; other content in the holes changes nothing.
    other = torch.where(mask, torch.rand_like(image), image)
    assert torch.equal(method.inpaint(apply_mask(other, mask), mask, rng=_rng(2)).image, out)
    # Other seeds, other latent and noise.
    assert (method.inpaint(masked, mask, rng=_rng(2, "other")).image - out).abs().max() > 1e-3
