"""PiGDM (``pigdm``) against the authors' code (RED-diff's ``algos/pgdm.py``): one step and whole
chains with replayed noise, on a tiny random diffusers UNet (the core's respacing) and on a
tiny random ADM checkpoint with learned variance loaded through ``model=``/``adm=``
(guided-diffusion's respacing); the paper's noisy guidance (Eq. 8) against a dense-matrix
evaluation; batch invariance; bad options."""

from __future__ import annotations

import functools

import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.registry import method_registry
from inpaintbench.methods.diffusion.measurement import InpaintingOperator
from inpaintbench.methods.diffusion.solvers.pigdm import PiGDM, PiGDMGuidance
from inpaintbench.methods.diffusion.steps import predict_x0

import reddiff_oracle as oracle
from reddiff_oracle import SIZE, T

#: PGDM's inpainting operator needs the same count of known pixels in every image.
images = functools.partial(oracle.images, equal_area=True)


def official_chain(monkeypatch, network, betas, ts, x_model, hole, draws, *, kind="inp", **algo):
    """The states ``xt_s`` (clean first) of the authors' PGDM on ``ts`` with ``draws`` replayed."""
    with oracle.installed(), monkeypatch.context() as patch:
        (pgdm,) = oracle.load("algos.pgdm")
        cfg = oracle.config("pgdm", deg=kind, **algo)
        H = oracle.inpainting_h(hole, kind)
        patch.setattr(pgdm, "build_degredation_model", lambda cfg: H)
        oracle.keep_on_cpu(patch)
        left = oracle.replay_randn_like(patch, draws)
        algo_ = pgdm.PGDM(oracle.guidance_model(network, betas, cfg), cfg)
        xt_s, _ = algo_.sample(x_model, None, ts, y_0=H.H(x_model))
        assert not left, "every draw of our chain was used by the official one"
    return xt_s


def ours_chain(method, image, hole, seed=0):
    """Our states (model space, after every step) and the draws the chain took."""
    recorder = oracle.RecordingRNG(oracle.rng(image.shape[0], seed))
    states = []
    method.sample_chain(image.masked_fill(hole, 0.5), hole, rng=recorder,
                        callback=lambda record: states.append(record.sample))
    return states, recorder.draws


@pytest.mark.parametrize("options", [
    dict(eta=0.0, awd=True),
    dict(eta=1.0, awd=True, grad_term_weight=0.7),
    dict(eta=0.5, awd=False),
    dict(eta=1.0, awd=False, known_x0=True),
])
def test_whole_chain_equals_official(monkeypatch, pair, options):
    """10 DDIM steps of our PiGDM (init A^+y noised, the authors' start) = ``PGDM.sample``,
    every intermediate state (the first state is one step of each: a wrong step shows there)."""
    unet, scheduler = pair
    method = PiGDM(num_steps=10, prior=(unet, scheduler), **options)
    image, hole = images(2)
    states, draws = ours_chain(method, image, hole)
    algo = {"eta": options["eta"], "awd": options["awd"], "grad_term_weight": method.weight}
    ts = list(range(0, T, T // 10))
    kind = "in2" if options.get("known_x0") else "inp"
    ref = official_chain(monkeypatch, lambda x, t: unet(x, t).sample, scheduler.betas, ts, image * 2 - 1, hole,
                         draws, kind=kind, **algo)
    ref_states = list(reversed(ref))[1:]  # after each step, noisiest first
    assert len(ref_states) == len(states) == 10
    worst = max(float((a - b).abs().max()) for a, b in zip(states, ref_states))
    assert worst <= 1e-5, worst
    first = float((states[0] - ref_states[0]).abs().max())
    assert first <= 1e-6, first


def test_the_guidance_is_not_zero(pair):
    """The guidance moves the chain (a test of equality with a do-nothing guidance would pass)."""
    unet, scheduler = pair
    image, hole = images(2)
    guided, _ = ours_chain(PiGDM(num_steps=5, prior=(unet, scheduler)), image, hole)
    plain, _ = ours_chain(PiGDM(num_steps=5, prior=(unet, scheduler), grad_term_weight=0.0), image, hole)
    assert (guided[-1] - plain[-1]).abs().max() > 1e-2


def test_adm_checkpoint_chain_equals_official(monkeypatch, tiny_adm_files):
    """``model=``/``adm=``: guided-diffusion's respaced timesteps given to the official loop as
    its ``ts``; the learned variance channels are ignored by both (the code keeps ``[:, :3]``).
    Our alpha-bar is float64 (guided-diffusion's), the official float32, and a random ADM's
    ``x0_hat = (x_t - sqrt(1 - a) eps) / sqrt(a)`` grows to ~1e3 at ``a ~ 2e-5``: the states agree
    to 1e-5 relative to their size (measured 1.8e-7)."""
    pt, args = tiny_adm_files
    method = PiGDM(num_steps=8, model=pt, adm=args, eta=1.0)
    image, hole = images(2, seed=3, size=16)
    states, draws = ours_chain(method, image, hole)
    net = method.prior.denoiser.unet
    ts = list(method.respacing.kept)
    betas = method.prior.betas64.float()
    ref = official_chain(monkeypatch, lambda x, t: net(x, t), betas, ts, image * 2 - 1, hole, draws, eta=1.0,
                         grad_term_weight=method.weight)
    ref_states = list(reversed(ref))[1:]
    worst = max(float((a - b).abs().max() / b.abs().max().clamp_min(1)) for a, b in zip(states, ref_states))
    assert worst <= 1e-5, worst


def test_noisy_guidance_equals_the_dense_formula(pair):
    """Eq. 8 times r_t^2: ``g = r^2 J^T A^T (r^2 A A^T + s^2 I)^{-1} (y - A x0_hat)`` with the
    measurement as an explicit selection matrix (A A^T = I on the measured pixels), ``J`` the
    denoiser's Jacobian by ``torch.autograd.functional.jacobian``."""
    unet, scheduler = pair
    image, hole = images(1)
    alpha_bar = torch.tensor(0.3)
    x_t = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    y_full = image * 2 - 1
    operator = InpaintingOperator(hole)

    def x0_of(x):
        from inpaintbench.methods.diffusion.denoiser import UNet2DDenoiser
        out = UNet2DDenoiser(unet)(x, torch.full((1,), 30, dtype=torch.long))
        return predict_x0(x, out, alpha_bar, clip_denoised=False).x0_hat

    sigma_y = 0.4
    strategy = PiGDMGuidance(operator.forward(y_full), operator, 1.0, sigma_y)
    with torch.enable_grad():
        x = x_t.clone().requires_grad_(True)
        g = strategy.guidance(x, x0_of(x), alpha_bar)
    n = x_t.numel()
    keep = (~hole).expand_as(x_t).flatten().nonzero().flatten()
    A = torch.eye(n)[keep]  # [k, n]: picks the measured pixels
    J = torch.autograd.functional.jacobian(lambda v: x0_of(v.view_as(x_t)).flatten(), x_t.flatten())
    r2 = 1 - alpha_bar
    residual = A @ y_full.flatten() - A @ x0_of(x_t).flatten()
    dense = r2 * J.T @ A.T @ torch.linalg.solve(r2 * A @ A.T + sigma_y ** 2 * torch.eye(len(keep)), residual)
    assert float((g.flatten() - dense).abs().max()) <= 1e-5
    noiseless = PiGDMGuidance(operator.forward(y_full), operator, 1.0, 0.0)
    with torch.enable_grad():
        x = x_t.clone().requires_grad_(True)
        g0 = noiseless.guidance(x, x0_of(x), alpha_bar)
    torch.testing.assert_close(g0 * (r2 / (r2 + sigma_y ** 2)), g, atol=1e-6, rtol=1e-6)


def test_batch_of_n_equals_n_single_calls(pair):
    unet, scheduler = pair
    method = PiGDM(num_steps=6, prior=(unet, scheduler))
    image, hole = images(3, seed=2)
    batched = method.inpaint(image.masked_fill(hole, 0.0), hole, rng=oracle.rng(3))
    assert batched.stats == {"nfe": 6.0, "vjp": 6.0}
    for i in range(3):
        single = method.inpaint(image[i:i + 1].masked_fill(hole[i:i + 1], 0.0), hole[i:i + 1],
                                rng=oracle.rng(1, seed=i)).image
        torch.testing.assert_close(batched.image[i:i + 1], single, atol=1e-5, rtol=0)


@pytest.mark.parametrize("options, match", [
    (dict(sigma_y=-0.1), "sigma_y"), (dict(eta=1.5), "eta"), (dict(grad_term_weight=-1.0), "grad_term_weight"),
    (dict(awd="yes"), "awd"), (dict(init="zeros"), "init"), (dict(num_steps=0), "num_steps"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_options_are_one_input_error_line(pair, options, match):
    with pytest.raises(InputError, match=match) as info:
        PiGDM(prior=pair, **options)
    assert "\n" not in str(info.value)


def test_tasks_it_does_not_define_are_refused(pair):
    from inpaintbench.core.tasks import SuperResolution

    method = PiGDM(num_steps=2, prior=pair)
    image, hole = images(1)
    with pytest.raises(InputError, match="super-resolution") as info:
        method.restore(SuperResolution(2, tuple(image.shape)).observe(image), oracle.rng(1))
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="mask"):
        method.inpaint(image, None, rng=oracle.rng(1))


def test_catalogue_default_is_about_100_nfe():
    entry = method_registry().entry("pigdm")
    assert entry.defaults.get("num_steps", 100) == 100
