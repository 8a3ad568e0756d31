"""Big LaMa (``lama-official``): the project's generator against the official
``FFCResNetGenerator`` (``../shared/reference/lama``, a test oracle only), checkpoint reading
that never runs pickled objects, and LaMa's inference conventions."""

from __future__ import annotations

import importlib
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

from inpaintbench.core.errors import MethodUnavailable
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask
from inpaintbench.methods.checkpoint_io import CheckpointError
from inpaintbench.methods.feedforward import big_lama, big_lama_weights
from inpaintbench.methods.feedforward.big_lama import BigLama, pad_symmetric
from inpaintbench.methods.feedforward.big_lama_net import BIG_LAMA_ARCH, BigLamaGenerator
from inpaintbench.methods.feedforward.big_lama_weights import load_big_lama_generator, read_lama_checkpoint
from inpaintbench.methods.feedforward.lama_net import FFCInpaintNet

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "lama"

#: ``configs/training/big-lama.yaml``'s generator section as the official constructor's kwargs.
OFFICIAL_KWARGS = {
    "input_nc": 4, "output_nc": 3, "ngf": 64, "n_downsampling": 3, "n_blocks": 18, "add_out_act": "sigmoid",
    "init_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False},
    "downsample_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False},
    "resnet_conv_kwargs": {"ratio_gin": 0.75, "ratio_gout": 0.75, "enable_lfu": False},
}
#: Shrunk for speed (the full size runs once too, ~6 s at 256x256): the same structure (3 downsamplings, all layer kinds), narrower and shallower.
SMALL = {"ngf": 16, "n_blocks": 2}


def _rng(n: int) -> SampleRNG:
    return SampleRNG.for_samples(0, "big-lama-test", sample_ids=[str(i) for i in range(n)])


@pytest.fixture(scope="module")
def official():
    """The official ``FFCResNetGenerator`` class. ``saicinpainting`` imports pytorch_lightning
    (``utils.py``: only ``seed_everything``) and kornia (``spatial_transform.py``: ``rotate``,
    unused by Big LaMa): both are stubbed in ``sys.modules`` for the import and removed after."""
    if not (REFERENCE / "saicinpainting" / "training" / "modules" / "ffc.py").is_file():
        pytest.skip(f"{REFERENCE} is absent (the official LaMa code lives in ../shared/reference beside the checkout)")
    stubs = {}
    for name in ("pytorch_lightning", "kornia", "kornia.geometry", "kornia.geometry.transform"):
        if name not in sys.modules:
            stubs[name] = types.ModuleType(name)
    if "pytorch_lightning" in stubs:
        stubs["pytorch_lightning"].seed_everything = lambda *a, **k: None
    if "kornia.geometry.transform" in stubs:
        stubs["kornia.geometry.transform"].rotate = lambda *a, **k: None
    before = set(sys.modules)
    sys.modules.update(stubs)
    sys.path.insert(0, str(REFERENCE))
    try:
        module = importlib.import_module("saicinpainting.training.modules.ffc")
        yield module.FFCResNetGenerator
    finally:
        sys.path.remove(str(REFERENCE))
        for name in set(sys.modules) - before:  # the stubs and saicinpainting itself
            if name.split(".")[0] in ("saicinpainting", "pytorch_lightning", "kornia"):
                del sys.modules[name]


def _randomize(net: nn.Module, seed: int) -> nn.Module:
    """Random weights *and* batch-norm statistics (eval mode uses them: defaults would hide a
    mis-wired norm), scaled so activations stay O(1) through 18 blocks."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(0.5 + torch.rand(t.shape, generator=g))
                elif name.endswith("running_mean") or name.endswith("bias"):
                    t.copy_(0.1 * torch.randn(t.shape, generator=g))
                elif t.ndim == 1:  # batch-norm weight
                    t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
                else:
                    t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
    return net.eval()


def _official(cls, **overrides):
    return cls(**{**OFFICIAL_KWARGS, **overrides})


def _ours(**overrides):
    return BigLamaGenerator(**{**BIG_LAMA_ARCH, **overrides})


def _input(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g)
    mask = (torch.rand(b, 1, h, w, generator=g) > 0.6).float()
    return torch.cat([image * (1 - mask), mask], dim=1)


# --------------------------------------------------------------------------- vs the official generator

def test_state_dict_keys_and_shapes_equal_the_official_big_lama(official):
    ref, ours = _official(official), _ours()
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert list(our_shapes) == list(ref_shapes)  # same keys, same order
    assert our_shapes == ref_shapes
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    assert "model.5.conv1.ffc.convg2g.fu.conv_layer.weight" in our_shapes  # spot check of the layout
    assert not any(".lfu." in k for k in our_shapes)  # enable_lfu: false


def test_output_equals_the_official_generator_on_random_weights(official):
    ref = _randomize(_official(official, **SMALL), seed=1)
    ours = _ours(**SMALL).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = _input(2, 48, 40)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    diff = float((expected - got).abs().max())
    print(f"max |ours - official| (ngf 16, 2 blocks, 48x40): {diff:.3g}")
    assert expected.std() > 1e-2  # not a saturated sigmoid: the comparison means something
    assert diff <= 1e-5


def test_lama_ffc_network_is_the_same_official_generator(official):
    """lama-ffc's FFCInpaintNet is built from the same blocks (ffc_blocks.ffc_resnet): at Big
    LaMa's layout it takes the official state dict strictly and gives the official output on
    ``image * (1 - mask)`` + mask (any size: it pads and crops itself)."""
    ref = _randomize(_official(official, **SMALL), seed=5)
    net = FFCInpaintNet(image_channels=3, ngf=SMALL["ngf"], n_downsampling=3, n_blocks=SMALL["n_blocks"],
                        ratio_global=0.75).eval()
    net.load_state_dict(ref.state_dict(), strict=True)
    x = _input(2, 48, 40, seed=3)
    with torch.no_grad():
        expected, got = ref(x), net(x[:, :3], x[:, 3:])
    assert expected.std() > 1e-2
    assert float((expected - got).abs().max()) <= 1e-5


def test_full_size_big_lama_equals_the_official_generator_at_256(official):
    ref = _randomize(_official(official), seed=2)
    ours = _ours().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = _input(1, 256, 256, seed=3)
    start = time.perf_counter()
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    diff = float((expected - got).abs().max())
    print(f"max |ours - official| (full Big LaMa, 256x256): {diff:.3g} in {time.perf_counter() - start:.1f} s")
    assert expected.std() > 1e-2
    assert diff <= 1e-5


def test_the_method_follows_lamas_prediction_pipeline(official, tmp_path):
    """Odd-sized image through :class:`BigLama` == LaMa's pipeline written out here with
    numpy: ``pad_img_to_modulo`` (np.pad symmetric to 8) of image and mask, the official
    generator on ``cat(img * (1 - mask), mask)``, crop."""
    ref = _randomize(_official(official, **SMALL), seed=4)
    path = tmp_path / "small.safetensors"
    save_file({f"generator.{k}": v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    arch = {**BIG_LAMA_ARCH, **SMALL}
    method = _small_method(path, arch)
    g = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, 27, 21, generator=g)
    mask = torch.rand(2, 1, 27, 21, generator=g) > 0.5
    got = method.inpaint(apply_mask(image, mask), mask, rng=_rng(2)).image

    def pad_np(a: np.ndarray) -> np.ndarray:  # LaMa's pad_img_to_modulo on [C, H, W]
        h, w = a.shape[-2:]
        return np.pad(a, ((0, 0), (0, -h % 8), (0, -w % 8)), mode="symmetric")

    img_np = np.stack([pad_np(i) for i in image.numpy()])
    mask_np = np.stack([pad_np(m) for m in mask.float().numpy()])
    x = torch.from_numpy(np.concatenate([img_np * (1 - mask_np), mask_np], axis=1))
    with torch.no_grad():
        expected = ref(x)[..., :27, :21]
    assert float((got - expected).abs().max()) <= 1e-5


def _small_method(path: Path, arch: dict) -> BigLama:
    """A :class:`BigLama` on a shrunk generator."""
    return BigLama(checkpoint=str(path), arch=arch)


# --------------------------------------------------------------------------- conventions

@pytest.mark.parametrize(("h", "w", "multiple"), [(27, 21, 8), (5, 3, 8), (16, 16, 8), (1, 2, 8)])
def test_symmetric_padding_equals_numpy(h, w, multiple):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    got = pad_symmetric(x, multiple)
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (0, -h % multiple), (0, -w % multiple)), mode="symmetric")
    np.testing.assert_array_equal(got.numpy(), expected)


def test_grey_images_run_as_rgb_and_are_averaged_back(tmp_path):
    net = _randomize(_ours(**SMALL), seed=6)
    path = tmp_path / "g.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    method = _small_method(path, {**BIG_LAMA_ARCH, **SMALL})
    grey = torch.rand(2, 1, 16, 24, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 16, 24, dtype=torch.bool)
    mask[:, :, 4:10, 5:15] = True
    out = method.inpaint(apply_mask(grey, mask), mask, rng=_rng(2)).image
    rgb = method.inpaint(apply_mask(grey.expand(-1, 3, -1, -1), mask), mask, rng=_rng(2)).image
    assert out.shape == grey.shape
    torch.testing.assert_close(out, rgb.mean(dim=1, keepdim=True))


# --------------------------------------------------------------------------- reading checkpoints safely

class _WritesAFile:
    """Unpickling this runs ``exec``, which writes ``target``: what a hostile checkpoint does."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('pwned')",))


def _lightning_like(state: dict, extra: object) -> dict:
    return {"epoch": 40, "global_step": 1234, "pytorch-lightning_version": "1.2.9",
            "state_dict": {**{f"generator.{k}": v for k, v in state.items()},
                           "discriminator.model0.0.weight": torch.zeros(3)},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
            "hyper_parameters": extra}


def test_a_checkpoint_with_a_hostile_pickle_loads_its_tensors_and_runs_nothing(tmp_path):
    net = _randomize(_ours(**SMALL), seed=7)
    target = tmp_path / "pwned.txt"
    path = tmp_path / "best.ckpt"
    torch.save(_lightning_like(net.state_dict(), _WritesAFile(target)), path)

    tensors = read_lama_checkpoint(path)
    assert not target.exists()  # nothing ran
    assert "generator.model.1.ffc.convl2l.weight" in tensors
    loaded = load_big_lama_generator(path, {**BIG_LAMA_ARCH, **SMALL})
    assert not target.exists()
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # The trap is real: an unrestricted load runs it (so the assertions above can fail).
    torch.load(path, weights_only=False)
    assert target.read_text() == "pwned"


def test_plain_checkpoints_go_through_weights_only_and_safetensors_too(tmp_path):
    net = _randomize(_ours(**SMALL), seed=8)
    torch.save({"state_dict": {f"generator.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "plain.ckpt")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "bare.safetensors"))
    for name in ("plain.ckpt", "bare.safetensors"):
        loaded = load_big_lama_generator(tmp_path / name, {**BIG_LAMA_ARCH, **SMALL})
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())


def test_random_bytes_and_other_models_give_one_clear_line(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="junk.ckpt") as err:
        BigLama(checkpoint=str(junk))
    assert "\n" not in str(err.value)

    other = nn.Sequential(nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8))
    torch.save({"state_dict": {f"generator.model.{k}": v for k, v in other.state_dict().items()}},
               tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match=r"other\.ckpt.*'model\.1\.ffc\.convl2l\.weight' is missing"):
        BigLama(checkpoint=str(tmp_path / "other.ckpt"))

    wider = _ours(ngf=32, n_blocks=18)
    save_file({f"generator.{k}": v.contiguous() for k, v in wider.state_dict().items()}, str(tmp_path / "w.safetensors"))
    with pytest.raises(CheckpointError, match=r"w\.safetensors.*'model\.1\.ffc\.convl2l\.weight' has shape \[32, 4, 7, 7\]"):
        BigLama(checkpoint=str(tmp_path / "w.safetensors"))

    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, tmp_path / "nogen.ckpt")
    with pytest.raises(CheckpointError, match="nogen.ckpt holds no LaMa generator weights"):
        BigLama(checkpoint=str(tmp_path / "nogen.ckpt"))


class _Scripted(nn.Module):
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image * (1 - mask) + 0.25 * mask


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_only_with_allow_torchscript(tmp_path, monkeypatch):
    path = tmp_path / "big-lama.pt"
    torch.jit.script(_Scripted()).save(str(path))
    with pytest.raises(MethodUnavailable, match="TorchScript archive: loading it runs the code") as err:
        BigLama(checkpoint=str(path))
    assert "\n" not in str(err.value)
    with pytest.raises(MethodUnavailable, match="allow_torchscript=True"):
        BigLama.check_available(checkpoint=str(path))
    method = BigLama(checkpoint=str(path), allow_torchscript=True)
    image = torch.rand(1, 3, 13, 10, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 13, 10, dtype=torch.bool)
    mask[..., 2:6, 3:7] = True
    out = method.inpaint(apply_mask(image, mask), mask, rng=_rng(1)).image
    torch.testing.assert_close(out, torch.where(mask, torch.full_like(image, 0.25), image))


def test_missing_weights_name_the_file_and_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("INPAINTBENCH_BIG_LAMA", raising=False)
    with pytest.raises(MethodUnavailable, match=r"INPAINTBENCH_BIG_LAMA.*big-lama\.zip"):
        BigLama()
    with pytest.raises(MethodUnavailable, match="nowhere.ckpt does not exist"):
        BigLama(checkpoint=str(tmp_path / "nowhere.ckpt"))


def test_checking_availability_never_loads_the_checkpoint(tmp_path, monkeypatch):
    from inpaintbench.core.registry import method_registry

    path = tmp_path / "best.ckpt"
    path.write_bytes(b"not read by the availability check")
    monkeypatch.setenv("INPAINTBENCH_BIG_LAMA", str(path))

    def refuse(*args, **kwargs):
        raise AssertionError("availability() loaded the checkpoint")

    monkeypatch.setattr(big_lama, "load_big_lama_generator", refuse)
    monkeypatch.setattr(big_lama_weights, "read_lama_checkpoint", refuse)
    assert method_registry().entry("lama-official").resolve() is BigLama
    assert method_registry().availability("lama-official") == (True, "")
    monkeypatch.setenv("INPAINTBENCH_BIG_LAMA", str(tmp_path / "absent.ckpt"))
    ok, reason = method_registry().availability("lama-official")
    assert not ok and "absent.ckpt" in reason
