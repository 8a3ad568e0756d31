"""DPS (``dps``) against two independent implementations: the authors' re-implementation in
RED-diff (``algos/dps.py``, ``original=True``: chains with replayed noise on a tiny diffusers
UNet and on a tiny ADM checkpoint) and deepinv's ``DPSDataFidelity`` (the guidance gradient
``grad ||A D(x) - y||`` with the clip to ``[-1, 1]``); the batch-wide norm of DPS's released
code against our per-image norm (equal for one image, different for several); counters, bad
options."""

from __future__ import annotations


import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.methods.diffusion.conditioning import Step
from inpaintbench.methods.diffusion.denoiser import UNet2DDenoiser
from inpaintbench.methods.diffusion.measurement import InpaintingOperator
from inpaintbench.methods.diffusion.solvers.dps import DPS, DPSGuidance
from inpaintbench.methods.diffusion.steps import predict_x0

import reddiff_oracle as oracle
from reddiff_oracle import SIZE, T, images


def ours_chain(method, image, hole, seed=0):
    recorder = oracle.RecordingRNG(oracle.rng(image.shape[0], seed))
    states = []
    method.sample_chain(image.masked_fill(hole, 0.5), hole, rng=recorder,
                        callback=lambda record: states.append(record.sample))
    return states, recorder.draws


def official_chain(monkeypatch, network, betas, ts, x_model, hole, draws, **algo):
    """The authors' DPS (``original=True``: step ``w grad ||r||^2 / ||r||``, per image) on ``ts``."""
    with oracle.installed(), monkeypatch.context() as patch:
        (dps,) = oracle.load("algos.dps")
        cfg = oracle.config("dps", deg="in2", original=True, **algo)
        H = oracle.inpainting_h(hole, "in2")
        patch.setattr(dps, "build_degredation_model", lambda cfg: H)
        oracle.keep_on_cpu(patch)
        left = oracle.replay_randn_like(patch, draws)
        xt_s, _ = dps.DPS(oracle.guidance_model(network, betas, cfg), cfg).sample(x_model, None, ts, y_0=H.H(x_model))
        assert not left
    return list(reversed(xt_s))[1:]


@pytest.mark.parametrize("eta, weight", [(0.0, 0.1), (0.5, 0.3), (1.0, 1.0)])
def test_whole_chain_equals_reddiff_dps(monkeypatch, pair, eta, weight):
    """``zeta = 2 w``: the code's ``w grad ||r||^2 / ||r||`` is ``2 w grad ||r||``. Our DPS with the
    code's start (``init="pinv"``) and no clip equals it at every state (batch of 2 with
    different residuals: both norms are per image)."""
    unet, scheduler = pair
    method = DPS(num_steps=10, prior=(unet, scheduler), zeta=2 * weight, eta=eta, init="pinv", clip_denoised=False)
    image, hole = images(2)
    states, draws = ours_chain(method, image, hole)
    ref = official_chain(monkeypatch, lambda x, t: unet(x, t).sample, scheduler.betas, list(range(0, T, T // 10)),
                         image * 2 - 1, hole, draws, eta=eta, grad_term_weight=weight)
    assert len(ref) == len(states) == 10
    assert float((states[0] - ref[0]).abs().max()) <= 1e-6
    worst = max(float((a - b).abs().max()) for a, b in zip(states, ref))
    assert worst <= 1e-5, worst


def test_adm_checkpoint_chain_equals_reddiff_dps(monkeypatch, tiny_adm_files):
    """``model=``/``adm=`` with guided-diffusion's respacing given to the official loop as ``ts``
    (DDIM, ``eta = 0``: the learned variance is not used by either). float64 vs float32
    alpha-bar on states of size ~1e3: compared relative to their size."""
    pt, args = tiny_adm_files
    method = DPS(num_steps=8, model=pt, adm=args, zeta=0.2, eta=0.0, init="pinv", clip_denoised=False)
    image, hole = images(2, seed=3, size=16)
    states, draws = ours_chain(method, image, hole)
    net = method.prior.denoiser.unet
    ref = official_chain(monkeypatch, lambda x, t: net(x, t), method.prior.betas64.float(),
                         list(method.respacing.kept), image * 2 - 1, hole, draws, eta=0.0, grad_term_weight=0.1)
    worst = max(float((a - b).abs().max() / b.abs().max().clamp_min(1)) for a, b in zip(states, ref))
    assert worst <= 1e-5, worst


def _one_correction(unet, x_t, y, hole, zeta, alpha_bar, timestep, clip=True):
    """Our DPS correction ``x_{t-1} - x'_{t-1}`` of one step at ``x_t`` (``[B, C, H, W]``)."""
    operator = InpaintingOperator(hole)
    strategy = DPSGuidance(operator.forward(y), operator, zeta)
    denoiser = UNet2DDenoiser(unet)
    with torch.enable_grad():
        x = x_t.clone().requires_grad_(True)
        out = denoiser(x, torch.full((x.shape[0],), timestep, dtype=torch.long))
        pred = predict_x0(x, out, alpha_bar, clip_denoised=clip)
        step = Step(1, 0, timestep, alpha_bar, alpha_bar, torch.zeros_like(x), None, 0)
        corrected, _ = strategy.after_step(x, pred, torch.zeros_like(x), step)
    assert strategy.vjps == 1
    return corrected


def test_guidance_equals_deepinv_dps_data_fidelity(pair):
    """deepinv's DPS guidance ``weight * grad_x sum_i ||A clip(D(x)) - y||_i`` with deepinv's own
    inpainting physics, its denoiser our ``x0_hat`` at the step's level: ``-zeta`` times it is
    our correction, per image, for a batch of 3 with different masks."""
    dinv = pytest.importorskip("deepinv", reason="deepinv is not installed (pip install deepinv)")
    unet, scheduler = pair
    image, hole = images(3, seed=4)
    y = image * 2 - 1
    alpha_bar, timestep = scheduler.alphas_cumprod[40], 40
    x_t = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 1.5
    zeta = 0.7
    ours = _one_correction(unet, x_t, y, hole, zeta, alpha_bar, timestep)

    denoiser = UNet2DDenoiser(unet)

    def x0_of(x, sigma, *args, **kwargs):  # deepinv's Denoiser call signature
        out = denoiser(x, torch.full((x.shape[0],), timestep, dtype=torch.long))
        return predict_x0(x, out, alpha_bar, clip_denoised=False).x0_hat

    physics = dinv.physics.Inpainting(img_size=(3, SIZE, SIZE), mask=(~hole).float().expand(3, 3, SIZE, SIZE))
    fidelity = dinv.sampling.DPSDataFidelity(denoiser=x0_of, clip=(-1.0, 1.0), weight=zeta)
    grad = fidelity.grad(x_t.clone(), physics.A(y), physics, torch.tensor(1.0))
    assert float(grad.abs().max()) > 1e-3
    torch.testing.assert_close(ours, -grad, atol=1e-6, rtol=1e-5)


def _batch_wide_correction(unet, x_t, y, hole, zeta, alpha_bar, timestep):
    """DPS's released ``PosteriorSampling.grad_and_value``: ``torch.linalg.norm`` of the whole
    batch's residual, differentiated w.r.t. the batch (written out here: the DPS repository
    is not among the references)."""
    denoiser = UNet2DDenoiser(unet)
    with torch.enable_grad():
        x = x_t.clone().requires_grad_(True)
        out = denoiser(x, torch.full((x.shape[0],), timestep, dtype=torch.long))
        x0 = predict_x0(x, out, alpha_bar, clip_denoised=True).x0_hat
        norm = torch.linalg.norm(y * (~hole) - x0 * (~hole))
        (grad,) = torch.autograd.grad(norm, x)
    return -zeta * grad


def test_batch_wide_norm_of_the_released_code_equals_ours_for_one_image_only(pair):
    unet, scheduler = pair
    image, hole = images(2, seed=5)
    y = image * 2 - 1
    alpha_bar = scheduler.alphas_cumprod[60]
    x_t = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    ours = _one_correction(unet, x_t, y, hole, 1.0, alpha_bar, 60)
    wide = _batch_wide_correction(unet, x_t, y, hole, 1.0, alpha_bar, 60)
    for i in range(2):
        single_ours = _one_correction(unet, x_t[i:i + 1], y[i:i + 1], hole[i:i + 1], 1.0, alpha_bar, 60)
        single_wide = _batch_wide_correction(unet, x_t[i:i + 1], y[i:i + 1], hole[i:i + 1], 1.0, alpha_bar, 60)
        torch.testing.assert_close(single_ours, single_wide, atol=1e-6, rtol=1e-5)  # one image: the same
        torch.testing.assert_close(ours[i:i + 1], single_ours, atol=1e-6, rtol=1e-5)  # ours: batch-invariant
    # the batch-wide norm scales image i's step by ||r_i|| / ||r||: not batch-invariant
    assert float((wide - ours).abs().max()) > 1e-2 * float(ours.abs().max())


def test_output_counters_known_pixels_and_batch_invariance(pair):
    unet, scheduler = pair
    method = DPS(num_steps=6, prior=(unet, scheduler))
    image, hole = images(3, seed=2)
    observed = image.masked_fill(hole, 0.0)
    result = method.inpaint(observed, hole, rng=oracle.rng(3))
    assert result.stats == {"nfe": 6.0, "vjp": 6.0}
    assert torch.equal(result.image[~hole.expand_as(image)], image[~hole.expand_as(image)])
    for i in range(3):
        single = method.inpaint(observed[i:i + 1], hole[i:i + 1], rng=oracle.rng(1, seed=i)).image
        torch.testing.assert_close(result.image[i:i + 1], single, atol=1e-5, rtol=0)
    chunked = DPS(num_steps=6, prior=(unet, scheduler), batch_size=2).inpaint(observed, hole, rng=oracle.rng(3))
    torch.testing.assert_close(chunked.image, result.image, atol=1e-5, rtol=0)
    assert chunked.stats == result.stats


def test_learned_variance_is_used_at_eta_one(tiny_adm_files):
    """DPS's code samples with guided-diffusion's learned-range variance: with a learn_sigma
    checkpoint the eta = 1 proposal differs from the fixed-variance one."""
    pt, args = tiny_adm_files
    image, hole = images(1, seed=1, size=16)
    outs = []
    for eta in (1.0, 0.999999):
        method = DPS(num_steps=4, model=pt, adm=args, eta=eta, zeta=0.1)
        records = []
        method.sample_chain(image.masked_fill(hole, 0.5), hole, rng=oracle.rng(1),
                            callback=lambda r: records.append(r.proposal))
        outs.append(records[0])
    assert float((outs[0] - outs[1]).abs().max()) > 1e-3


@pytest.mark.parametrize("options, match", [
    (dict(zeta=0.0), "zeta"), (dict(zeta=float("nan")), "zeta"), (dict(eta=-0.1), "eta"),
    (dict(init="pinv2"), "init"), (dict(clip_denoised=1), "clip_denoised"), (dict(num_steps=1.5), "num_steps"),
    (dict(batch_size=-1), "batch_size"),
])
def test_bad_options_are_one_input_error_line(pair, options, match):
    with pytest.raises(InputError, match=match) as info:
        DPS(prior=pair, **options)
    assert "\n" not in str(info.value)


def test_no_sigma_y_option(pair):
    with pytest.raises(TypeError):
        DPS(prior=pair, sigma_y=0.1)


def test_tasks_it_does_not_define_are_refused(pair):
    from inpaintbench.core.tasks import SuperResolution

    method = DPS(num_steps=2, prior=pair)
    image, hole = images(1)
    with pytest.raises(InputError, match="super-resolution"):
        method.restore(SuperResolution(2, tuple(image.shape)).observe(image), oracle.rng(1))
    with pytest.raises(InputError, match="mask"):
        method.inpaint(image, None, rng=oracle.rng(1))
