"""DDNM and DDNM+ (``ddnm``, ``ddnm-plus``) against the released code in
``../shared/reference/ddnm`` (wyhuai/DDNM): the time-travel schedule equals
``get_schedule_jump``; one step and whole chains (``ddnm_diffusion``, ``ddnm_plus_diffusion``
with its SVD ``Inpainting`` operator), replaying the same draws on random weights (a tiny
diffusers UNet and a tiny ADM with learned variance), equal the suite's.

The released loops move tensors with ``.to('cuda')``: ``Tensor.to`` is patched to ignore that
device here. Their module-level ``torch`` is replaced by a recorder of ``randn_like`` draws.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.tasks import SuperResolution
from inpaintbench.methods.diffusion import core
from inpaintbench.methods.diffusion.denoiser import from_model_space, to_model_space
from inpaintbench.methods.diffusion.schedules import repaint_schedule, schedule_nfe
from inpaintbench.methods.diffusion.solvers.ddnm import DDNM, DDNMPlus, NullSpaceProjection
from inpaintbench.methods.diffusion.steps import Prediction, forward_jump, q_sample

import x0_solver_kit as kit  # tests/reference is on pytest's pythonpath

Recorder, Replay, import_reference, scene = kit.Recorder, kit.Replay, kit.import_reference, kit.scene
diffusers_model, betas_of, our_chain, shrink = kit.diffusers_model, kit.betas_of, kit.our_chain, kit.shrink
no_cuda_moves, tiny_prior = kit.no_cuda_moves, kit.tiny_prior  # fixtures
DDNM_ROOT, CHANNELS, SIZE = kit.REFERENCE / "ddnm", kit.CHANNELS, kit.SIZE


def svd_inpainting(ops, hole):
    """The released ``Inpainting`` operator for one mask (the batch shares it, as upstream),
    built as ``svd_based_ddnm_plus`` does: missing pixel ``p`` is channel-last index ``3p + c``."""
    missing_r = torch.nonzero(hole[0, 0].reshape(-1)).long().reshape(-1) * CHANNELS
    missing = torch.cat([missing_r + c for c in range(CHANNELS)], dim=0)
    return ops.Inpainting(CHANNELS, hole.shape[-1], missing, "cpu")


def official_chain(monkeypatch, model, betas, gt, hole, *, eta, sigma_y=0.0, t_T, travel=(1, 1), seed=11,
                   plus=False):
    """The released ``ddnm_diffusion`` (``ddnm_plus_diffusion`` when ``plus``) on ``gt``'s known
    pixels from recorded draws: returns ``(x_0, draws, model inputs)``."""
    ddnm, ops = import_reference(DDNM_ROOT, ["functions.svd_ddnm", "functions.svd_operators"])
    recorder = Recorder(seed)
    monkeypatch.setattr(ddnm, "torch", recorder)
    monkeypatch.setattr(ddnm, "tqdm", lambda it, **_: it)
    A = svd_inpainting(ops, hole[:1])
    y = A.A(gt)
    config = SimpleNamespace(diffusion=SimpleNamespace(num_diffusion_timesteps=len(betas)),
                             time_travel=SimpleNamespace(T_sampling=t_T, travel_length=travel[0],
                                                         travel_repeat=travel[1]))
    inputs = []

    def model_fn(x, t):
        inputs.append(x.clone())
        return model(x, t)

    x = recorder.randn(*gt.shape)
    if plus:
        out, _ = ddnm.ddnm_plus_diffusion(x, model_fn, betas, eta, A, y, sigma_y, config=config)
    else:
        out, _ = ddnm.ddnm_diffusion(x, model_fn, betas, eta, A, y, config=config)
    return out[0], recorder.draws, inputs


# ---------------------------------------------------------------- the time-travel schedule


@pytest.mark.parametrize("params", [(100, 1, 1), (50, 5, 2), (100, 2, 2), (250, 10, 3), (13, 4, 2), (7, 3, 4)])
def test_time_travel_schedule_equals_get_schedule_jump(params):
    """The suite's schedule for DDNM+ is RePaint's resampling walk, index for index the released
    ``get_schedule_jump(T_sampling, travel_length, travel_repeat)``."""
    (ddnm,) = import_reference(DDNM_ROOT, ["functions.svd_ddnm"])
    t_T, length, repeat = params
    assert repaint_schedule(t_T, length, repeat) == ddnm.get_schedule_jump(t_T, length, repeat)
    assert schedule_nfe(repaint_schedule(t_T, length, repeat)) == \
        t_T + (repeat - 1) * length * len(range(0, t_T - length, length))


# ---------------------------------------------------------------- one step, whole chains


def test_one_ddnm_step_equals_the_released_step(monkeypatch, no_cuda_moves, tiny_prior):
    """Each step alone: from the state the released loop fed its network at step k and the draw
    it took, the suite's strategy gives the state it fed at step k + 1."""
    unet, scheduler = tiny_prior
    image, hole = scene()
    gt = to_model_space(image)
    hole = hole[:1].expand_as(hole).contiguous()
    method = DDNM(num_steps=8, eta=0.6, prior=tiny_prior)
    _, draws, inputs = official_chain(monkeypatch, diffusers_model(unet), betas_of(scheduler), gt, hole,
                                      eta=0.6, t_T=8)
    strategy = method.conditioning(gt, hole)
    worst = 0.0
    for k, cur in enumerate(range(7, 0, -1)):
        one = core.sample(method.prior.denoiser, method.respacing, [cur, cur - 1], Replay([inputs[k], draws[k + 1]], 2),
                          guidance=strategy, eta=method.eta, clip_denoised=False)
        worst = max(worst, float((one.sample - inputs[k + 1]).abs().max()))
    print(f"DDNM one step vs released: max |diff| = {worst:.3g}")
    assert worst <= 1e-5


@pytest.mark.parametrize("eta", [0.85, 0.0, 1.0])
def test_whole_ddnm_chain_equals_ddnm_diffusion(monkeypatch, no_cuda_moves, tiny_prior, eta):
    unet, scheduler = tiny_prior
    image, hole = scene()
    hole = hole[:1].expand_as(hole).contiguous()
    gt = to_model_space(image)
    official, draws, _ = official_chain(monkeypatch, diffusers_model(unet), betas_of(scheduler), gt, hole,
                                        eta=eta, t_T=10)
    method = DDNM(num_steps=10, eta=eta, prior=tiny_prior)
    ours = our_chain(method, gt, hole, draws)
    diff = float((ours.sample - official).abs().max())
    print(f"DDNM chain eta={eta}: max |ours - ddnm_diffusion| = {diff:.3g}, {ours.nfe} NFE")
    assert ours.nfe == 10 and official.abs().max() > 0.1
    assert diff <= 1e-5


@pytest.mark.parametrize("sigma_y,travel", [(0.0, (2, 2)), (0.2, (1, 1)), (0.2, (3, 2)), (0.05, (2, 3))])
def test_whole_ddnm_plus_chain_official_equals_ddnm_plus_diffusion(monkeypatch, no_cuda_moves, tiny_prior,
                                                                   sigma_y, travel):
    """DDNM+ with time-travel (``chain="official"``: the last x0_t re-noised) and the
    noise-aware scaling equals the released ``ddnm_plus_diffusion``, through ``inpaint``."""
    unet, scheduler = tiny_prior
    image, hole = scene()
    hole = hole[:1].expand_as(hole).contiguous()
    gt = to_model_space(image)
    official, draws, _ = official_chain(monkeypatch, diffusers_model(unet), betas_of(scheduler), gt, hole,
                                        eta=0.85, sigma_y=sigma_y, t_T=12, travel=travel, plus=True)
    method = DDNMPlus(num_steps=12, travel_length=travel[0], travel_repeat=travel[1], sigma_y=sigma_y,
                      chain="official", prior=tiny_prior)
    ours = our_chain(method, gt, hole, draws[:])
    diff = float((ours.sample - official).abs().max())
    result = method.inpaint(torch.where(hole, 0.0, image), hole, rng=Replay(draws, 2))
    expected = torch.where(hole, from_model_space(official), image)
    print(f"DDNM+ sigma_y={sigma_y} travel={travel}: max |ours - ddnm_plus_diffusion| = {diff:.3g}, "
          f"{ours.nfe} NFE")
    assert result.stats == {"nfe": float(schedule_nfe(method.schedule))}
    assert diff <= 1e-5 and float((result.image - expected).abs().max()) <= 1e-5


def test_core_time_travel_is_the_forward_process_and_differs_from_the_released_one(monkeypatch, no_cuda_moves,
                                                                                  tiny_prior):
    """By design: ``chain="core"`` travels back by ``q(x_{t+1} | x_t)`` (the paper, hq_demo's
    RePaint loop); the released ``svd_ddnm.py`` re-noises the last unprojected x0_t. Both hooks
    are what they claim, and the chains differ."""
    gt, hole = to_model_space(scene()[0]), scene()[1]
    x, x0, n = torch.randn(3, 2, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    a, b = torch.tensor(0.7), torch.tensor(0.5)
    for official in (False, True):
        strategy = NullSpaceProjection(gt, hole, official=official)
        step = SimpleNamespace(alpha_bar_prev=torch.tensor(0.8), alpha_bar=a)
        strategy.update_x0(x, Prediction(x0, torch.zeros_like(x0)), step)
        expected = q_sample(x0, b, n) if official else forward_jump(x, a, b, n)
        assert torch.equal(strategy.jump(x, a, b, n), expected)
    unet, scheduler = tiny_prior
    hole = hole[:1].expand_as(hole).contiguous()
    official, draws, _ = official_chain(monkeypatch, diffusers_model(unet), betas_of(scheduler), gt, hole,
                                        eta=0.85, t_T=12, travel=(3, 2), plus=True)
    method = DDNMPlus(num_steps=12, travel_length=3, travel_repeat=2, prior=tiny_prior)
    ours = our_chain(method, gt, hole, draws)
    assert float((torch.where(hole, ours.sample, 0) - torch.where(hole, official, 0)).abs().max()) > 1e-2


def test_whole_ddnm_chain_on_an_adm_checkpoint_equals_ddnm_diffusion(monkeypatch, no_cuda_moves, tmp_path):
    """A tiny ADM with learned variance (the official guided-diffusion UNetModel, random
    weights, saved as a .pt): ``DDNMPlus(model=..., adm=...)`` on DDNM's ``i * skip`` timesteps
    with the variance channels dropped equals the released loop fed the same network."""
    ref, pt, args, _ = kit.tiny_adm(tmp_path)
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    hole = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    hole[:, :, 6:22, 10:26] = True
    gt = to_model_space(image)
    betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float()  # DDNM's get_beta_schedule
    alphas = torch.cumprod(1 - betas, 0)
    ref_model = kit.shrunk_adm(ref, alphas)
    with torch.no_grad():
        official, draws, _ = official_chain(monkeypatch, ref_model, betas, gt, hole, eta=0.85, sigma_y=0.1, t_T=10,
                                            travel=(2, 2), plus=True)
    method = DDNMPlus(model=str(pt), adm=str(args), num_steps=10, travel_length=2, travel_repeat=2, sigma_y=0.1,
                      chain="official")
    assert method.respacing.kept == [i * 100 for i in range(10)]  # not guided-diffusion's spacing
    assert method.prior.denoiser.learn_sigma
    denoiser = kit.shrunk_denoiser(method.prior.denoiser, alphas)
    ours = our_chain(method, gt, hole, draws, denoiser)
    diff = float((ours.sample - official).abs().max())
    print(f"DDNM+ on a tiny ADM (learned variance): max |ours - released| = {diff:.3g}")
    assert diff <= 1e-5


# ---------------------------------------------------------------- the methods


def test_output_contract_nfe_and_known_pixels(tiny_prior):
    image, hole = scene()
    method = DDNMPlus(num_steps=6, travel_length=2, travel_repeat=2, prior=tiny_prior)
    rng = SampleRNG([torch.Generator().manual_seed(i) for i in range(2)])
    out = method.inpaint(torch.where(hole, 0.0, image), hole, rng=rng)
    assert out.stats == {"nfe": float(6 + 2 * len(range(0, 4, 2)))}
    assert out.image.dtype == torch.float32 and 0 <= out.image.min() and out.image.max() <= 1
    assert torch.equal(out.image[~hole.expand_as(image)], image[~hole.expand_as(image)])
    assert method.config == {"num_steps": 6, "eta": 0.85, "travel_length": 2, "travel_repeat": 2, "sigma_y": 0.0,
                             "weights": None}


@pytest.mark.parametrize("cls,kwargs,match", [
    (DDNM, {"eta": 1.5}, "eta must be a number in"),
    (DDNM, {"eta": -0.1}, "eta must be a number in"),
    (DDNMPlus, {"sigma_y": -0.1}, "sigma_y must be a finite number >= 0"),
    (DDNMPlus, {"travel_length": 0}, "travel_length must be an int >= 1"),
    (DDNMPlus, {"travel_repeat": 1.5}, "travel_repeat must be an int >= 1"),
    (DDNM, {"num_steps": 0}, "num_steps"),
    (DDNM, {"batch_size": 0}, "batch_size"),
    (DDNM, {"chain": "paper"}, "chain must be"),
])
def test_bad_options_are_one_input_error_line(tiny_prior, cls, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        cls(prior=tiny_prior, **kwargs)
    assert "\n" not in str(info.value)


def test_a_task_ddnm_does_not_define_and_a_missing_mask_are_input_errors(tiny_prior):
    image, hole = scene()
    method = DDNM(num_steps=2, prior=tiny_prior)
    rng = SampleRNG([torch.Generator().manual_seed(i) for i in range(2)])
    with pytest.raises(InputError, match="needs the hole mask") as info:
        method.inpaint(image, None, rng=rng)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="not 'super-resolution'") as info:
        method.restore(SuperResolution(2, tuple(image.shape)).observe(image), rng)
    assert "\n" not in str(info.value)


def test_registered_with_the_catalogue_defaults():
    from inpaintbench.core.registry import method_registry

    registry = method_registry()
    assert registry.entry("ddnm").resolve() is DDNM and registry.entry("ddnm-plus").resolve() is DDNMPlus
    plus = registry.entry("ddnm-plus").defaults
    assert schedule_nfe(repaint_schedule(plus["num_steps"], plus["travel_length"], plus["travel_repeat"])) == 95
    assert "95 NFE" in registry.entry("ddnm-plus").summary and "100 NFE" in registry.entry("ddnm").summary


def test_solver_timesteps_are_the_core_spacing_with_the_priors_precision(tiny_prior):
    """DDNM's ``i * skip``: on a diffusers prior exactly the core's :class:`Respacing` (same
    timesteps, same float32 alpha-bar); a :class:`TableRespacing` over guided-diffusion's float64
    table keeps float64. Non-ascending or out-of-range tables are refused."""
    from inpaintbench.methods.diffusion.respacing import (Respacing, SpacedRespacing, TableRespacing,
                                                          beta_schedule, leading_timesteps)

    method = DDNM(num_steps=30, prior=tiny_prior)
    plain = Respacing(method.prior.schedule, 30)
    assert method.respacing.kept == leading_timesteps(1000, 30) == [plain.timestep(i) for i in range(30)]
    for i in (-1, 0, 7, 29):
        assert torch.equal(method.respacing.alpha_bar(i), plain.alpha_bar(i))
    spaced = SpacedRespacing(beta_schedule("linear", 1000), 30)
    table = TableRespacing.like(spaced, leading_timesteps(1000, 30))
    assert table.alpha_bar(5).dtype == torch.float64 and table.alpha_bar(-1).dtype == torch.float64
    assert float(table.alpha_bar(5)) == float(spaced.alphas_cumprod64[5 * 33])
    for bad in ([3, 3, 5], [5, 3], [0, 1000], []):
        with pytest.raises(InputError, match="strictly ascending"):
            TableRespacing(plain.schedule, bad)
