"""MAT (``mat``): its network pickles and its generator against the official code.

* The pickles (StyleGAN2-ADA persistent classes that embed and run their source when unpickled):
  the suite reads the generator's tensors without running any of it. They are made here with the
  official ``torch_utils.persistence`` of ``../shared/reference/mat`` (a test oracle only), around
  a small network whose embedded source writes a file when executed -- as the official loader does.
* The generator: the suite's ``mat_network.Generator`` against the official
  ``networks.mat.Generator`` (which imports ``timm``; skipped without it) on seeded random weights,
  with the official forward's random draws (its always-on dropout, the noise) replayed; then the
  ``mat`` method on an official network pickled the official way, and its contract."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.images import apply_mask
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.gan.loaders import CheckpointError
from inpaintbench.methods.gan.mat_network import Generator
from inpaintbench.methods.gan.methods import MAT
from inpaintbench.methods.gan.stylegan_pickle import read_stylegan_pickle

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mat"
_REFERENCE_TOPS = ("torch_utils", "dnnlib", "hostile_net", "networks")

HOSTILE_SOURCE = textwrap.dedent('''
    import os
    import torch
    from torch_utils import persistence

    # Runs whenever this source is executed: by the official loader, never by the suite's.
    if os.environ.get("GAN_TEST_TARGET"):
        open(os.environ["GAN_TEST_TARGET"], "w").write("ran")

    @persistence.persistent_class
    class Child(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(3, 2))
            self.register_buffer("noise_const", torch.randn(4, 4))

    @persistence.persistent_class
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Child(), torch.nn.Linear(2, 2)])
            self.softmax = torch.nn.Softmax(dim=-1)
            self.scale = torch.nn.Parameter(torch.ones([]))
''')


@pytest.fixture
def reference_path(tmp_path):
    """``../shared/reference/mat`` and a folder with the hostile module on ``sys.path`` for the
    test; their modules are removed afterwards."""
    if not (REFERENCE / "torch_utils" / "persistence.py").is_file():
        pytest.skip(f"{REFERENCE} is absent (the official MAT code lives in ../shared/reference beside the checkout)")
    (tmp_path / "hostile_net.py").write_text(HOSTILE_SOURCE)
    before = set(sys.modules)
    sys.path[:0] = [str(REFERENCE), str(tmp_path)]
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(REFERENCE))
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in _REFERENCE_TOPS:
                del sys.modules[name]


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_the_generator_tensors_are_read_and_the_embedded_source_never_runs(reference_path, monkeypatch, protocol):
    net_module = importlib.import_module("hostile_net")
    dnnlib = importlib.import_module("dnnlib")
    g_ema, d = net_module.Net(), net_module.Net()
    path = reference_path / "network.pkl"
    with open(path, "wb") as file:
        pickle.dump({"G": net_module.Net(), "D": d, "G_ema": g_ema,
                     "training_set_kwargs": dnnlib.EasyDict(resolution=512, xflip=False)}, file, protocol=protocol)

    target = reference_path / "ran.txt"
    monkeypatch.setenv("GAN_TEST_TARGET", str(target))
    tensors = read_stylegan_pickle(path)
    assert not target.exists()
    expected = g_ema.state_dict()
    assert list(tensors) == list(expected)  # blocks.0.weight, blocks.0.noise_const, blocks.1.*, scale
    assert all(torch.equal(tensors[k], expected[k]) for k in expected)
    assert torch.equal(read_stylegan_pickle(path, "D")["blocks.1.weight"], d.state_dict()["blocks.1.weight"])

    # The file is hostile indeed: in a fresh process (this one has the module cached), the
    # plain unpickler runs the embedded source.
    code = f"import pickle, sys; sys.path.insert(0, {str(REFERENCE)!r}); pickle.load(open({str(path)!r}, 'rb'))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    assert target.read_text() == "ran"


def test_other_globals_are_refused_with_one_line_and_nothing_runs(tmp_path):
    target = tmp_path / "pwned.txt"

    class Payload:
        def __reduce__(self):
            return (open, (str(target), "w"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Payload()}))
    with pytest.raises(CheckpointError, match=r"global io\.open is not allowed") as err:
        read_stylegan_pickle(path)
    assert "\n" not in str(err.value) and not target.exists()

    (tmp_path / "empty.pkl").write_bytes(pickle.dumps({"D": {}}))
    with pytest.raises(CheckpointError, match=r"no 'G_ema' network"):
        read_stylegan_pickle(tmp_path / "empty.pkl")
    (tmp_path / "garbage.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError):
        read_stylegan_pickle(tmp_path / "garbage.pkl")


# ---------------------------------------------------------------------------------- the generator


@pytest.fixture(scope="module")
def official():
    """The official ``networks.mat`` module; the reference stays importable (``sys.path`` and its
    modules) until the end of this file's tests, so official networks can be pickled the
    official way (persistence needs its own modules to be the ones in ``sys.modules``)."""
    if not (REFERENCE / "networks" / "mat.py").is_file():
        pytest.skip(f"{REFERENCE} is absent (the official MAT code lives in ../shared/reference beside the checkout)")
    pytest.importorskip("timm", reason="the official networks/mat.py imports timm (pip install timm for this test)")
    before, path_before = set(sys.modules), list(sys.path)
    sys.path.insert(0, str(REFERENCE))
    try:
        yield importlib.import_module("networks.mat")
    finally:
        sys.path[:] = path_before  # also drops the '../' networks/mat.py inserts
        for name in set(sys.modules) - before:
            if name.split(".")[0] in _REFERENCE_TOPS:
                del sys.modules[name]


def _random_state(resolution: int, seed: int) -> dict[str, torch.Tensor]:
    """The default random initialisation (seeded) with random biases, noise strengths and
    ``w_avg`` so every term is live, and the to-RGB layers scaled by 0.03 so the output lies
    in ``[-1, 1]`` (holes: std 0.23; random weights otherwise drive it to +-150, and the clamp to
    ``[0, 1]`` would hide most differences)."""
    torch.manual_seed(seed)
    net = Generator(img_resolution=resolution)
    g = torch.Generator().manual_seed(seed + 1)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith(("noise_strength", ".bias", "w_avg")):
            value = value + 0.3 * torch.randn(value.shape, generator=g)
        if ".toRGB." in key and key.endswith(("conv.weight", ".bias")) and ".affine." not in key:
            value = value * 0.03
        state[key] = value.clone()
    return state


def _official_generator(official, resolution: int, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    net = official.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3).eval()
    net.load_state_dict(state, strict=True)
    return net.requires_grad_(False)


def _inputs(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] and bool masks (True = hole): a rectangle (half by a third of the image)
    and a top band per image, so
    some attention windows are wholly inside a hole."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    mask = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        y, x = torch.randint(0, size // 2, (2,), generator=g).tolist()
        mask[i, :, y:y + size // 2, x:x + size // 3] = True
        mask[i, :, : size // 8] = True
    return image, mask


def _rng(n: int, tag: str = "mat-test") -> SampleRNG:
    return SampleRNG.for_samples(0, tag, sample_ids=[str(i) for i in range(n)])


def test_state_dict_keys_and_shapes_equal_the_official_generator(official):
    for resolution in (256, 512):
        ours = {k: tuple(v.shape) for k, v in Generator(img_resolution=resolution).state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in
                  official.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution,
                                     img_channels=3).state_dict().items()}
        assert list(ours.items()) == list(theirs.items())


@pytest.mark.parametrize("resolution", [256, pytest.param(512, marks=pytest.mark.slow)])
def test_output_equals_the_official_generator_with_replayed_draws(official, resolution):
    """``noise_mode='const'`` (``generate_image.py`` at 512) and ``'random'`` with truncation,
    both stages; the official forward draws its dropout maps and noise from torch's global
    generator, replayed here by seeding it before each network. Measured on CPU (torch 2.14):
    max |suite - official| = 0.0 at 256 and at 512, both modes."""
    state = _random_state(resolution, seed=resolution)
    theirs = _official_generator(official, resolution, state)
    ours = Generator(img_resolution=resolution).eval().requires_grad_(False)
    ours.load_state_dict(state, strict=True)
    image, mask = _inputs(1, resolution, seed=2)
    known = (~mask).float()
    images_in = (image * 2 - 1) * known
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(4))
    worst, outputs = 0.0, {}
    with torch.no_grad():
        for mode, psi in (("const", 1.0), ("random", 0.7)):
            torch.manual_seed(9)
            expected = theirs(images_in, known, z, None, truncation_psi=psi, noise_mode=mode, return_stg1=True)
            torch.manual_seed(9)
            got = ours(images_in, known, z, None, truncation_psi=psi, noise_mode=mode,
                       noise_fn=lambda *s: torch.randn([1, *s]), return_stg1=True)
            for e, o in zip(expected, got):
                assert (e * mask).abs().max() > 0.1  # the holes are filled with something
                worst = max(worst, (o - e).abs().max().item())
            outputs[mode] = expected[0]
        assert worst <= 1e-5, f"max |suite - official| = {worst:.3g} at {resolution}"
        # One perturbed layer (a shifted-window attention of the first stage, masked) is seen.
        ours.synthesis.first_stage.tran[0].blocks[1].attn.v.bias.add_(0.05)
        torch.manual_seed(9)
        got = ours(images_in, known, z, None, noise_mode="const")
        assert (got - outputs["const"]).abs().max().item() > 1e-4


@pytest.fixture(scope="module")
def mat_pickle(official, tmp_path_factory) -> Path:
    """An official 256 generator with the random state, pickled as the authors' training loop
    pickles its snapshots (``{"G": ..., "D": ..., "G_ema": ...}`` of persistent classes)."""
    state = _random_state(256, seed=7)
    g_ema = _official_generator(official, 256, state)
    path = tmp_path_factory.mktemp("mat") / "mat_256_random.pkl"
    with open(path, "wb") as file:
        pickle.dump({"G": None, "D": None, "G_ema": g_ema, "augment_pipe": None}, file)
    return path


def test_the_method_reads_the_pickle_and_draws_as_the_authors_forward(official, mat_pickle):
    """``mat`` with a sample's generator equals ``G(image, mask, z, c, noise_mode)`` of the
    official network unpickled the official way, with z and the global generator drawn from that
    generator's state (z first, then the forward's dropout maps and noise; ``"random"``, the
    authors' mode at 256, draws all three kinds)."""
    g_ema = pickle.loads(mat_pickle.read_bytes())["G_ema"]  # runs the embedded source: the oracle only
    image, mask = _inputs(1, 256, seed=5)
    masked = apply_mask(image, mask)
    known = (~mask).float()
    for mode in ("random",):
        method = MAT(checkpoint=str(mat_pickle), resolution=256, noise_mode=mode)
        got = method.inpaint(masked, mask, rng=_rng(1)).image
        torch.set_rng_state(_rng(1).generators[0].get_state())
        with torch.no_grad():
            z = torch.randn(1, 512)
            expected = g_ema(image * 2 - 1, known, z, None, truncation_psi=1, noise_mode=mode)
        expected = (expected * 0.5 + 0.5).clamp(0, 1)
        assert 0.05 < expected[mask.expand_as(expected)].std()  # the holes are not saturated
        assert (got - expected).abs().max().item() <= 1e-5


def test_loading_errors_are_one_line_and_missing_weights_say_where(mat_pickle, tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match=r"key 'synthesis\.first_stage\.enc_conv\.2\.") as err:
        MAT(checkpoint=str(mat_pickle), resolution=512)
    assert "\n" not in str(err.value)
    save_file({"synthesis.b4.conv1.conv1.weight": torch.zeros(512, 1, 3, 3)}, str(tmp_path / "migan.safetensors"))
    with pytest.raises(CheckpointError, match=r"is missing"):
        MAT(checkpoint=str(tmp_path / "migan.safetensors"))
    monkeypatch.delenv("INPAINTBENCH_MAT", raising=False)
    with pytest.raises(MethodUnavailable, match=r"INPAINTBENCH_MAT.*Places_512_FullData\.pkl.*fenglinglwb/MAT"):
        MAT.check_available()
    with pytest.raises(MethodUnavailable, match=r"nope\.pkl does not exist"):
        MAT.check_available(checkpoint=str(tmp_path / "nope.pkl"))
    with pytest.raises(InputError, match="noise_mode"):
        MAT(checkpoint=str(mat_pickle), resolution=256, noise_mode="fixed")
    with pytest.raises(InputError, match="resolution 256 or 512, got 384"):
        MAT.check_available(checkpoint=str(mat_pickle), resolution=384)


def test_size_rules_and_the_authors_noise_defaults(mat_pickle):
    assert MAT.native_sizes == (256, 512)
    with pytest.raises(InputError, match=r"mat needs 512x512 images, this dataset is 256x256: pass --size 512"):
        MAT.check_size(256, 256)
    MAT.check_size(256, 256, resolution=256)
    method = MAT(checkpoint=str(mat_pickle), resolution=256)
    assert method.noise_mode == "random" and method.config["noise_mode"] == "random"  # generate_image.py at 256


@pytest.mark.slow
def test_contract_batch_invariance_no_leak_and_per_sample_randomness(mat_pickle):
    method = MAT(checkpoint=str(mat_pickle), resolution=256)
    assert not method.deterministic
    image, mask = _inputs(2, 256, seed=8)
    masked = apply_mask(image, mask)
    out = method.inpaint(masked, mask, rng=_rng(2)).image
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1 and torch.isfinite(out).all()
    # A sample alone, with its own generator, is the sample in the batch (float rounding only).
    alone = method.inpaint(masked[1:], mask[1:], rng=_rng(2)[1:]).image
    assert (alone - out[1:]).abs().max() <= 1e-4
    # Same seeds, same output; other content in the holes changes nothing.
    other = torch.where(mask, torch.rand_like(image), image)
    assert torch.equal(method.inpaint(other, mask, rng=_rng(2)).image, out)
    # Other seeds: other z, dropout maps and noise.
    again = method.inpaint(masked[:1], mask[:1], rng=_rng(1, "other")).image
    assert (again - out[:1]).abs().max() > 1e-3
