"""DDRM (``ddrm``) against two independent implementations: the released code in
``../shared/reference/ddrm`` (bahjat-kawar/ddrm ``efficient_generalized_steps`` with its SVD
``Inpainting``) and deepinv's ``DDRM`` (BSD), replaying the same draws on random weights.

* ``chain="official"`` equals ``efficient_generalized_steps`` (its start ``init_y / sigma_T``);
* ``chain="core"`` equals deepinv's ``DDRM`` (start ``sqrt(a_T) x_mod``, the VE-to-VP map), given a
  denoiser that is the same network, on the holes (the last step's known pixels differ by a tie
  rule: at ``sigma = sigma_y = 0`` the released code takes ``x0``, deepinv ``eta_b y + ...``);
* the two differ from each other only through the start (factor ``1 / sqrt(1 - a_T)``).

For inpainting the SVD of the degradation is the mask: the released operator's ``V`` is a
permutation, so a pixel's draw is the released draw at the pixel's spectral index; the
replays below permute the draws accordingly (one tensor per step covers all three released
draws, which fall on disjoint pixel sets).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.conditioning import Step
from inpaintbench.methods.diffusion.denoiser import from_model_space, to_model_space
from inpaintbench.methods.diffusion.solvers.ddrm import DDRM, SpectralUpdate, ve_sigma
from inpaintbench.methods.diffusion.steps import predict_x0

import x0_solver_kit as kit  # tests/reference is on pytest's pythonpath

Replay, import_reference, scene, our_chain = kit.Replay, kit.import_reference, kit.scene, kit.our_chain
no_cuda_moves, tiny_prior = kit.no_cuda_moves, kit.tiny_prior  # fixtures
DDRM_ROOT, CHANNELS = kit.REFERENCE / "ddrm", kit.CHANNELS


def svd_inpainting(ops, hole):
    """The released ``Inpainting`` for one mask, built as ``runners/diffusion.py`` does."""
    missing_r = torch.nonzero(hole[0, 0].reshape(-1)).long().reshape(-1) * CHANNELS
    missing = torch.cat([missing_r + c for c in range(CHANNELS)], dim=0)
    return ops.Inpainting(CHANNELS, hole.shape[-1], missing, "cpu")


class SpectralDraws:
    """Stands in for ``torch`` in ``functions/denoising.py``: its three ``randn_like`` calls per
    step (all coordinates; the 'after' ones; ``randn_like(U_t_y)``) are served from one
    pixel-space draw per step, read at the spectral indices (``H.Vt``)."""

    def __init__(self, H, draws):
        self.H, self.draws, self.calls, self.spectral = H, list(draws), 0, None

    def __getattr__(self, name):
        return getattr(torch, name)

    def randn_like(self, x, **_):
        kind, self.calls = self.calls % 3, self.calls + 1
        if kind == 0:
            self.spectral = self.H.Vt(self.draws.pop(0))
            assert self.spectral.shape == x.shape
            return self.spectral.clone()
        return self.spectral[:, :x.shape[1]].clone()  # kept coordinates come first in V's order


def official_ddrm(monkeypatch, model, betas, gt, hole, *, num_steps, sigma_0, eta, eta_b, seed=11):
    """``efficient_generalized_steps`` on ``gt``'s known pixels. Returns ``(x_0, our draws)``:
    the draws in the suite's pixel order (start first, then one per step) that reproduce it."""
    denoising, ops = import_reference(DDRM_ROOT, ["functions.denoising", "functions.svd_replacement"])
    H = svd_inpainting(ops, hole[:1])
    gen = torch.Generator().manual_seed(seed)
    start = torch.randn(gt.shape, generator=gen)
    steps = [torch.randn(gt.shape, generator=gen) for _ in range(num_steps)]
    monkeypatch.setattr(denoising, "torch", SpectralDraws(H, steps))
    monkeypatch.setattr(denoising, "tqdm", lambda it, **_: it)
    y_0 = H.H(gt)
    skip = len(betas) // num_steps
    seq = range(0, len(betas), skip)
    with torch.no_grad():
        xs, _ = denoising.efficient_generalized_steps(start, seq, model, betas, H, y_0, sigma_0, etaB=eta_b,
                                                      etaA=eta, etaC=eta)
    # the released start uses start's coordinate j for spectral index j: pixel p gets V(start)[p]
    ours_start = H.V(start.reshape(start.shape[0], -1)).reshape(start.shape)
    return xs[-1], [ours_start, *steps]


def test_inpainting_svd_is_the_mask():
    """The released ``Inpainting`` operator's SVD is the mask: ``U = I``, ``V`` a permutation,
    singular values 1 (known) / 0 (holes); ``H``, ``H^+`` equal the suite's operator."""
    from inpaintbench.methods.diffusion.measurement import InpaintingOperator

    (ops,) = import_reference(DDRM_ROOT, ["functions.svd_replacement"])
    image, hole = scene()
    hole = hole[:1].expand_as(hole).contiguous()
    H = svd_inpainting(ops, hole)
    x = torch.randn(image.shape, generator=torch.Generator().manual_seed(3))
    flat = x.reshape(2, -1)
    assert torch.equal(H.U(flat), flat) and torch.equal(H.singulars(), torch.ones(int((~hole[0]).sum()) * CHANNELS))
    assert torch.equal(H.V(H.Vt(flat)), flat)  # a permutation: V V^T = I, exactly
    ours = InpaintingOperator(hole)
    torch.testing.assert_close(H.H_pinv(H.H(flat)).reshape(x.shape), ours.pinv(ours.forward(x)), rtol=0, atol=0)


def test_one_ddrm_step_equals_the_released_step(monkeypatch, no_cuda_moves, tiny_prior):
    """Each step alone, from the released state fed to the network and its draw."""
    unet, scheduler = tiny_prior
    image, hole = scene()
    hole = hole[:1].expand_as(hole).contiguous()
    gt = to_model_space(image)
    inputs = []

    def model(x, t):
        inputs.append(x.clone())
        return unet(x, t).sample

    _, draws = official_ddrm(monkeypatch, model, kit.betas_of(scheduler), gt, hole, num_steps=8, sigma_0=0.1,
                             eta=0.85, eta_b=0.7)
    method = DDRM(num_steps=8, sigma_y=0.1, eta_b=0.7, chain="official", prior=tiny_prior)
    strategy = method.conditioning(gt, hole)
    worst = 0.0
    for k, cur in enumerate(range(7, 0, -1)):
        a, a_prev = method.respacing.alpha_bar(cur), method.respacing.alpha_bar(cur - 1)
        t = method.respacing.timestep(cur)
        x = inputs[k]
        pred = predict_x0(x, method.prior.denoiser(x, torch.full((2,), t)), a, clip_denoised=False)
        step = Step(cur, cur - 1, t, a, a_prev, draws[k + 1], None, k)
        out, _ = strategy.after_step(x, pred, None, step)
        worst = max(worst, float((out - inputs[k + 1]).abs().max()))
    print(f"DDRM one step vs released: max |diff| = {worst:.3g}")
    assert worst <= 1e-5


@pytest.mark.parametrize("sigma_0,eta,eta_b", [(0.0, 0.85, 1.0), (0.1, 0.85, 1.0), (0.3, 0.5, 0.7), (0.05, 1.0, 0.0)])
def test_whole_ddrm_chain_official_equals_efficient_generalized_steps(monkeypatch, no_cuda_moves, tiny_prior,
                                                                      sigma_0, eta, eta_b):
    """Through ``inpaint`` (composited) and as the raw chain."""
    unet, scheduler = tiny_prior
    image, hole = scene()
    hole = hole[:1].expand_as(hole).contiguous()
    gt = to_model_space(image)
    official, draws = official_ddrm(monkeypatch, kit.diffusers_model(unet), kit.betas_of(scheduler), gt, hole,
                                    num_steps=10, sigma_0=sigma_0, eta=eta, eta_b=eta_b)
    method = DDRM(num_steps=10, eta=eta, eta_b=eta_b, sigma_y=sigma_0, chain="official", prior=tiny_prior)
    ours = our_chain(method, gt, hole, draws)
    diff = float((ours.sample - official).abs().max())
    result = method.inpaint(torch.where(hole, 0.0, image), hole, rng=Replay(draws, 2))
    expected = torch.where(hole, from_model_space(official), image)
    print(f"DDRM sigma_0={sigma_0} eta={eta} eta_b={eta_b}: max |ours - released| = {diff:.3g}, {ours.nfe} NFE")
    assert official.abs().max() > 0.1
    assert ours.nfe == 10 and result.stats == {"nfe": 10.0}
    assert diff <= 1e-5 and float((result.image - expected).abs().max()) <= 1e-5


def test_whole_ddrm_chain_on_an_adm_checkpoint_equals_the_released_one(monkeypatch, no_cuda_moves, tmp_path):
    """A tiny ADM with learned variance (the variance channels dropped, ``i * skip`` timesteps)."""
    ref, pt, args, _ = kit.tiny_adm(tmp_path)
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    hole = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    hole[:, :, 6:22, 10:26] = True
    gt = to_model_space(image)
    betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float()
    alphas = torch.cumprod(1 - betas, 0)
    official, draws = official_ddrm(monkeypatch, kit.shrunk_adm(ref, alphas), betas, gt, hole, num_steps=10,
                                    sigma_0=0.1, eta=0.85, eta_b=1.0)
    method = DDRM(model=str(pt), adm=str(args), num_steps=10, sigma_y=0.1, chain="official")
    assert method.respacing.kept == [i * 100 for i in range(10)] and method.prior.denoiser.learn_sigma
    ours = our_chain(method, gt, hole, draws, kit.shrunk_denoiser(method.prior.denoiser, alphas))
    diff = float((ours.sample - official).abs().max())
    print(f"DDRM on a tiny ADM (learned variance): max |ours - released| = {diff:.3g}")
    assert diff <= 1e-5


# ---------------------------------------------------------------- deepinv, the second peer


class VEDenoiser(torch.nn.Module):
    """deepinv's denoiser interface ``D(x, sigma)`` over the suite's network, in model space:
    ``x`` is the variance-exploding state ``x0 + sigma n``; the timestep is the one whose
    ``sqrt(1 - a) / sqrt(a)`` is ``sigma`` (the schedule's levels, called in order);
    ``sigma = 0`` is the identity (no network call)."""

    def __init__(self, method):
        super().__init__()
        self.method, self.index, self.calls = method, method.schedule[0], 0

    def forward(self, x, sigma):
        if sigma == 0:
            return x
        respacing = self.method.respacing
        a = respacing.alpha_bar(self.index)
        assert abs(float(ve_sigma(a)) - float(sigma)) <= 1e-6 * float(sigma)
        x_t = a.sqrt() * x
        t = torch.full((x.shape[0],), respacing.timestep(self.index))
        self.index, self.calls = self.index - 1, self.calls + 1
        return predict_x0(x_t, self.method.prior.denoiser(x_t, t), a, clip_denoised=False).x0_hat


@pytest.mark.parametrize("sigma_y,eta,eta_b", [(0.0, 0.85, 1.0), (0.1, 0.85, 1.0), (0.3, 0.5, 0.7)])
def test_core_chain_equals_deepinv_ddrm(monkeypatch, tiny_prior, sigma_y, eta, eta_b):
    dinv = pytest.importorskip("deepinv", reason="deepinv (BSD) is the second DDRM peer: pip install deepinv")
    import deepinv.sampling.diffusion as dd

    image, hole = scene()
    hole = hole[:1].expand_as(hole).contiguous()  # deepinv's DDRM stacks one physics.mask per image
    gt = to_model_space(image)
    method = DDRM(num_steps=10, eta=eta, eta_b=eta_b, sigma_y=sigma_y, prior=tiny_prior)
    known = (~hole).float().expand_as(gt)
    physics = dinv.physics.Inpainting(img_size=tuple(gt.shape[1:]), mask=known[:1].clone(),
                                      noise_model=dinv.physics.GaussianNoise(sigma=sigma_y))
    gen = torch.Generator().manual_seed(7)
    draws = [torch.randn(gt.shape, generator=gen) for _ in range(11)]
    queue = [d * 2**0.5 for d in draws]  # deepinv draws N(0, 1/2): the replay undoes its 1/sqrt(2)
    fake = SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    fake.randn_like = lambda x, **_: queue.pop(0)
    monkeypatch.setattr(dd, "torch", fake)
    sigmas = [float(ve_sigma(method.respacing.alpha_bar(i))) for i in method.schedule[:-1]] + [0.0]
    denoiser = VEDenoiser(method)
    theirs = dd.DDRM(denoiser, sigmas=np.array(sigmas), eta=eta, etab=eta_b)(known * gt, physics)
    ours = our_chain(method, gt, hole, draws).sample
    assert denoiser.calls == 10 and not queue
    region = hole.expand_as(gt) if sigma_y == 0 else torch.ones_like(gt, dtype=torch.bool)
    diff = float((ours - theirs)[region].abs().max())
    print(f"DDRM core chain vs deepinv (sigma_y={sigma_y}, eta={eta}, eta_b={eta_b}): max |diff| = {diff:.3g}")
    assert diff <= 1e-5


def test_core_and_official_chains_differ_only_through_the_start(tiny_prior):
    image, hole = scene()
    gt = to_model_space(image)
    x = torch.randn(gt.shape, generator=torch.Generator().manual_seed(0))
    a = torch.tensor(4.0e-5)
    step = Step(9, 8, 999, a, torch.tensor(0.5), x, None, 0)
    core_start = SpectralUpdate(gt, hole).before_model(x, step)
    official_start = SpectralUpdate(gt, hole, official=True).before_model(x, step)
    torch.testing.assert_close(official_start * (1 - a).sqrt(), core_start, rtol=1e-6, atol=1e-6)
    assert not torch.equal(core_start, official_start)
    later = Step(8, 7, 900, a, a, x, None, 1)
    assert SpectralUpdate(gt, hole).before_model(x, later) is x


# ---------------------------------------------------------------- the method


@pytest.mark.parametrize("kwargs,match", [
    ({"eta": 1.5}, "eta must be a number in"),
    ({"eta_b": -0.5}, "eta_b must be a number in"),
    ({"sigma_y": -0.1}, "sigma_y must be a finite number >= 0"),
    ({"sigma_y": float("nan")}, "sigma_y must be a finite number >= 0"),
    ({"num_steps": 1001}, "num_steps"),
])
def test_bad_options_are_one_input_error_line(tiny_prior, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        DDRM(prior=tiny_prior, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_mask_and_other_tasks_are_input_errors(tiny_prior):
    from inpaintbench.core.tasks import SuperResolution

    image, _ = scene()
    method = DDRM(num_steps=2, prior=tiny_prior)
    rng = SampleRNG([torch.Generator().manual_seed(i) for i in range(2)])
    with pytest.raises(InputError, match="needs the hole mask"):
        method.inpaint(image, None, rng=rng)
    with pytest.raises(InputError, match="not 'super-resolution'"):
        method.restore(SuperResolution(2, tuple(image.shape)).observe(image), rng)


def test_registered_at_100_nfe():
    from inpaintbench.core.registry import method_registry

    entry = method_registry().entry("ddrm")
    assert entry.resolve() is DDRM and entry.defaults["num_steps"] == 100 and "100 NFE" in entry.summary
