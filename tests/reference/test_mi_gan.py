"""MI-GAN (``mi-gan``): the suite's generator against the authors' ``migan_inference.Generator``
(``../shared/reference/mi-gan``, a test oracle only), loading that runs nothing, size rules,
and the method contract on random weights."""

from __future__ import annotations

import importlib
import pickle
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask
from inpaintbench.methods.gan.loaders import CheckpointError, read_tensors
from inpaintbench.methods.gan.methods import MIGAN
from inpaintbench.methods.gan.migan_network import MIGANGenerator

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mi-gan"
#: Top-level modules of the reference repository, removed from sys.modules after the import
#: (MAT's reference has its own ``torch_utils`` / ``dnnlib``).
_REFERENCE_TOPS = ("lib", "torch_utils", "dnnlib")


def _import_official(module: str):
    if not (REFERENCE / "lib" / "model_zoo" / "migan_inference.py").is_file():
        pytest.skip(f"{REFERENCE} is absent (the official MI-GAN code lives in ../shared/reference beside the checkout)")
    before = set(sys.modules)
    sys.path.insert(0, str(REFERENCE))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(REFERENCE))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in _REFERENCE_TOPS:
                del sys.modules[name]


@pytest.fixture(scope="module")
def official():
    """The authors' ``Generator(resolution)`` class."""
    return _import_official("lib.model_zoo.migan_inference").Generator


def _random_state(resolution: int, seed: int) -> dict[str, torch.Tensor]:
    """The official layout with random weights: the default initialisation (seeded), plus
    non-zero noise strengths and random noise images so the noise path is exercised."""
    torch.manual_seed(seed)
    net = MIGANGenerator(resolution)
    g = torch.Generator().manual_seed(seed + 1)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("noise_strength"):
            value = 0.5 * torch.randn([], generator=g)
        elif key.endswith("noise_const"):
            value = torch.randn(value.shape, generator=g)
        state[key] = value.clone()
    return state


def _rng(n: int, tag: str = "mi-gan-test") -> SampleRNG:
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
    state = _random_state(256, seed=3)
    path = tmp_path_factory.mktemp("migan") / "migan_256_random.safetensors"
    save_file(state, str(path))
    return path, state


# ------------------------------------------------------------------ equality with the official code

def test_state_dict_keys_and_shapes_equal_the_official_generator(official):
    for resolution in (256, 512):
        ours = {k: tuple(v.shape) for k, v in MIGANGenerator(resolution).state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in official(resolution=resolution).state_dict().items()}
        assert list(ours.items()) == list(theirs.items())


@pytest.mark.parametrize("resolution,batch", [(256, 2), (512, 1)])
def test_output_equals_the_official_generator_at_its_native_sizes(official, resolution, batch):
    state = _random_state(resolution, seed=resolution)
    theirs = official(resolution=resolution).eval()
    theirs.load_state_dict(state, strict=True)
    ours = MIGANGenerator(resolution).eval()
    ours.load_state_dict(state, strict=True)
    image, mask = _inputs(batch, resolution, seed=1)
    x = MIGAN.network_input(apply_mask(image, mask), mask)
    with torch.no_grad():
        expected = theirs(x.clone())
        got = ours(x.clone())
    diff = (got - expected).abs().max().item()
    assert expected.abs().max() > 0.1  # a live output, not a degenerate one
    assert diff <= 1e-5, f"max |suite - official| = {diff:.3g} at {resolution}"
    # The comparison sees a single layer: one perturbed weight moves the output beyond it.
    with torch.no_grad():
        ours.synthesis.b4.conv2.conv2.weight.mul_(1.05)
        assert (ours(x.clone()) - expected).abs().max().item() > 1e-4


def test_the_method_input_is_the_authors_preprocessing():
    """``cat([mask - 0.5, img * mask])`` with mask 1 = known and img in [-1, 1]
    (``scripts/demo.py`` ``preprocess``, ``evaluate_fid_lpips.py``)."""
    image, mask = _inputs(1, 16)
    x = MIGAN.network_input(apply_mask(image, mask), mask)
    known = (~mask).float()
    assert torch.equal(x[:, :1], known - 0.5)
    assert torch.allclose(x[:, 1:], (image * 2 - 1) * known)


# ------------------------------------------------------------------ loading

def test_released_state_dict_safetensors_and_torchscript_load_the_same_network(official, weights_256, tmp_path):
    path, state = weights_256
    pt = tmp_path / "migan_256_places2.pt"
    torch.save(state, pt)  # the release format: a plain state dict
    a = MIGAN(checkpoint=str(path)).network.state_dict()
    b = MIGAN(checkpoint=str(pt)).network.state_dict()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], state[k]) for k in state)

    # A traced export of the official generator (IOPaint ships one): refused by default,
    # read as tensors with allow_torchscript, its code never compiled.
    net = official(resolution=256).eval()
    net.load_state_dict(state)
    scripted = tmp_path / "migan_traced.pt"
    torch.jit.trace(net, torch.zeros(1, 4, 256, 256), check_trace=False).save(str(scripted))
    with pytest.raises(MethodUnavailable, match="TorchScript"):
        MIGAN(checkpoint=str(scripted))
    with pytest.raises(MethodUnavailable, match="TorchScript"):
        MIGAN.check_available(checkpoint=str(scripted))
    c = MIGAN(checkpoint=str(scripted), allow_torchscript=True).network.state_dict()
    assert all(torch.equal(c[k], state[k]) for k in state)


class _WritesAFile:
    """A pickled object whose unpickling would create ``target``."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_a_hostile_file_writes_nothing_and_is_one_clear_line(weights_256, tmp_path):
    _, state = weights_256
    target = tmp_path / "pwned.txt"
    zipped = tmp_path / "hostile.pt"
    torch.save({**state, "payload": _WritesAFile(target)}, zipped)
    legacy = tmp_path / "hostile_legacy.pt"
    torch.save({**state, "payload": _WritesAFile(target)}, legacy, _use_new_zipfile_serialization=False)
    raw = tmp_path / "hostile.pkl"
    raw.write_bytes(pickle.dumps(_WritesAFile(target)))

    # A state dict carrying any global outside the tensor allow-list is refused whole, with one
    # line naming the file (methods/checkpoint_io.py: no inert patterns for a plain state dict).
    for path in (zipped, legacy, raw):
        with pytest.raises(InputError) as err:
            MIGAN(checkpoint=str(path))
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert not target.exists()


def test_mismatched_or_unreadable_files_name_the_first_bad_key(weights_256, tmp_path):
    path, state = weights_256
    missing = dict(state)
    del missing["synthesis.b8.conv1.noise_const"]
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match=r"'synthesis\.b8\.conv1\.noise_const' is missing"):
        MIGAN(checkpoint=str(tmp_path / "missing.safetensors"))

    # The 256 weights given to the 512 network: the first differing key is the 512 block's.
    with pytest.raises(CheckpointError, match=r"key 'synthesis\.b512\.") as err:
        MIGAN(checkpoint=str(path), resolution=512)
    assert "\n" not in str(err.value)

    wrong = {**state, "encoder.b256.fromrgb.weight": torch.zeros(32, 3, 1, 1)}
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(CheckpointError, match=r"'encoder\.b256\.fromrgb\.weight' has shape \[32, 3, 1, 1\]"):
        MIGAN(checkpoint=str(tmp_path / "wrong.safetensors"))

    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint" * 50)
    with pytest.raises(InputError) as err:
        MIGAN(checkpoint=str(tmp_path / "garbage.pt"))
    assert "\n" not in str(err.value)


def test_missing_weights_name_the_file_and_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("INPAINTBENCH_MI_GAN", raising=False)
    with pytest.raises(MethodUnavailable, match=r"INPAINTBENCH_MI_GAN.*migan_256_places2\.pt"):
        MIGAN()
    with pytest.raises(MethodUnavailable, match="does not exist"):
        MIGAN.check_available(checkpoint=str(tmp_path / "nope.pt"))
    monkeypatch.setenv("INPAINTBENCH_MI_GAN", str(tmp_path / "nope.pt"))
    with pytest.raises(MethodUnavailable, match=r"nope\.pt does not exist.*drive\.google\.com"):
        MIGAN.check_available()


def test_reading_a_torchscript_file_needs_the_flag(tmp_path):
    net = MIGANGenerator(8).eval()
    path = tmp_path / "small.pt"
    torch.jit.trace(net, torch.zeros(1, 4, 8, 8)).save(str(path))
    with pytest.raises(CheckpointError, match="allow_torchscript"):
        read_tensors(path)
    tensors = read_tensors(path, allow_torchscript=True)
    assert set(tensors) == set(net.state_dict())


# ------------------------------------------------------------------ sizes

def test_size_rules_are_metadata_and_a_clear_error(weights_256):
    assert MIGAN.native_sizes == (256, 512)
    MIGAN.check_size(256, 256, resolution=256)
    with pytest.raises(InputError, match=r"mi-gan needs 512x512 images, this dataset is 256x256: pass --size 512"):
        MIGAN.check_size(256, 256, resolution=512)
    with pytest.raises(InputError, match="resolution 256 or 512"):
        MIGAN.check_available(resolution=384)
    method = MIGAN(checkpoint=str(weights_256[0]))
    image, mask = _inputs(1, 128)
    with pytest.raises(InputError, match="needs 256x256 images, this dataset is 128x128"):
        method.inpaint(apply_mask(image, mask), mask, rng=_rng(1))


# ------------------------------------------------------------------ contract on random weights

@pytest.mark.slow
def test_contract_batch_invariance_no_leak_and_determinism(weights_256):
    method = MIGAN(checkpoint=str(weights_256[0]))
    image, mask = _inputs(3, 256, seed=7)
    masked = apply_mask(image, mask)
    out = method.inpaint(masked, mask, rng=_rng(3)).image
    assert out.shape == image.shape and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1 and torch.isfinite(out).all()
    assert out.std() > 1e-3
    # Batch invariance: each image alone gives its row of the batch.
    for i in range(3):
        alone = method.inpaint(masked[i:i + 1], mask[i:i + 1], rng=_rng(3)[i:i + 1]).image
        assert (alone - out[i:i + 1]).abs().max() <= 1e-5
    # No leak: other content inside the holes changes nothing.
    other = torch.where(mask, torch.rand_like(image), image)
    assert torch.equal(method.inpaint(apply_mask(other, mask), mask, rng=_rng(3)).image, out)
    # Deterministic: again, and with other seeds (the inference model draws nothing).
    assert torch.equal(method.inpaint(masked, mask, rng=_rng(3, "other")).image, out)
    # Grey images run as RGB, averaged back.
    grey = method.inpaint(masked[:1, :1], mask[:1], rng=_rng(1)).image
    assert grey.shape == (1, 1, 256, 256)


def test_weights_verify_loads_a_gan_file_strictly(weights_256, capsys):
    """`inpaintbench weights verify PATH --gan mi-gan:256` loads the file into the suite's
    generator with every key and shape checked; the wrong resolution is one line, exit 2."""
    from inpaintbench.cli import main
    from inpaintbench.methods.gan.methods import MIGAN

    path, _ = weights_256
    assert main(["weights", "verify", str(path), "--gan", "mi-gan:256"]) == 0
    out = capsys.readouterr().out
    parameters = sum(p.numel() for p in MIGAN._build_network(MIGAN, 256).parameters())
    assert "architecture: mi-gan:256" in out and f"parameters:   {parameters:,}" in out
    assert main(["weights", "verify", str(path), "--gan", "mi-gan:512"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]
    assert main(["weights", "verify", str(path), "--gan", "stylegan:256"]) == 2
