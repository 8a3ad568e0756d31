"""RED-diff (``red-diff``) against the authors' code (RED-diff's ``algos/reddiff.py``, Adam on
``mu``): one step (the loss, the SNR weighting, one Adam update) and whole chains with replayed
noise on a tiny diffusers UNet and on a tiny ADM checkpoint; the batch-wide mean of the code
against our per-image mean (equal for one image; ours batch-invariant); counters, bad options."""

from __future__ import annotations


import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.registry import method_registry
from inpaintbench.methods.diffusion.core import sample
from inpaintbench.methods.diffusion.solvers.reddiff import DENOISE_TERM_WEIGHTS, REDDiff

import reddiff_oracle as oracle
from reddiff_oracle import T, images


def official_draws(ours: list[torch.Tensor], steps: int, sigma_x0: float) -> list[torch.Tensor]:
    """Our draws (start, then per step ``z`` and, with ``sigma_x0 > 0``, ``n0``) in the order the
    official loop takes them (per step ``noise_x0`` then ``noise_xt``; no start draw)."""
    per_step = 2 if sigma_x0 > 0 else 1
    out = []
    for k in range(steps):
        z = ours[1 + k * per_step]
        n0 = ours[2 + k * per_step] if sigma_x0 > 0 else torch.zeros_like(z)  # unused at sigma_x0 = 0
        out += [n0, z]
    assert len(ours) == 1 + steps * per_step
    return out


def official(monkeypatch, network, betas, ts, x_model, hole, draws, **algo):
    """``(x0_pred, mu, last gradient of mu)`` of the authors' ``REDDIFF.sample`` on ``ts`` with
    ``draws`` replayed (``in2``: ``H x`` is the masked image at full size, as our operator)."""
    with oracle.installed(), monkeypatch.context() as patch:
        (reddiff,) = oracle.load("algos.reddiff")
        cfg = oracle.config("reddiff", deg="in2", **algo)
        H = oracle.inpainting_h(hole, "in2")
        patch.setattr(reddiff, "build_degredation_model", lambda cfg: H)
        oracle.keep_on_cpu(patch)
        left = oracle.replay_randn_like(patch, draws)
        x0, mu = reddiff.REDDIFF(oracle.guidance_model(network, betas, cfg), cfg).sample(
            x_model, None, ts, y_0=H.H(x_model))
        assert not left
    return x0.detach(), mu.detach(), mu.grad.detach()


def ours(method, image, hole, schedule=None, seed=0):
    """``(output x0 in model space, final mu, draws, last gradient of mu)`` of our RED-diff on
    ``schedule`` (default: the method's)."""
    recorder = oracle.RecordingRNG(oracle.rng(image.shape[0], seed))
    y = (image * 2 - 1).masked_fill(hole, 0.0)
    strategy = method.make_strategy(y, hole)
    result = sample(method.prior.denoiser, method.respacing, schedule or method.schedule, recorder,
                    guidance=strategy, start=y, eta=method.eta, clip_denoised=method.clip_denoised)
    return result.sample, strategy.mu.detach(), recorder.draws, strategy.mu.grad.detach()


CASES = [
    dict(),
    dict(lr=0.25, grad_term_weight=1.0, denoise_term_weight="sqrt"),
    dict(denoise_term_weight="log", obs_weight=0.5, sigma_x0=0.05),
    dict(denoise_term_weight="trunc_linear", lr=0.05),
    dict(denoise_term_weight="square"), dict(denoise_term_weight="power2over3"), dict(denoise_term_weight="const"),
]


@pytest.mark.parametrize("options", CASES)
def test_first_steps_equal_official(monkeypatch, pair, options):
    """Two levels (training steps 60 and 30): the same x_t, loss gradient, SNR weight and Adam
    updates of ``mu`` as the code's first two iterations (the first has a zero observation
    residual, ``mu_0 = A^+ y``: the second is the first step that exercises the whole loss)."""
    unet, scheduler = pair
    method = REDDiff(num_steps=10, prior=(unet, scheduler), **options)
    image, hole = images(1)
    x0, mu, draws, grad = ours(method, image, hole, schedule=[6, 3, -1])
    sigma_x0 = options.get("sigma_x0", 0.0)
    ref_x0, ref_mu, ref_grad = official(monkeypatch, lambda x, t: unet(x, t).sample, scheduler.betas, [30, 60],
                                        image * 2 - 1, hole, official_draws(draws, 2, sigma_x0), **method.options)
    assert float((mu - (image * 2 - 1).masked_fill(hole, 0.0)).abs().max()) > 1e-3  # mu moved
    assert float((x0 - ref_x0).abs().max()) <= 1e-6
    assert float((mu - ref_mu).abs().max()) <= 1e-6, float((mu - ref_mu).abs().max())
    # Adam's first update is lr * sign(grad): the gradient itself (the loss) is compared too
    torch.testing.assert_close(grad, ref_grad, atol=1e-9, rtol=1e-5)


@pytest.mark.parametrize("options", CASES[:3])
def test_whole_chain_equals_official(monkeypatch, pair, options):
    """20 levels from T to 0: the output (the last ``x0``, ``mu`` before its last update) and the
    final ``mu`` equal the code's."""
    unet, scheduler = pair
    method = REDDiff(num_steps=20, prior=(unet, scheduler), **options)
    image, hole = images(1, seed=1)
    x0, mu, draws, _ = ours(method, image, hole)
    ref_x0, ref_mu, _ = official(monkeypatch, lambda x, t: unet(x, t).sample, scheduler.betas,
                              list(range(0, T, T // 20)), image * 2 - 1, hole,
                              official_draws(draws, 20, options.get("sigma_x0", 0.0)), **method.options)
    assert float((x0 - ref_x0).abs().max()) <= 1e-5, float((x0 - ref_x0).abs().max())
    assert float((mu - ref_mu).abs().max()) <= 1e-5


def test_the_method_output_is_the_chain_pasted(pair):
    unet, scheduler = pair
    method = REDDiff(num_steps=10, prior=(unet, scheduler))
    image, hole = images(2, seed=3)
    x0, _, _, _ = ours(method, image, hole)
    result = method.inpaint(image.masked_fill(hole, 0.0), hole, rng=oracle.rng(2))
    assert result.stats == {"nfe": 10.0, "vjp": 0.0}
    expected = torch.where(hole, ((x0 + 1) / 2).clamp(0, 1), image)
    torch.testing.assert_close(result.image, expected, atol=1e-6, rtol=0)


def test_adm_checkpoint_chain_equals_official(monkeypatch, tiny_adm_files):
    """``model=``/``adm=`` (guided-diffusion's respaced timesteps as the code's ``ts``; the
    learned-variance channels unused by both); float64 vs float32 alpha-bar."""
    pt, args = tiny_adm_files
    method = REDDiff(num_steps=8, model=pt, adm=args, lr=0.2)
    image, hole = images(1, seed=4, size=16)
    x0, mu, draws, _ = ours(method, image, hole)
    net = method.prior.denoiser.unet
    ref_x0, ref_mu, _ = official(monkeypatch, lambda x, t: net(x, t), method.prior.betas64.float(),
                              list(method.respacing.kept), image * 2 - 1, hole, official_draws(draws, 8, 0.0), lr=0.2)
    assert float((x0 - ref_x0).abs().max()) <= 1e-5, float((x0 - ref_x0).abs().max())
    assert float((mu - ref_mu).abs().max()) <= 1e-5


def test_per_image_means_make_a_batch_equal_its_single_images(monkeypatch, pair):
    """The code's means run over the whole batch (gradient / B; Adam feels it only through its
    eps = 1e-8); ours per image. For a batch of 3: ours equals each image run alone, and equals
    the code run on each image alone; the code's batched run differs from its single runs
    (scaled so the eps matters: small gradients)."""
    unet, scheduler = pair
    options = dict(lr=0.1, grad_term_weight=1e-3, obs_weight=1e-3)
    method = REDDiff(num_steps=10, prior=(unet, scheduler), **options)
    image, hole = images(3, seed=5)
    batched, _, draws, _ = ours(method, image, hole)
    ts = list(range(0, T, T // 10))
    network = lambda x, t: unet(x, t).sample  # noqa: E731
    ref_batched, _, _ = official(monkeypatch, network, scheduler.betas, ts, image * 2 - 1, hole,
                              official_draws(draws, 10, 0.0), **method.options)
    ours_gap, official_gap = 0.0, 0.0
    for i in range(3):
        single, _, single_draws, _ = ours(method, image[i:i + 1], hole[i:i + 1], seed=i)
        ref_single, _, _ = official(monkeypatch, network, scheduler.betas, ts, image[i:i + 1] * 2 - 1, hole[i:i + 1],
                                 official_draws(single_draws, 10, 0.0), **method.options)
        assert float((single - ref_single).abs().max()) <= 1e-5
        ours_gap = max(ours_gap, float((batched[i:i + 1] - single).abs().max()))
        official_gap = max(official_gap, float((ref_batched[i:i + 1] - ref_single).abs().max()))
    assert ours_gap <= 1e-5, ours_gap
    assert official_gap > 10 * max(ours_gap, 1e-6), (official_gap, ours_gap)


def test_weight_shapes_match_the_code_names():
    assert set(DENOISE_TERM_WEIGHTS) == {"linear", "sqrt", "square", "log", "trunc_linear", "power2over3", "const"}


@pytest.mark.parametrize("options, match", [
    (dict(lr=0.0), "lr"), (dict(grad_term_weight=-0.1), "grad_term_weight"),
    (dict(denoise_term_weight="cubic"), "denoise_term_weight"), (dict(obs_weight=float("inf")), "obs_weight"),
    (dict(sigma_x0=-1.0), "sigma_x0"), (dict(num_steps=0), "num_steps"),
])
def test_bad_options_are_one_input_error_line(pair, options, match):
    with pytest.raises(InputError, match=match) as info:
        REDDiff(prior=pair, **options)
    assert "\n" not in str(info.value)


def test_registry_refuses_options_it_does_not_define():
    with pytest.raises(InputError, match="sigma_y") as info:
        method_registry().create("red-diff", sigma_y=0.1)
    assert "\n" not in str(info.value)


def test_tasks_it_does_not_define_are_refused(pair):
    from inpaintbench.core.tasks import SuperResolution

    method = REDDiff(num_steps=2, prior=pair)
    image, hole = images(1)
    with pytest.raises(InputError, match="super-resolution"):
        method.restore(SuperResolution(2, tuple(image.shape)).observe(image), oracle.rng(1))
    with pytest.raises(InputError, match="mask"):
        method.inpaint(image, None, rng=oracle.rng(1))
