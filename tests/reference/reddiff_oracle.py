"""Helpers of the tests that check DPS, PiGDM and RED-diff against the authors' code
(NVlabs/RED-diff in ``../shared/reference/red-diff``: ``algos/{dps,pgdm,reddiff}.py`` on
``algos/ddim.py``), loaded by path from the test files (``--import-mode=importlib``).

The official modules are imported without their packages' ``__init__`` (which pull in hydra,
gdown, lmdb and every algorithm), their ``.cuda()`` / ``.to('cuda')`` calls are kept on the
CPU by patching ``torch.Tensor`` in the test, the degradation ``H`` is built directly (the
masks are not in the repository), and their ``torch.randn_like`` calls are fed the draws our
chain recorded, in the order each loop takes them. Also the box holes those three tests share
(:func:`images`); their tiny random networks are the fixtures of ``conftest.py``.

Importable as ``reddiff_oracle``: ``tests/reference`` is on pytest's ``pythonpath``.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from pathlib import Path

import pytest
import torch

from inpaintbench.core.seeding import SampleRNG

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "red-diff"
_PACKAGES = ("models", "utils", "algos")
#: Image side and diffusion steps of the tiny diffusers network of :func:`pair`.
SIZE, T = 8, 100


def images(n: int = 2, seed: int = 0, size: int = SIZE, *, equal_area: bool = False):
    """``(image [n, 3, size, size] in [0, 1], hole [n, 1, size, size])``: random images and box
    holes at different places, image ``i``'s box ``i`` columns wider unless ``equal_area``
    (deepinv's and PGDM's inpainting operators need the same count of known pixels per image)."""
    image = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    hole = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        widen = 0 if equal_area else i
        hole[i, :, 1 + i % 3:1 + i % 3 + size // 2, 2:2 + size // 2 + widen] = True
    return image, hole


@contextlib.contextmanager
def installed():
    """Within the block, RED-diff's generic package names (``models``, ``utils``, ``algos``) are
    stand-ins on its repository (their ``__init__`` never runs); afterwards every module of
    those names is taken out of ``sys.modules`` and what was there before is put back (other
    reference repositories have packages of the same names). Skips the test with the reason
    when the repository or omegaconf is absent."""
    if not ROOT.is_dir():
        pytest.skip(f"{ROOT} is absent (the official code lives in ../shared/reference beside the checkout)")
    pytest.importorskip("omegaconf", reason="the official RED-diff code imports omegaconf (pip install omegaconf)")

    def ours() -> dict[str, types.ModuleType]:
        return {k: v for k, v in sys.modules.items() if k.split(".")[0] in _PACKAGES}

    saved = ours()
    for key in saved:
        del sys.modules[key]
    for package in _PACKAGES:
        module = types.ModuleType(package)
        module.__path__ = [str(ROOT / package)]
        sys.modules[package] = module
    try:
        yield
    finally:
        for key in ours():
            del sys.modules[key]
        sys.modules.update(saved)


def load(*names: str) -> list[types.ModuleType]:
    """Import ``names`` (e.g. ``"algos.pgdm"``) from RED-diff's repository (inside :func:`installed`)."""
    assert isinstance(sys.modules.get("algos"), types.ModuleType) and \
        getattr(sys.modules["algos"], "__path__", [""])[0] == str(ROOT / "algos"), "call load() inside installed()"
    return [importlib.import_module(n) for n in names]


def keep_on_cpu(monkeypatch) -> None:
    """``.cuda()`` and ``.to('cuda')`` of the official code stay on the CPU."""
    original_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        args = tuple("cpu" if isinstance(a, str) and a.startswith("cuda") else a for a in args)
        if isinstance(kwargs.get("device"), str) and kwargs["device"].startswith("cuda"):
            kwargs["device"] = "cpu"
        return original_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)


def config(algo: str, **overrides):
    """The official ``cfg`` of ``algo`` (``_configs/algo/<algo>.yaml`` with ``overrides``) plus
    the ``exp`` block the algorithms read."""
    from omegaconf import OmegaConf

    algo_cfg = OmegaConf.load(ROOT / "_configs" / "algo" / f"{algo}.yaml")
    algo_cfg = OmegaConf.merge(algo_cfg, overrides)
    exp = OmegaConf.load(ROOT / "_configs" / "exp" / "default.yaml")
    return OmegaConf.create({"algo": algo_cfg, "exp": exp, "classifier": {"classifier_scale": 0.0}})


def diffusion(betas: torch.Tensor):
    """The official ``Diffusion`` on ``betas`` (float32 ``[T]``): its ``alpha(t)`` is then the
    same float32 ``alpha-bar`` our respacing reads (both cumulative products of ``1 - beta``)."""
    (module,) = load("models.diffusion")
    return module.Diffusion(given_betas=betas.to(torch.float32))


def guidance_model(network, betas: torch.Tensor, cfg):
    """The official ``ClassifierGuidanceModel`` around ``network(x, t) -> [B, >=3, H, W]``."""
    (module,) = load("models.classifier_guidance_model")
    return module.ClassifierGuidanceModel(network, None, diffusion(betas), cfg)


def inpainting_h(hole: torch.Tensor, kind: str = "in2"):
    """The official inpainting ``H`` of the masks ``hole`` (bool ``[B, 1, H, W]``, True = hole):
    ``"in2"`` (``Inpainting2``: ``H x`` is ``x`` with zeros in the holes, full size) or ``"inp"``
    (``Inpainting``: ``H x`` is the kept values only; needs equal hole counts)."""
    (deg,) = load("utils.degredations")
    b, _, h, w = hole.shape
    dense = (~hole).expand(b, 3, h, w).reshape(b, -1).float()
    if kind == "in2":
        op = deg.Inpainting2(3, w, dense, "cpu")
    else:
        op = deg.Inpainting(3, w, dense, "cpu")
    op.set_indices(torch.arange(b))
    return op


class RecordingRNG:
    """A :class:`SampleRNG` that records every batch draw it hands out, in order."""

    def __init__(self, rng: SampleRNG):
        self.rng, self.draws = rng, []

    def __len__(self):
        return len(self.rng)

    def __getitem__(self, index):
        return self.rng[index]

    def randn(self, *shape, **kw):
        out = self.rng.randn(*shape, **kw)
        self.draws.append(out.clone())
        return out

    def randn_like(self, x):
        out = self.rng.randn_like(x)
        self.draws.append(out.clone())
        return out


def replay_randn_like(monkeypatch, draws: list[torch.Tensor]) -> list[torch.Tensor]:
    """Make ``torch.randn_like`` hand out ``draws`` in order; returns the list (empty when all
    were used)."""
    queue = list(draws)

    def randn_like(x, *args, **kwargs):
        out = queue.pop(0)
        assert out.shape == x.shape, (out.shape, x.shape)
        return out.clone()

    monkeypatch.setattr(torch, "randn_like", randn_like)
    return queue


def rng(n: int, seed: int = 0) -> SampleRNG:
    """Per-sample generators ``seed, seed + 1, ...``."""
    return SampleRNG([torch.Generator().manual_seed(seed + i) for i in range(n)])
