"""DiffPIR (``diffpir``) against two independent implementations, replaying the same draws on
random weights:

* ``chain="official"`` against the released inpainting script
  (``../shared/reference/diffpir/main_ddpir_inpainting.py``, yuanzhi-zhu/DiffPIR): its loop lives
  inside ``main()``, so :func:`official_diffpir` replays those lines (schedule, ``rhos``, the
  start from ``y``, ``utils_model.model_fn`` = guided-diffusion's ``p_sample`` of its own copy,
  the closed-form data step, the re-noising with ``zeta`` and ``eta``) with the script's own
  helpers; the step sequence for ``skip_type`` ``quad`` / ``uniform`` equals the script's;
* deepinv's ``DiffPIR`` (BSD), whose loop is the script's with ``eta = 0``, its start written
  as a ``q_sample`` of ``x_init`` and ``rho`` doubled (its L2 prox): with ``x_init``, ``sigma``
  and ``lambda_`` mapped accordingly it computes the same chain;
* ``chain="core"`` (paper Alg. 1: pure-noise start, data step on the last iteration) differs by
  design; its one step is the official one, tested as such.
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
from inpaintbench.methods.diffusion.solvers.diffpir import DiffPIR, diffpir_timesteps
from inpaintbench.methods.diffusion.steps import predict_x0

import x0_solver_kit as kit  # tests/reference is on pytest's pythonpath

Replay, import_reference, scene, our_chain = kit.Replay, kit.import_reference, kit.scene, kit.our_chain
DIFFPIR_ROOT = kit.REFERENCE / "diffpir"
T = 1000
# the script's own ``np.cumprod(tensor)`` (replayed below) trips NumPy 2's __array_wrap__ notice
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")


def script_schedule():
    """The script's noise schedule (lines ``betas = np.linspace(...)`` .. ``reduced_alpha_cumprod``):
    float32 betas, ``np.cumprod`` of a CPU tensor."""
    betas = torch.from_numpy(np.linspace(0.1 / 1000, 20 / 1000, T, dtype=np.float32))
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas.cpu(), axis=0)
    return betas, alphas, alphas_cumprod


@pytest.fixture(scope="module")
def tiny_prior():
    """The kit's denoiser-like tiny UNet over the *script's* alpha-bar table, so both sides read
    the same numbers (a ``prior=`` pair; the scheduler is any object with betas/alphas_cumprod)."""
    from inpaintbench.methods.diffusion.ddpm import build_unet
    from inpaintbench.methods.training.init import seeded_init_

    betas, _, alphas_cumprod = script_schedule()
    unet = build_unet(kit.SIZE, kit.CHANNELS, (16, 16), 1, (False, False), False, 8)
    seeded_init_(unet, 3)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in unet.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.15)
    return kit.DenoiserLike(unet.eval(), alphas_cumprod).eval(), SimpleNamespace(betas=betas,
                                                                               alphas_cumprod=alphas_cumprod)


class Queue:
    """Stands in for ``torch`` (``th``) in the reference's ``gaussian_diffusion``: its
    ``randn_like`` (``p_sample``'s noise) and the replayed script lines draw from one list."""

    def __init__(self, draws):
        self.draws = list(draws)

    def __getattr__(self, name):
        return getattr(torch, name)

    def randn_like(self, x, **_):
        out = self.draws.pop(0)
        assert out.shape == x.shape
        return out


def official_diffpir(monkeypatch, model, y, mask, draws, *, iter_num, skip_type="quad", lambda_=1.0, zeta=1.0,
                     eta=0.0, noise_level_img=0.0, learn_sigma=False):
    """``main_ddpir_inpainting.py``'s lines for one batch (``generate_mode='DiffPIR'``,
    ``model_out_type='pred_xstart'``, ``iter_num_U=1``, ``sub_1_analytic``, ``guidance_scale=1``,
    ``t_start = T - 1``), with ``y`` in ``[-1, 1]`` (holes -1, the script's ``img_L * 2 - 1``)
    and ``mask`` 1 = known. Returns the script's final ``x`` (model space)."""
    utils_model, su, gd = import_reference(
        DIFFPIR_ROOT, ["utils.utils_model", "guided_diffusion.script_util", "guided_diffusion.gaussian_diffusion"],
        prefixes=("utils", "guided_diffusion"))
    diffusion = su.create_gaussian_diffusion(steps=T, learn_sigma=learn_sigma, noise_schedule="linear",
                                             timestep_respacing="")
    queue = Queue(draws)
    monkeypatch.setattr(gd, "th", queue)
    randn_like = queue.randn_like
    num_train_timesteps, model_out_type, guidance_scale, noise_model_t = T, "pred_xstart", 1.0, 0
    skip = num_train_timesteps // iter_num
    sigma = max(0.001, noise_level_img)
    betas, alphas, alphas_cumprod = script_schedule()
    sqrt_alphas_cumprod = torch.sqrt(alphas_cumprod)
    sqrt_1m_alphas_cumprod = torch.sqrt(1. - alphas_cumprod)
    reduced_alpha_cumprod = torch.div(sqrt_1m_alphas_cumprod, sqrt_alphas_cumprod)
    t_start = num_train_timesteps - 1
    # (2) initialize x
    t_y = utils_model.find_nearest(reduced_alpha_cumprod, 2 * noise_level_img)
    sqrt_alpha_effective = sqrt_alphas_cumprod[t_start] / sqrt_alphas_cumprod[t_y]
    x = sqrt_alpha_effective * y + torch.sqrt(sqrt_1m_alphas_cumprod[t_start]**2 -
                                              sqrt_alpha_effective**2 * sqrt_1m_alphas_cumprod[t_y]**2) * randn_like(y)
    # (3) rhos and sigmas
    sigmas, sigma_ks, rhos = [], [], []
    for i in range(num_train_timesteps):
        sigmas.append(reduced_alpha_cumprod[num_train_timesteps - 1 - i])
        sigma_ks.append((sqrt_1m_alphas_cumprod[i] / sqrt_alphas_cumprod[i]))
        rhos.append(lambda_ * (sigma**2) / (sigma_ks[i]**2))
    rhos, sigmas, sigma_ks = torch.tensor(rhos), torch.tensor(sigmas), torch.tensor(sigma_ks)
    # (4) main iterations
    if skip_type == "uniform":
        seq = [i * skip for i in range(iter_num)]
        if skip > 1:
            seq.append(num_train_timesteps - 1)
    elif skip_type == "quad":
        seq = np.sqrt(np.linspace(0, num_train_timesteps**2, iter_num))
        seq = [int(s) for s in list(seq)]
        seq[-1] = seq[-1] - 1
    visited = []
    with torch.no_grad():
        for i in range(len(seq)):
            curr_sigma = sigmas[seq[i]].cpu().numpy()
            t_i = utils_model.find_nearest(reduced_alpha_cumprod, curr_sigma)
            if t_i > t_start:
                continue
            visited.append(int(t_i))
            x0 = utils_model.model_fn(x, noise_level=curr_sigma * 255, model_out_type=model_out_type,
                                      model_diffusion=model, diffusion=diffusion, ddim_sample=False,
                                      alphas_cumprod=alphas_cumprod)
            if not (seq[i] == seq[-1]):
                if i < num_train_timesteps - noise_model_t:
                    x0_p = (mask * y + rhos[t_i].float() * x0).div(mask + rhos[t_i])
                    x0 = x0 + guidance_scale * (x0_p - x0)
            if (model_out_type == "pred_xstart") and not (seq[i] == seq[-1]):
                t_im1 = utils_model.find_nearest(reduced_alpha_cumprod, sigmas[seq[i + 1]].cpu().numpy())
                eps = (x - sqrt_alphas_cumprod[t_i] * x0) / sqrt_1m_alphas_cumprod[t_i]
                eta_sigma = eta * sqrt_1m_alphas_cumprod[t_im1] / sqrt_1m_alphas_cumprod[t_i] * torch.sqrt(betas[t_i])
                x = sqrt_alphas_cumprod[t_im1] * x0 + np.sqrt(1 - zeta) * (
                    torch.sqrt(sqrt_1m_alphas_cumprod[t_im1]**2 - eta_sigma**2) * eps + eta_sigma * randn_like(x)) \
                    + np.sqrt(zeta) * sqrt_1m_alphas_cumprod[t_im1] * randn_like(x)
    assert not queue.draws
    return x, visited


def draws_for(shape, steps, seed=11):
    """The official chain's draws: the start, three per iteration but the last, one on the last."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(1 + 3 * (steps - 1) + 1)]


def inputs(batch=2):
    image, hole = scene(batch)
    mask = (~hole).float().expand_as(image)
    y_black = torch.where(hole, -1.0, to_model_space(image))
    return image, hole, mask, y_black


# ---------------------------------------------------------------- the step sequence


@pytest.mark.parametrize("skip_type,n", [("quad", 20), ("quad", 100), ("quad", 250), ("uniform", 20), ("uniform", 7),
                                         ("quad", 3), ("uniform", 1000)])
def test_timesteps_equal_the_scripts(skip_type, n):
    """``T - 1 - seq[i]`` (the script's ``find_nearest`` of ``sigmas[seq[i]]``) for both skip types."""
    (utils_model,) = import_reference(DIFFPIR_ROOT, ["utils.utils_model"], prefixes=("utils", "guided_diffusion"))
    _, _, alphas_cumprod = script_schedule()
    reduced = torch.sqrt(1. - alphas_cumprod) / torch.sqrt(alphas_cumprod)
    sigmas = torch.tensor([reduced[T - 1 - i] for i in range(T)])
    skip = T // n
    if skip_type == "uniform":
        seq = [i * skip for i in range(n)] + ([T - 1] if skip > 1 else [])
    else:
        seq = [int(s) for s in np.sqrt(np.linspace(0, T**2, n))]
        seq[-1] -= 1
    expected = [int(utils_model.find_nearest(reduced, sigmas[s].numpy())) for s in seq]
    assert diffpir_timesteps(T, n, skip_type) == sorted(expected) and expected == sorted(expected, reverse=True)


def test_too_many_quad_steps_repeat_a_timestep_and_are_refused():
    with pytest.raises(InputError, match="repeats a timestep"):
        diffpir_timesteps(T, 600, "quad")
    with pytest.raises(InputError, match="skip_type must be one of"):
        diffpir_timesteps(T, 20, "log")


# ---------------------------------------------------------------- one iteration, whole chains


def test_first_iterations_step_by_step_equal_the_scripts(monkeypatch, tiny_prior):
    """The script's first three iterations (the start from y, data step, re-noising with
    zeta < 1 and eta > 0) from the same draws equal the strategy's hooks called step by step."""
    image, hole, mask, y_black = inputs()
    method = DiffPIR(num_steps=10, zeta=0.4, eta=0.7, lambda_=3.0, chain="official", prior=tiny_prior)
    draws = draws_for(image.shape, 10)
    official, visited = official_diffpir(monkeypatch, kit.diffusers_model(tiny_prior[0]), y_black, mask, draws[:], iter_num=10,
                                         zeta=0.4, eta=0.7, lambda_=3.0)
    assert visited == diffpir_timesteps(T, 10, "quad")[::-1] == [method.respacing.timestep(i) for i in range(9, -1, -1)]
    # replay the first two iterations by hand to get the state at the third
    strategy = method.conditioning(to_model_space(image), hole)
    rng = Replay(draws, 2)
    x = rng.randn(*image.shape[1:])
    for k, cur in enumerate((9, 8, 7)):
        a, a_prev, t = method.respacing.alpha_bar(cur), method.respacing.alpha_bar(cur - 1), method.respacing.timestep(cur)
        z = rng.randn_like(x)
        step = Step(cur, cur - 1, t, a, a_prev, z, rng, k)
        x = strategy.before_model(x, step)
        pred = predict_x0(x, method.prior.denoiser(x, torch.full((2,), t)), a, clip_denoised=True)
        x, _ = strategy.after_step(x, strategy.update_x0(x, pred, step), None, step)
    # the script's state after three iterations, from a shortened replay with the same draws
    three = official_state(monkeypatch, kit.diffusers_model(tiny_prior[0]), y_black, mask, draws, 3, iter_num=10,
                           zeta=0.4, eta=0.7, lambda_=3.0)
    diff = float((x - three).abs().max())
    print(f"DiffPIR three iterations vs the script's lines: max |diff| = {diff:.3g}")
    assert diff <= 1e-5 and official.abs().max() > 0.1


def test_core_and_official_steps_agree_in_the_middle_of_the_chain(tiny_prior):
    """Away from the ends and with eta = 0 the two chains take the same step (the core's n2 is
    the step's z, the script's its third draw of the iteration)."""
    image, hole, _, _ = inputs()
    method = DiffPIR(num_steps=10, zeta=0.6, lambda_=2.0, prior=tiny_prior)
    x, n, junk = torch.randn(3, *image.shape, generator=torch.Generator().manual_seed(8))
    cur = 5
    a, a_prev, t = method.respacing.alpha_bar(cur), method.respacing.alpha_bar(cur - 1), method.respacing.timestep(cur)
    pred = predict_x0(x, method.prior.denoiser(x, torch.full((2,), t)), a)
    steps = []
    for official, rng in ((False, None), (True, Replay([junk, n], 2))):
        strategy = DiffPIR(num_steps=10, zeta=0.6, lambda_=2.0, prior=tiny_prior,
                           chain="official" if official else "core").conditioning(to_model_space(image), hole)
        step = Step(cur, cur - 1, t, a, a_prev, n if not official else junk, rng, 4)
        steps.append(strategy.after_step(x, strategy.update_x0(x, pred, step), None, step)[0])
    torch.testing.assert_close(steps[0], steps[1], rtol=0, atol=1e-6)


def official_state(monkeypatch, model, y, mask, draws, k, **options):
    """The state the script feeds its network at call ``k`` (0: the start), the replay stopped there."""
    class Stop(Exception):
        pass

    calls = []

    def counting(x, t):
        calls.append(x.clone())
        if len(calls) == k + 1:
            raise Stop
        return model(x, t)

    with pytest.raises(Stop):
        official_diffpir(monkeypatch, counting, y, mask, draws[:], **options)
    return calls[k]


@pytest.mark.parametrize("noise_level_img", [0.0, 0.1, 0.3])
def test_official_start_is_y_noised_from_its_own_level(monkeypatch, tiny_prior, noise_level_img):
    """The script's x_T: y (holes -1) noised from t_y (sigma_bar nearest 2 * noise_level_img) to T - 1."""
    image, hole, mask, y_black = inputs()
    draws = draws_for(image.shape, 10)
    theirs = official_state(monkeypatch, kit.diffusers_model(tiny_prior[0]), y_black, mask, draws, 0, iter_num=10,
                            noise_level_img=noise_level_img)
    method = DiffPIR(num_steps=10, sigma_y=2 * noise_level_img, chain="official", prior=tiny_prior)
    a = method.respacing.alpha_bar(9)
    step = Step(9, 8, T - 1, a, method.respacing.alpha_bar(8), draws[1], None, 0)
    ours = method.conditioning(to_model_space(image), hole).before_model(draws[0], step)
    diff = float((ours - theirs).abs().max())
    print(f"DiffPIR official start (noise_level_img={noise_level_img}): max |diff| = {diff:.3g}")
    assert diff <= 1e-6


@pytest.mark.parametrize("options", [
    dict(iter_num=10),
    dict(iter_num=12, zeta=0.3, lambda_=7.0),
    dict(iter_num=10, zeta=0.9, lambda_=7.0, noise_level_img=0.2),
    dict(iter_num=10, zeta=0.5, eta=0.8, noise_level_img=0.05),
    dict(iter_num=9, skip_type="uniform", zeta=0.8),
])
def test_whole_chain_official_equals_the_script(monkeypatch, tiny_prior, options):
    """Through ``inpaint``: the composited output equals the script's final x (its known pixels
    aside, which the suite composites)."""
    image, hole, mask, y_black = inputs()
    n = options["iter_num"]
    nfe = len(diffpir_timesteps(T, n, options.get("skip_type", "quad")))
    draws = draws_for(image.shape, nfe)
    official, _ = official_diffpir(monkeypatch, kit.diffusers_model(tiny_prior[0]), y_black, mask, draws[:], **options)
    method = DiffPIR(num_steps=n, lambda_=options.get("lambda_", 1.0), zeta=options.get("zeta", 1.0),
                     eta=options.get("eta", 0.0), skip_type=options.get("skip_type", "quad"),
                     sigma_y=2 * options.get("noise_level_img", 0.0), chain="official", prior=tiny_prior)
    result = method.inpaint(torch.where(hole, 0.0, image), hole, rng=Replay(draws, 2))
    raw = our_chain(method, to_model_space(image), hole, draws).sample
    diff = float((raw - official).abs().max())
    expected = torch.where(hole, from_model_space(official), image)
    print(f"DiffPIR official chain {options}: max |ours - script| = {diff:.3g}, {nfe} NFE")
    assert result.stats == {"nfe": float(nfe)}
    assert diff <= 1e-5 and float((result.image - expected).abs().max()) <= 1e-5


def test_whole_chain_on_an_adm_checkpoint_equals_the_script(monkeypatch, tmp_path):
    """A tiny ADM with learned variance: the script's ``p_sample`` reads only ``pred_xstart``."""
    ref, pt, args, _ = kit.tiny_adm(tmp_path)
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    hole = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    hole[:, :, 6:22, 10:26] = True
    mask = (~hole).float().expand_as(image)
    y_black = torch.where(hole, -1.0, to_model_space(image))
    _, _, alphas_cumprod = script_schedule()
    draws = draws_for(image.shape, 10)
    official, _ = official_diffpir(monkeypatch, kit.shrunk_adm(ref, alphas_cumprod), y_black, mask, draws[:],
                                   iter_num=10, zeta=0.5, learn_sigma=True)
    method = DiffPIR(model=str(pt), adm=str(args), num_steps=10, zeta=0.5, chain="official")
    assert method.prior.denoiser.learn_sigma
    ours = our_chain(method, to_model_space(image), hole, draws,
                     kit.shrunk_denoiser(method.prior.denoiser, alphas_cumprod)).sample
    diff = float((ours - official).abs().max())
    print(f"DiffPIR on a tiny ADM (learned variance): max |ours - script| = {diff:.3g}")
    assert diff <= 1e-5


def test_core_chain_is_the_papers_and_differs_from_the_script(monkeypatch, tiny_prior):
    """By design: the paper starts from pure noise and applies the data step on the last
    iteration (x_0 = x0_hat, y on known pixels); the script starts from y noised and returns
    the state at timestep 0."""
    image, hole, mask, y_black = inputs()
    method = DiffPIR(num_steps=10, prior=tiny_prior)
    gen = torch.Generator().manual_seed(3)
    draws = [torch.randn(image.shape, generator=gen) for _ in range(11)]
    ours = our_chain(method, to_model_space(image), hole, draws).sample
    known = ~hole.expand_as(image)
    # the last data step with rho_0 = 1e-6 * a_0 / (1 - a_0) ~ 0.01 puts ~y on known pixels
    assert float((ours - to_model_space(image))[known].abs().max()) < 0.05
    official, _ = official_diffpir(monkeypatch, kit.diffusers_model(tiny_prior[0]), y_black, mask, draws_for(image.shape, 10), iter_num=10)
    assert float((ours - official)[~known].abs().max()) > 1e-2


# ---------------------------------------------------------------- deepinv, the second peer


class UnitDenoiser(torch.nn.Module):
    """deepinv's ``model(x, sigma)`` on ``[0, 1]`` images over the suite's network: ``x_t =
    sqrt(a_t) (2 x - 1)`` at the timestep whose ``sigma_bar`` is ``2 sigma``; returns
    ``(x0_hat + 1) / 2`` (unclipped: deepinv clips)."""

    def __init__(self, method, reduced):
        super().__init__()
        self.method, self.reduced, self.calls = method, reduced, 0

    def forward(self, x, sigma):
        t = int((self.reduced - 2 * sigma).abs().argmin())
        a = self.method.respacing.table[t]
        x_t = a.sqrt() * (2 * x - 1)
        self.calls += 1
        out = self.method.prior.denoiser(x_t, torch.full((x.shape[0],), t))
        return (predict_x0(x_t, out, a, clip_denoised=False).x0_hat + 1) / 2


@pytest.mark.parametrize("zeta,lambda_", [(1.0, 1.0), (0.3, 7.0)])
def test_official_chain_equals_deepinv_diffpir(monkeypatch, tiny_prior, zeta, lambda_):
    dinv = pytest.importorskip("deepinv", reason="deepinv (BSD) is the second DiffPIR peer: pip install deepinv")
    import deepinv.sampling.diffusion as dd

    image, hole, mask, y_black = inputs()
    hole = hole[:1].expand_as(hole).contiguous()
    mask = (~hole).float().expand_as(image)
    method = DiffPIR(num_steps=10, zeta=zeta, lambda_=lambda_, chain="official", prior=tiny_prior)
    draws = draws_for(image.shape, 10)
    ours = our_chain(method, to_model_space(image), hole, draws).sample
    # deepinv draws the start, then one per iteration but the last: our start and each n2
    queue = [draws[0]] + [draws[3 + 3 * k] for k in range(9)]
    fake = SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    fake.randn_like = lambda x, **_: queue.pop(0)
    monkeypatch.setattr(dd, "torch", fake)
    a = tiny_prior[1].alphas_cumprod
    reduced = (1 - a).sqrt() / a.sqrt()
    # our start: sqrt(a_T / a_0) y + sqrt(1 - a_T - a_T (1 - a_0) / a_0) n; deepinv's:
    # sqrt(a_T) ((2 x_init - 1) + sqrt(sigma_bar_T^2 - 4 sigma^2) n): sigma = sigma_bar_0 / 2 ...
    sigma = float(reduced[0]) / 2
    x_init = (torch.where(hole, -1.0, to_model_space(image)) / a[0].sqrt() + 1) / 2
    # ... and its rho = 2 lambda' sigma^2 / sigma_bar_t^2 (prox of ||Ax - y||^2 / 2) equals ours
    lambda_d = lambda_ * 0.001**2 / (2 * sigma**2)
    physics = dinv.physics.Inpainting(img_size=tuple(image.shape[1:]), mask=mask[:1].clone(),
                                      noise_model=dinv.physics.GaussianNoise(sigma=sigma))
    sampler = dd.DiffPIR(UnitDenoiser(method, reduced), dinv.optim.data_fidelity.L2(), max_iter=10, zeta=zeta,
                         lambda_=lambda_d, sigma=sigma)
    theirs = sampler(mask * image, physics, x_init=x_init) * 2 - 1
    assert [int(s) for s in sampler.seq] == [T - 1 - t for t in diffpir_timesteps(T, 10, "quad")[::-1]]
    assert not queue and sampler.model.calls == 10
    diff = float((ours - theirs).abs().max())
    print(f"DiffPIR official chain vs deepinv (zeta={zeta}, lambda={lambda_}): max |diff| = {diff:.3g}")
    assert diff <= 1e-5


# ---------------------------------------------------------------- the method


@pytest.mark.parametrize("kwargs,match", [
    ({"zeta": 1.5}, "zeta must be a number in"),
    ({"eta": -1}, "eta must be a number in"),
    ({"lambda_": 0}, "lambda_ must be a finite number > 0"),
    ({"sigma_y": -0.1}, "sigma_y must be a finite number >= 0"),
    ({"skip_type": "log"}, "skip_type must be one of"),
    ({"num_steps": 1}, "needs num_steps >= 2"),
    ({"num_steps": 900}, "repeats a timestep"),
])
def test_bad_options_are_one_input_error_line(tiny_prior, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        DiffPIR(prior=tiny_prior, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_mask_and_other_tasks_are_input_errors(tiny_prior):
    from inpaintbench.core.tasks import SuperResolution

    image, _ = scene()
    method = DiffPIR(num_steps=3, prior=tiny_prior)
    rng = SampleRNG([torch.Generator().manual_seed(i) for i in range(2)])
    with pytest.raises(InputError, match="needs the hole mask"):
        method.inpaint(image, None, rng=rng)
    with pytest.raises(InputError, match="not 'super-resolution'"):
        method.restore(SuperResolution(2, tuple(image.shape)).observe(image), rng)


def test_nfe_of_uniform_steps_and_registry():
    from inpaintbench.core.registry import method_registry

    assert len(diffpir_timesteps(T, 20, "uniform")) == 21 and len(diffpir_timesteps(T, 20, "quad")) == 20
    entry = method_registry().entry("diffpir")
    assert entry.resolve() is DiffPIR and entry.defaults["num_steps"] == 100 and "100 NFE" in entry.summary
