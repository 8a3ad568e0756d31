"""Shared pieces of the x0-space solvers' oracle tests (``test_ddnm.py``, ``test_ddrm.py``,
``test_diffpir.py``; not a test file): importing the released code, recording and replaying
draws, a random network shaped like a denoiser, a tiny ADM checkpoint.

Imported as ``x0_solver_kit``: ``tests/reference`` is on pytest's ``pythonpath`` (pyproject.toml).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from inpaintbench.methods.diffusion import core

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
GD_ROOT = REFERENCE / "guided-diffusion"
SIZE, CHANNELS = 16, 3


def import_reference(root: Path, names: list[str], prefixes=("functions", "guided_diffusion")):
    """Import ``names`` from ``root`` and take its generic package names (``functions``,
    ``guided_diffusion``) out of ``sys.modules`` again, so other repositories' same-named
    packages never mix with them."""
    if not root.is_dir():
        pytest.skip(f"{root} is absent (the official code lives in ../shared/reference beside the checkout)")

    def ours():
        return {k: v for k, v in sys.modules.items() if k.split(".")[0] in prefixes}

    saved = ours()
    for key in saved:
        del sys.modules[key]
    sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(n) for n in names]
    except ImportError as err:
        pytest.skip(f"the reference code needs a package missing here: {err}")
    finally:
        sys.path.remove(str(root))
        for key in ours():
            del sys.modules[key]
        sys.modules.update(saved)


class Recorder:
    """Stands in for ``torch`` inside a reference module: ``randn``/``randn_like`` draw from a
    seeded generator and record every draw; everything else is torch."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.draws: list[torch.Tensor] = []

    def __getattr__(self, name):
        return getattr(torch, name)

    def randn(self, *shape, **_):
        out = torch.randn(*shape, generator=self.gen)
        self.draws.append(out.clone())
        return out

    def randn_like(self, x, **_):
        return self.randn(*x.shape)


class Replay:
    """A SampleRNG look-alike handing out recorded whole-batch draws in order."""

    def __init__(self, draws, batch):
        self.draws, self.batch = list(draws), batch

    def __len__(self):
        return self.batch

    def randn(self, *shape, dtype=torch.float32):
        out = self.draws.pop(0)
        assert tuple(out.shape[1:]) == tuple(shape)
        return out

    def randn_like(self, x):
        out = self.draws.pop(0)
        assert out.shape == x.shape
        return out

    def __getitem__(self, index):
        assert index == slice(0, self.batch)
        return self


@pytest.fixture
def no_cuda_moves(monkeypatch):
    """``Tensor.to('cuda')`` of the released loops becomes a no-op on this CPU machine."""
    original = torch.Tensor.to

    def to(self, *args, **kwargs):
        if args and isinstance(args[0], str) and args[0].startswith("cuda"):
            return self
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)


class DenoiserLike(torch.nn.Module):
    """A random network shaped like a denoiser: ``eps = sqrt(1 - a_t) x_t + sqrt(a_t) r(x_t, t)``
    with ``r`` a tiny random UNet, so ``x0_hat = sqrt(a_t) x_t - sqrt(1 - a_t) r`` stays bounded
    (an unclipped solver's states would otherwise grow to ~1e2 on random weights, where float32
    rounding alone is 1e-5). The diffusers output interface (``.sample``, ``.config``)."""

    def __init__(self, unet, alphas_cumprod):
        super().__init__()
        self.unet, self.config = unet, unet.config
        self.register_buffer("alphas_cumprod", alphas_cumprod.clone())

    def forward(self, x, t):
        a = self.alphas_cumprod[t.long()].view(-1, 1, 1, 1)
        return SimpleNamespace(sample=(1 - a).sqrt() * x + a.sqrt() * self.unet(x, t).sample)


@pytest.fixture(scope="module")
def tiny_prior():
    """A tiny randomly initialised 3x16x16 diffusers UNet inside :class:`DenoiserLike` and the
    1000-step linear scheduler (the MNIST prior's), as a ``prior=`` pair."""
    from inpaintbench.methods.diffusion.ddpm import build_scheduler, build_unet
    from inpaintbench.methods.training.init import seeded_init_

    unet = build_unet(SIZE, CHANNELS, (16, 16), 1, (False, False), False, 8)
    seeded_init_(unet, 3)
    # the zero-initialised output layers would make r = 0: give every tensor a random value
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in unet.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.15)
    scheduler = build_scheduler()
    return DenoiserLike(unet.eval(), scheduler.alphas_cumprod).eval(), scheduler


def scene(batch=2, seed=1):
    """``(image [0, 1], hole)``: random RGB images and a box hole plus a per-image row."""
    image = torch.rand(batch, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    hole = torch.zeros(batch, 1, SIZE, SIZE, dtype=torch.bool)
    hole[:, :, 3:11, 5:13] = True
    hole[-1, :, 0, :] = True
    return image, hole



def diffusers_model(unet):
    """The released loops call ``model(x, t)`` and read the eps tensor."""
    return lambda x, t: unet(x, t).sample


def betas_of(scheduler):
    """The betas the released loop gets: float32, as ``torch.from_numpy(betas).float()``."""
    return scheduler.betas.to(torch.float32)


def our_chain(method, gt, hole, draws, denoiser=None):
    """The suite's chain for ``method`` from the recorded draws: what ``sample_chain`` runs
    (``denoiser`` replaces the method's network when given)."""
    strategy = method.conditioning(gt, hole)
    return core.sample(denoiser or method.prior.denoiser, method.respacing, method.schedule,
                       Replay(draws, gt.shape[0]), guidance=strategy, eta=method.eta,
                       clip_denoised=method.clip_denoised)


def shrink(eps, x, t, alphas_cumprod):
    """:class:`DenoiserLike`'s map on a network's eps output."""
    a = alphas_cumprod[t.long()].view(-1, 1, 1, 1)
    return (1 - a).sqrt() * x + a.sqrt() * eps


def tiny_adm(tmp_path: Path, seed: int = 2):
    """A tiny ADM with learned variance: guided-diffusion's official ``UNetModel`` on random
    weights saved as a ``.pt`` with its args file. Returns ``(model, pt, args, config)``."""
    from inpaintbench.methods.diffusion.adm_config import ADMConfig

    config = ADMConfig(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2",
                       attention_resolutions="16", num_head_channels=16, learn_sigma=True, resblock_updown=True,
                       use_scale_shift_norm=True)
    (su,) = import_reference(GD_ROOT, ["guided_diffusion.script_util"], prefixes=("guided_diffusion",))
    names = ("image_size", "num_channels", "num_res_blocks", "channel_mult", "learn_sigma", "class_cond",
             "use_checkpoint", "attention_resolutions", "num_heads", "num_head_channels", "num_heads_upsample",
             "use_scale_shift_norm", "dropout", "resblock_updown", "use_fp16", "use_new_attention_order")
    ref = su.create_model(**{k: getattr(config, k) for k in names})
    gen = torch.Generator().manual_seed(seed)
    ref.load_state_dict({k: torch.randn(v.shape, generator=gen) * 0.2 for k, v in ref.state_dict().items()})
    ref.eval()
    pt = tmp_path / "tiny.pt"
    torch.save(ref.state_dict(), pt)
    args = tmp_path / "args.json"
    args.write_text(json.dumps(config.as_dict()))
    return ref, pt, args, config


def shrunk_adm(ref, alphas_cumprod):
    """``model(x, t)`` of the released loops: ``ref``'s 6 channels with the eps part made
    denoiser-like (:func:`shrink`)."""

    def model(x, t):
        out = ref(x, t)
        return torch.cat([shrink(out[:, :3], x, t, alphas_cumprod), out[:, 3:]], 1)

    return model


def shrunk_denoiser(network, alphas_cumprod):
    """The suite's denoiser ``network`` with :func:`shrink` on its eps (learned ``v`` kept)."""

    def denoiser(x, t):
        out = network(x, t)
        return out._replace(eps=shrink(out.eps, x, t, alphas_cumprod))

    return denoiser
