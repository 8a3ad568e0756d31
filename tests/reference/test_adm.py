"""ADM (guided-diffusion) checkpoints: the project's UNet, presets, safe strict loading, and
the diffusion arithmetic around it, checked against the official code in
``../shared/reference`` (guided-diffusion, RePaint, ILVR) on random weights.

The reference packages are imported only here, each under its own ``guided_diffusion``
name (the three repositories ship packages of the same name), and skipped with the reason
when ``../shared/reference`` is absent.
"""

from __future__ import annotations

import importlib
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from inpaintbench.store.folder import raw_records
import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.methods.diffusion import core
from inpaintbench.methods.diffusion.adm_checkpoint import load_adm
from inpaintbench.methods.diffusion.adm_config import PRESETS, ADMConfig, resolve_adm
from inpaintbench.methods.diffusion.adm_network import ADMDenoiser, ADMUNet, parameter_count
from inpaintbench.methods.diffusion.bicubic import lowpass_bicubic
from inpaintbench.methods.diffusion.conditioning import Replacement, ReplacementBeforeCall
from inpaintbench.methods.diffusion.lowpass import ilvr_update
from inpaintbench.methods.diffusion.prior import adm_respacing, load_adm_prior
from inpaintbench.methods.diffusion.respacing import SpacedRespacing, beta_schedule, space_timesteps
from inpaintbench.methods.diffusion.schedules import repaint_schedule
from inpaintbench.methods.diffusion.steps import reverse_step


@pytest.fixture(autouse=True)
def restore_grad_mode():
    """RePaint's official loop yields from inside ``with th.no_grad()``: while its generator is
    suspended (or dropped unfinished) grad mode stays off in this thread and would leak into
    every later test that trains. Put it back after each test of this file."""
    enabled = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(enabled)

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
GD_ROOT, REPAINT_ROOT, ILVR_ROOT = REFERENCE / "guided-diffusion", REFERENCE / "repaint", REFERENCE / "ilvr"

# guided-diffusion create_model's argument names (the model part of ADMConfig).
MODEL_ARGS = ("image_size", "num_channels", "num_res_blocks", "channel_mult", "learn_sigma", "class_cond",
              "use_checkpoint", "attention_resolutions", "num_heads", "num_head_channels", "num_heads_upsample",
              "use_scale_shift_norm", "dropout", "resblock_updown", "use_fp16", "use_new_attention_order")

# Tiny variants of the presets (GroupNorm needs multiples of 32 channels): every code path of
# the architecture is covered by one of them.
TINY = {
    "repaint-like": PRESETS["repaint-celeba256"].shrunk(image_size=32, num_channels=32, channel_mult="1,2",
                                                         attention_resolutions="16,8", num_head_channels=16),
    "ffhq-like": PRESETS["ilvr-ffhq256"].shrunk(image_size=32, num_channels=32, channel_mult="1,1,2",
                                                attention_resolutions="16", num_head_channels=16),
    "new-order-plain": ADMConfig(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2",
                                 attention_resolutions="32,16", num_heads=2, use_new_attention_order=True,
                                 use_scale_shift_norm=False, resblock_updown=False, learn_sigma=True),
    "fixed-variance": ADMConfig(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2",
                                attention_resolutions="16", num_heads_upsample=2, learn_sigma=False),
}


def import_reference(root: Path, names: list[str]) -> list[types.ModuleType]:
    """Import ``names`` from the reference repository ``root`` and take its ``guided_diffusion``
    package out of ``sys.modules`` again (the modules stay usable through their globals), so
    the three repositories' same-named packages never mix."""
    if not root.is_dir():
        pytest.skip(f"{root} is absent (the official code lives in ../shared/reference beside the checkout)")
    prefixes = ("guided_diffusion", "resizer", "conf_mgt")

    def ours() -> dict[str, types.ModuleType]:
        return {k: v for k, v in sys.modules.items() if k.split(".")[0] in prefixes}

    saved = ours()
    for key in saved:
        del sys.modules[key]
    sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(n) for n in names]
    finally:
        sys.path.remove(str(root))
        for key in ours():
            del sys.modules[key]
        sys.modules.update(saved)


def model_kwargs(config: ADMConfig) -> dict:
    return {k: getattr(config, k) for k in MODEL_ARGS}


def random_state(model: torch.nn.Module, seed: int = 0, scale: float = 0.2) -> dict[str, torch.Tensor]:
    """Random values for every tensor of ``model``'s state dict (the zero-initialised output
    convolutions included, so no branch of the network is trivially zero)."""
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen) * scale for k, v in model.state_dict().items()}


def reference_pair(config: ADMConfig, seed: int = 0):
    """(official UNetModel, our ADMUNet) holding the same random state dict."""
    (su,) = import_reference(GD_ROOT, ["guided_diffusion.script_util"])
    ref = su.create_model(**model_kwargs(config))
    state = random_state(ref, seed)
    ref.load_state_dict(state, strict=True)
    ours = ADMUNet(config)
    ours.load_state_dict(state, strict=True)
    return ref.eval(), ours.eval(), state


# ---------------------------------------------------------------------------- the network


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_equals_official_unet(name):
    config = TINY[name]
    ref, ours, _ = reference_pair(config)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    t = torch.tensor([7, 993])
    with torch.no_grad():
        expected = ref(x, t)
        out = ADMDenoiser(ours)(x, t)
    got = out.eps if out.v is None else torch.cat([out.eps, out.v], 1)
    assert got.shape == expected.shape == (2, config.out_channels, 32, 32)
    assert expected.abs().max() > 0.1  # the comparison is not between two zero tensors
    diff = (got - expected).abs().max().item()
    print(f"{name}: max |ours - official| = {diff:.3g}")
    assert diff <= 1e-5, f"{name}: max |ours - official| = {diff:.3g}"
    assert (out.v is not None) == config.learn_sigma


def test_fp16_torso_equals_official_convert_to_fp16():
    """use_fp16 (applied on CUDA by ADMDenoiser.to): the same layers run in float16 as after
    the official convert_to_fp16 (checked here on the CPU, which also runs half convolutions)."""
    ref, ours, _ = reference_pair(TINY["repaint-like"].shrunk(use_fp16=True))
    ref.convert_to_fp16()
    ours.convert_to_fp16()
    x, t = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)), torch.tensor([10])
    with torch.no_grad():
        expected, got = ref(x, t), ours(x, t)
    assert got.dtype == expected.dtype == torch.float32
    assert (got - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_state_dict_names_and_shapes_equal_official(preset):
    """Every full preset has exactly the official state dict layout (built on the meta
    device: no memory, no time)."""
    (su,) = import_reference(GD_ROOT, ["guided_diffusion.script_util"])
    config = PRESETS[preset]
    with torch.device("meta"):
        ref = su.create_model(**model_kwargs(config))
        ours = ADMUNet(config)
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert list(mine) == list(theirs)
    assert mine == theirs
    expected_params = {"repaint-celeba256": 552_814_086, "repaint-places256": 552_814_086,
                       "openai-256-uncond": 552_814_086, "ilvr-ffhq256": 93_563_910}
    assert parameter_count(ours) == expected_params[preset]


@pytest.mark.slow
def test_full_256_preset_forward_equals_official():
    """One forward pass at a full 256 preset (ILVR's FFHQ architecture, 94 M parameters;
    about 25 s on one core)."""
    config = PRESETS["ilvr-ffhq256"]
    ref, ours, _ = reference_pair(config, seed=3)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500])
    with torch.no_grad():
        diff = (ours(x, t) - ref(x, t)).abs().max().item()
    print(f"full ilvr-ffhq256 forward: max |ours - official| = {diff:.3g}")
    assert diff <= 1e-5, diff


def test_make_it_fail_a_wrong_attention_order_is_detected():
    """The forward comparison can fail: the same weights read in the other qkv order differ."""
    config = TINY["repaint-like"]
    ref, ours, state = reference_pair(config)
    other = ADMUNet(config.shrunk(use_new_attention_order=True))
    other.load_state_dict(state)
    x, t = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)), torch.tensor([10])
    with torch.no_grad():
        assert (other(x, t) - ref(x, t)).abs().max() > 1e-3


# ---------------------------------------------------------------------------- diffusion arithmetic


def test_beta_schedules_and_respacing_equal_official():
    (gd, respace) = import_reference(GD_ROOT, ["guided_diffusion.gaussian_diffusion", "guided_diffusion.respace"])
    for name in ("linear", "cosine"):
        np.testing.assert_allclose(beta_schedule(name, 1000).numpy(), gd.get_named_beta_schedule(name, 1000),
                                   rtol=0, atol=1e-15)
    for counts in ("250", "100", "25", "10,15,20", "ddim50", "1000", "7"):
        assert space_timesteps(1000, counts) == sorted(respace.space_timesteps(1000, counts)), counts


@pytest.mark.parametrize("respacing", ["250", "25"])
def test_learned_variance_posterior_equals_p_mean_variance(respacing):
    """mean, variance and x0 of one reverse step (learned range, clipped x0) equal
    SpacedDiffusion.p_mean_variance, which also maps the respaced index to the training
    timestep the network sees."""
    (su,) = import_reference(GD_ROOT, ["guided_diffusion.script_util"])
    config = TINY["repaint-like"]
    ref, ours, _ = reference_pair(config)
    diffusion = su.create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="linear",
                                             timestep_respacing=respacing)
    table = adm_respacing(config, respacing)
    assert table.kept == list(diffusion.timestep_map)
    denoiser = ADMDenoiser(ours)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    worst = {"mean": 0.0, "std": 0.0, "log_variance": 0.0, "x0": 0.0}
    n = table.num_steps
    for index in sorted({n - 1, n // 2, 3, 1, 0}):
        t = torch.full((2,), index, dtype=torch.long)
        with torch.no_grad():
            expected = diffusion.p_mean_variance(ref, x, t, clip_denoised=True)
            out = denoiser(x, torch.full((2,), table.timestep(index), dtype=torch.long))
        a_t, a_prev = table.alpha_bar(index), table.alpha_bar(index - 1)
        mean, x0 = reverse_step(x, out, a_t, a_prev, None)
        worst["mean"] = max(worst["mean"], (mean - expected["mean"]).abs().max().item())
        worst["x0"] = max(worst["x0"], (x0 - expected["pred_xstart"]).abs().max().item())
        if index > 0:  # at index 0 no noise is added (the official code multiplies it by 0)
            ones = torch.ones_like(x)
            std = reverse_step(x, out, a_t, a_prev, ones)[0] - mean
            worst["std"] = max(worst["std"], (std - expected["log_variance"].mul(0.5).exp()).abs().max().item())
            worst["log_variance"] = max(worst["log_variance"],
                                        (2 * std.log() - expected["log_variance"]).abs().max().item())
    print(f"respacing {respacing}: max differences {worst}")
    assert worst["mean"] <= 1e-5 and worst["std"] <= 1e-5, worst
    # log Sigma from a std of ~1e-2: its float32 rounding is ~1e-5 relative.
    assert worst["log_variance"] <= 1e-4, worst
    # x0_hat divides by sqrt(alpha-bar_t) (~1/160 at the noisiest index): float32 rounding of
    # x_t and eps (6e-8) is amplified to ~1e-5 there; the two codes group the terms differently.
    assert worst["x0"] <= 5e-5, worst


def test_make_it_fail_the_core_default_spacing_is_not_guided_diffusions():
    """The core's i * (T // t_T) table is not guided-diffusion's: the test above would fail with it."""
    from inpaintbench.methods.diffusion.respacing import NoiseSchedule, Respacing

    betas = beta_schedule("linear", 1000)
    core_table = Respacing(NoiseSchedule(betas.float(), torch.cumprod(1 - betas, 0).float()), 250)
    ours = SpacedRespacing(betas, 250)
    assert [core_table.timestep(i) for i in range(250)] != ours.kept
    assert core_table.timestep(249) == 996 and ours.timestep(249) == 999


@pytest.mark.parametrize("params", [(250, 10, 10), (250, 5, 3), (100, 10, 2), (50, 1, 1), (20, 3, 4), (10, 10, 10)])
def test_resampling_schedule_equals_get_schedule_jump(params):
    """repaint_schedule(t_T, j, r) is get_schedule_jump(t_T, n_sample=1, j, r) index for index:
    both list respaced indices from t_T - 1 down to -1 (x_0), so no conversion is needed."""
    (scheduler,) = import_reference(REPAINT_ROOT, ["guided_diffusion.scheduler"])
    t_T, j, r = params
    official = scheduler.get_schedule_jump(t_T=t_T, n_sample=1, jump_length=j, jump_n_sample=r)
    assert repaint_schedule(t_T, j, r) == official
    if params == (250, 10, 10):
        assert official == scheduler.get_schedule_jump_paper()


# ---------------------------------------------------------------------------- a whole RePaint chain


class _Conf(dict):
    """The attributes RePaint's sampling loop reads from its config object."""

    def __getattr__(self, name):
        return self.get(name)

    def pget(self, name, default=None):
        return self.get(name, default)


class _Recorder:
    """Stands in for ``torch`` inside a reference module: ``randn``/``randn_like`` draw from a
    seeded generator and record every draw, everything else is torch."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.draws: list[torch.Tensor] = []

    def __getattr__(self, name):
        return getattr(torch, name)

    def randn(self, *shape, device=None, **_):
        out = torch.randn(*shape, generator=self.gen)
        self.draws.append(out.clone())
        return out

    def randn_like(self, x, **_):
        return self.randn(*x.shape)


class _Replay:
    """A SampleRNG look-alike that hands out recorded draws in order."""

    def __init__(self, draws: list[torch.Tensor], batch: int):
        self.draws, self.batch = list(draws), batch

    def __len__(self):
        return self.batch

    def randn(self, *shape, dtype=torch.float32):
        out = self.draws.pop(0)
        assert tuple(out.shape[1:]) == tuple(shape), (out.shape, shape)
        return out

    def randn_like(self, x):
        out = self.draws.pop(0)
        assert out.shape == x.shape
        return out

    def __getitem__(self, index: slice):
        assert index == slice(0, self.batch)  # the method samples the batch in one chunk
        return self


def _official_repaint(monkeypatch, ref, t_T, j, r, gt, keep, seed):
    gd, su = import_reference(REPAINT_ROOT, ["guided_diffusion.gaussian_diffusion", "guided_diffusion.script_util"])
    conf = _Conf(use_value_logger=False, respace_interpolate=False, inpa_inj_sched_prev=True,
                 inpa_inj_sched_prev_cumnoise=False,
                 schedule_jump_params=dict(t_T=t_T, n_sample=1, jump_length=j, jump_n_sample=r))
    diffusion = su.create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="linear",
                                             timestep_respacing=str(t_T), conf=conf)
    recorder = _Recorder(seed)
    monkeypatch.setattr(gd, "th", recorder)

    def model_fn(x, t, gt=None, gt_keep_mask=None, **_):
        return ref(x, t)

    with torch.no_grad():
        result = diffusion.p_sample_loop(model_fn, tuple(gt.shape), model_kwargs={"gt": gt, "gt_keep_mask": keep},
                                         conf=conf, progress=False, device=torch.device("cpu"))
    return result, recorder.draws, diffusion


@pytest.mark.parametrize("params", [(12, 3, 3), (16, 4, 2)])
def test_whole_repaint_chain_with_replayed_noise_equals_official_loop(monkeypatch, params):
    t_T, j, r = params
    config = TINY["repaint-like"]
    ref, ours, _ = reference_pair(config, seed=4)
    gen = torch.Generator().manual_seed(9)
    gt = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    hole = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    hole[:, :, 8:24, 4:20] = True
    keep = (~hole).float()
    official, draws, diffusion = _official_repaint(monkeypatch, ref, t_T, j, r, gt, keep, seed=11)
    schedule = repaint_schedule(t_T, j, r)
    table = adm_respacing(config, t_T)
    assert table.kept == list(diffusion.timestep_map)
    n_draws = len(draws)
    result = core.sample(ADMDenoiser(ours), table, schedule, _Replay(draws, 2), shape=gt.shape,
                         guidance=ReplacementBeforeCall(gt, hole))
    down = sum(1 for a, b in zip(schedule, schedule[1:]) if b < a)
    up = len(schedule) - 1 - down
    assert n_draws == 1 + down + (down - 1) + up  # start, z per step, known-region noise but the first, jumps
    assert result.nfe == down
    diff = (result.sample - official).abs().max().item()
    print(f"RePaint chain {params}: max |ours - official| = {diff:.3g}, {down} NFE")
    assert official.abs().max() > 0.1
    assert diff <= 1e-5, diff


def test_make_it_fail_the_core_loop_is_not_the_official_order(monkeypatch):
    """The core's loop (known region injected after each step with the step's own draw) does
    not reproduce the official chain from the same draws: the code-order option is needed."""
    from inpaintbench.methods.diffusion.core import sample

    config = TINY["repaint-like"]
    ref, ours, _ = reference_pair(config, seed=4)
    gt = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(9)) * 2 - 1
    hole = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    hole[:, :, 8:24, 4:20] = True
    official, draws, _ = _official_repaint(monkeypatch, ref, 12, 3, 3, gt, (~hole).float(), seed=11)
    table = adm_respacing(config, 12)
    replay = _Replay(draws * 2, 2)  # the core draws a different number of tensors
    result = sample(ADMDenoiser(ours), table, repaint_schedule(12, 3, 3), replay, guidance=Replacement(gt, hole))
    assert (torch.where(hole, result.sample, 0) - torch.where(hole, official, 0)).abs().max() > 1e-2


# ---------------------------------------------------------------------------- ILVR


@pytest.mark.parametrize("down_n,size", [(2, 32), (4, 32), (8, 64), (32, 256)])
def test_bicubic_lowpass_equals_official_resizer(down_n, size):
    (resizer,) = import_reference(ILVR_ROOT, ["resizer"])
    shape = (2, 3, size, size)
    down = resizer.Resizer(shape, 1 / down_n)
    up = resizer.Resizer((2, 3, size // down_n, size // down_n), down_n)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(down_n)) * 2 - 1
    with torch.no_grad():
        expected = up(down(x))
    diff = (lowpass_bicubic(x, down_n) - expected).abs().max().item()
    print(f"phi_N bicubic N={down_n} {size}px: max diff {diff:.3g}")
    assert diff <= 1e-5, diff


def test_one_ilvr_step_equals_official(monkeypatch):
    """One conditioned ILVR step of the official loop (p_sample, then
    x - up(down(x)) + up(down(q_sample(ref, t)))) equals the core's reverse step followed by
    the bicubic phi_N update, with the reference noised to the *current* level t as the
    official code does (the core's default strategies noise it to the next level, t - 1)."""
    gd, su = import_reference(ILVR_ROOT, ["guided_diffusion.gaussian_diffusion", "guided_diffusion.script_util"])
    (resizer,) = import_reference(ILVR_ROOT, ["resizer"])
    config = TINY["ffhq-like"]
    ref, ours, _ = reference_pair(config, seed=6)
    diffusion = su.create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="linear",
                                             timestep_respacing="10")
    shape, n = (2, 3, 32, 32), 4
    down, up = resizer.Resizer(shape, 1 / n), resizer.Resizer((2, 3, 32 // n, 32 // n), n)
    gen = torch.Generator().manual_seed(8)
    y = torch.rand(shape, generator=gen) * 2 - 1
    start = torch.randn(shape, generator=gen)
    recorder = _Recorder(12)
    monkeypatch.setattr(gd, "th", recorder)
    steps = diffusion.p_sample_loop_progressive(lambda x, t, **_: ref(x, t), shape, noise=start,
                                                model_kwargs={"ref_img": y}, resizers=(down, up), range_t=0,
                                                device=torch.device("cpu"))
    with torch.no_grad():
        official = next(steps)["sample"]  # the first step: index 9 -> 8
    z, ref_noise = recorder.draws
    table = adm_respacing(config, 10)
    with torch.no_grad():
        out = ADMDenoiser(ours)(start, torch.full((2,), table.timestep(9), dtype=torch.long))
    proposal, _ = reverse_step(start, out, table.alpha_bar(9), table.alpha_bar(8), z)
    noised = table.alpha_bar(9).sqrt() * y + (1 - table.alpha_bar(9)).sqrt() * ref_noise
    ours_step = ilvr_update(proposal, noised, n, "bicubic")  # the ILVR option lowpass="bicubic"
    diff = (ours_step - official).abs().max().item()
    print(f"one ILVR step: max diff {diff:.3g}")
    assert diff <= 1e-5, diff


# ---------------------------------------------------------------------------- presets and args files


def test_presets_match_the_papers_configs():
    """The RePaint presets carry the model and diffusion keys of confs/test_c256_*.yml and
    test_p256_*.yml (read with a minimal parser: the files are flat ``key: value`` YAML)."""
    if not REPAINT_ROOT.is_dir():
        pytest.skip(f"{REPAINT_ROOT} is absent")
    for prefix, preset in (("test_c256_", "repaint-celeba256"), ("test_p256_", "repaint-places256")):
        files = sorted((REPAINT_ROOT / "confs").glob(prefix + "*.yml"))
        assert files
        for path in files:
            values = {}
            for line in path.read_text().splitlines():
                if line and not line.startswith((" ", "#")) and ":" in line:
                    key, _, value = line.partition(":")
                    values[key.strip()] = value.strip().strip("'")
            config = PRESETS[preset]
            for key in ("image_size", "num_channels", "num_res_blocks", "num_heads", "num_head_channels",
                        "attention_resolutions", "channel_mult", "class_cond", "learn_sigma", "resblock_updown",
                        "use_scale_shift_norm", "use_new_attention_order", "diffusion_steps", "noise_schedule",
                        "timestep_respacing", "use_fp16", "dropout", "num_heads_upsample"):
                assert str(getattr(config, key)).lower() == values[key].lower(), (path.name, key)


def test_args_file_toml_and_json(tmp_path):
    flags = PRESETS["ilvr-ffhq256"].as_dict()
    toml_file = tmp_path / "ffhq.toml"
    toml_file.write_text("[adm]\n" + "\n".join(
        f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in flags.items()))
    json_file = tmp_path / "ffhq.json"
    json_file.write_text(json.dumps({"num_channels": 128, "num_res_blocks": 1, "image_size": 256,
                                     "attention_resolutions": [16], "num_head_channels": 64,
                                     "resblock_updown": True, "learn_sigma": True, "timestep_respacing": 100}))
    assert resolve_adm(str(toml_file)) == PRESETS["ilvr-ffhq256"]
    assert resolve_adm(json_file) == PRESETS["ilvr-ffhq256"]
    bad = tmp_path / "bad.toml"
    bad.write_text("num_channel = 128\n")
    with pytest.raises(InputError, match="num_channel"):
        resolve_adm(bad)
    with pytest.raises(InputError, match="repaint-celeba256"):
        resolve_adm("celeba")
    with pytest.raises(InputError, match="class-conditional"):
        ADMConfig.from_mapping({"class_cond": True, "image_size": 256})


# ---------------------------------------------------------------------------- safe, strict loading


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory) -> Path:
    """A random-weights tiny checkpoint saved from the *official* UNetModel."""
    ref, _, _ = reference_pair(TINY["repaint-like"], seed=1)
    path = tmp_path_factory.mktemp("adm") / "tiny.pt"
    torch.save(ref.state_dict(), path)
    return path


def test_official_checkpoint_loads_strictly_and_runs(tiny_pt):
    model = load_adm(tiny_pt, TINY["repaint-like"])
    (su,) = import_reference(GD_ROOT, ["guided_diffusion.script_util"])
    ref = su.create_model(**model_kwargs(TINY["repaint-like"]))
    ref.load_state_dict(torch.load(tiny_pt, weights_only=True))
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([100])
    with torch.no_grad():
        assert (model(x, t) - ref(x, t)).abs().max() <= 1e-5
    prior = load_adm_prior(tiny_pt, TINY["repaint-like"])
    assert prior.files == [str(tiny_pt)]
    assert prior.denoiser.sample_size == (32, 32) and prior.denoiser.learn_sigma


def test_wrong_preset_names_file_and_first_mismatch(tiny_pt):
    wrong = TINY["repaint-like"].shrunk(num_channels=64)
    with pytest.raises(InputError) as info:
        load_adm(tiny_pt, wrong)
    message = str(info.value)
    assert str(tiny_pt) in message and "'time_embed.0.weight'" in message and "shape" in message
    assert "\n" not in message
    fewer = TINY["repaint-like"].shrunk(num_res_blocks=1)
    with pytest.raises(InputError, match="not part of the ADM architecture|missing|shape"):
        load_adm(tiny_pt, fewer)


def test_truncated_random_and_foreign_files_are_refused(tiny_pt, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_pt.read_bytes()[: tiny_pt.stat().st_size // 2])
    noise = tmp_path / "random.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    foreign = tmp_path / "lama.ckpt"
    torch.save({"state_dict": {"generator.model.1.weight": torch.zeros(3)}}, foreign)
    other_model = tmp_path / "other.pt"
    torch.save({"conv_in.weight": torch.zeros(8, 3, 3, 3)}, other_model)
    for path in (truncated, noise, foreign, other_model):
        with pytest.raises(InputError) as info:
            load_adm(path, TINY["repaint-like"])
        assert str(path) in str(info.value) and "\n" not in str(info.value), path
    with pytest.raises(MethodUnavailable, match="not found"):
        load_adm(tmp_path / "absent.pt", TINY["repaint-like"])


class _Evil:
    """A pickle payload whose ``__reduce__`` would write a file when unpickled."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "pwned"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "written-by-the-pickle.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"time_embed.0.weight": _Evil(str(target))}, evil)
    # Make it fail on purpose: an unrestricted load does run the payload.
    torch.load(evil, weights_only=False)
    assert target.read_text() == "pwned"
    target.unlink()
    with pytest.raises(InputError, match=str(evil)):
        load_adm(evil, TINY["repaint-like"])
    assert not target.exists()
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_Evil(str(target))))
    with pytest.raises(InputError):
        load_adm(plain, TINY["repaint-like"])
    assert not target.exists()


# ---------------------------------------------------------------------------- inpaintbench weights


def test_weights_listing_names_every_public_checkpoint(capsys):
    from inpaintbench.cli import main
    from inpaintbench.cli.weights import CHECKPOINTS, NOT_PUBLISHED

    assert main(["weights"]) == 0
    text = capsys.readouterr().out
    assert len(CHECKPOINTS) >= 6
    for ck in CHECKPOINTS:
        assert ck.name in text and ck.file in text and ck.url in text
        assert ck.url.startswith("https://")
        # No hash is invented: the authors published none for these files.
        assert ck.sha256 == NOT_PUBLISHED
    for preset in PRESETS:
        assert f"adm:{preset}" in text
    assert "class-conditional" in text and "lama-official" in text and "552,814,086 parameters" in text


def test_weights_verify_prints_architecture_parameters_and_sha256(tiny_pt, tmp_path, capsys):
    import hashlib

    from inpaintbench.cli import main

    args = tmp_path / "tiny.toml"
    args.write_text("\n".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
                              for k, v in TINY["repaint-like"].as_dict().items()))
    assert main(["weights", "verify", str(tiny_pt), "--adm", str(args)]) == 0
    out = capsys.readouterr().out
    digest = hashlib.sha256(tiny_pt.read_bytes()).hexdigest()
    n_params = sum(v.numel() for v in torch.load(tiny_pt, weights_only=True).values())
    assert digest in out and f"{n_params:,}" in out and "loaded strictly" in out
    # Without --adm the tiny file matches no public preset: exit 2 with the first mismatch.
    assert main(["weights", "verify", str(tiny_pt)]) == 2
    err = capsys.readouterr().err
    assert "matches no ADM preset" in err and str(tiny_pt) in err
    assert main(["weights", "verify", str(tmp_path / "absent.pt")]) == 2


def test_weights_verify_finds_a_full_preset_from_the_tensors(tmp_path, capsys):
    """A file with the full ILVR-FFHQ layout (zeros, 94 M parameters) is recognised without --adm."""
    from inpaintbench.cli.weights import verify

    path = tmp_path / "ffhq_like.pt"
    with torch.device("meta"):
        layout = ADMUNet(PRESETS["ilvr-ffhq256"]).state_dict()
    torch.save({k: torch.zeros(v.shape) for k, v in layout.items()}, path)
    info = verify(path)
    assert info["architecture"] == "adm:ilvr-ffhq256" and info["parameters"] == 93_563_910


# ---------------------------------------------------------------------------- end to end


E2E_SUITE = """
datasets = [{{ name = "folder", root = "{root}", size = 32 }}]
masks = ["box"]
methods = [
  {{ name = "repaint", model = "{pt}", adm = "{args}", num_steps = 3, jump_length = 1, jump_n_sample = 2 }},
  {{ name = "ilvr", model = "{pt}", adm = "{args}", num_steps = 3 }},
]

[run]
seed = 0
n_images = 2
batch_size = 2
device = "cpu"
n_examples = 1
"""


def test_an_official_pt_runs_through_repaint_and_ilvr_from_a_suite_file(tiny_pt, tmp_path):
    """An ADM .pt saved from the reference UNetModel (random weights) runs from a suite file
    (model= / adm= an args file), 2 generated 32x32 RGB PNGs, 3 steps; records name the .pt."""
    from PIL import Image

    from inpaintbench.cli import main
    from inpaintbench.core.registry import method_registry

    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / f"img{i}.png")
    args = tmp_path / "tiny.toml"
    args.write_text("\n".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
                              for k, v in TINY["repaint-like"].as_dict().items()))
    suite = tmp_path / "adm.toml"
    suite.write_text(E2E_SUITE.format(root=root, pt=tiny_pt, args=args))
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--no-report", "-q"]) == 0
    records = raw_records([out])
    samples = [r for r in records if r.get("kind") == "sample"]
    assert {r["method"] for r in samples} == {"repaint", "ilvr"}
    assert len(samples) == 4 and all(r["status"] == "ok" for r in samples), [r.get("error") for r in samples]
    # The method holds the .pt in loaded_files and rebuilds from its config.
    for name in ("repaint", "ilvr"):
        method = method_registry().create(name, model=str(tiny_pt), adm=str(args), num_steps=3)
        assert method.loaded_files == [str(tiny_pt)]
        again = method_registry().create(name, **method.config)
        assert again.config == method.config and again.loaded_files == method.loaded_files


def test_repaint_method_chain_official_equals_the_official_loop(monkeypatch, tiny_pt):
    """The method option chain="official" (with an ADM .pt, so guided-diffusion's spacing)
    reproduces RePaint's released loop from the same draws, through RePaint.inpaint."""
    from inpaintbench.methods.diffusion.ddpm import from_model_space, to_model_space
    from inpaintbench.methods.diffusion.repaint import RePaint

    config = TINY["repaint-like"]
    (su,) = import_reference(GD_ROOT, ["guided_diffusion.script_util"])
    ref = su.create_model(**model_kwargs(config))
    ref.load_state_dict(torch.load(tiny_pt, weights_only=True))
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    hole = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    hole[:, :, 4:20, 10:30] = True
    gt = to_model_space(image)
    official, draws, _ = _official_repaint(monkeypatch, ref.eval(), 12, 3, 3, gt, (~hole).float(), seed=5)
    method = RePaint(model=str(tiny_pt), adm=_args_file(monkeypatch, config),
                     num_steps=12, jump_length=3, jump_n_sample=3, chain="official")
    assert method.config["chain"] == "official" and method.loaded_files == [str(tiny_pt)]
    out = method.inpaint(torch.where(hole, 0.0, image), hole, rng=_Replay(draws, 2))
    expected = torch.where(hole, from_model_space(official), image)
    diff = (out.image - expected).abs().max().item()
    print(f"RePaint(chain='official') vs official loop: max diff {diff:.3g}")
    assert diff <= 1e-5
    with pytest.raises(InputError, match="chain"):
        RePaint(model=str(tiny_pt), adm=_args_file(monkeypatch, config), chain="official", eta=0.0)


def _args_file(monkeypatch, config: ADMConfig) -> str:
    """``config`` written as a TOML args file in a temporary folder."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="adm-args-"))
    path = folder / "args.toml"
    path.write_text("\n".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
                              for k, v in config.as_dict().items()))
    return str(path)


def test_ilvr_method_lowpass_bicubic_and_model_alias(tiny_pt):
    from inpaintbench.core.seeding import SampleRNG
    from inpaintbench.methods.diffusion.ilvr import ILVRInpaint

    args = _args_file(None, TINY["repaint-like"])
    method = ILVRInpaint(model=str(tiny_pt), adm=args, num_steps=3, down_n=4, lowpass="bicubic")
    assert method.config["lowpass"] == "bicubic" and method.config["weights"] == str(tiny_pt)
    assert "lowpass" not in ILVRInpaint(model=str(tiny_pt), adm=args, num_steps=3).config
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    hole = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    hole[:, :, 8:24, 8:24] = True
    rng = SampleRNG([torch.Generator().manual_seed(i) for i in range(2)])
    out = method.inpaint(torch.where(hole, 0.0, image), hole, rng=rng)
    assert out.image.shape == image.shape and torch.equal(torch.where(hole, 0, out.image), torch.where(hole, 0, image))
    with pytest.raises(InputError, match="lowpass"):
        ILVRInpaint(model=str(tiny_pt), adm=args, num_steps=3, lowpass="gaussian")
    with pytest.raises(InputError, match="adm="):
        ILVRInpaint(model=str(tiny_pt), num_steps=3)
    with pytest.raises(InputError, match="disagree"):
        ILVRInpaint(model=str(tiny_pt), weights="other", adm=args, num_steps=3)


def test_default_methods_keep_their_config_keys_and_prior():
    """Adding model= / adm= / chain= / lowpass= leaves the committed-MNIST methods' configs
    (hence every existing result's config hash) unchanged, and they still sample."""
    from inpaintbench.core.seeding import SampleRNG
    from inpaintbench.methods.diffusion.respacing import Respacing
    from inpaintbench.core.registry import method_registry

    registry = method_registry()
    try:
        repaint = registry.create("repaint")
    except MethodUnavailable as err:
        pytest.skip(f"the committed MNIST prior is unavailable: {err}")
    assert set(repaint.config) == {"weights", "num_steps", "jump_length", "jump_n_sample", "eta", "paste_known",
                                   "strength", "batch_size", "clip_denoised"}
    assert type(repaint.respacing) is Respacing
    ilvr = registry.create("ilvr", num_steps=2)
    assert set(ilvr.config) == {"num_steps", "down_n", "range_t", "weights"}
    image = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    hole = torch.zeros(1, 1, 28, 28, dtype=torch.bool)
    hole[..., 8:20, 8:20] = True
    out = registry.create("repaint", num_steps=2, jump_length=1).inpaint(
        torch.where(hole, 0.0, image), hole, rng=SampleRNG([torch.Generator().manual_seed(0)]))
    assert out.image.shape == image.shape


def test_super_resolution_by_inpainting_takes_the_adm_checkpoint(tiny_pt):
    """sr-inpaint-repaint passes model= / adm= to its inner RePaint; the .pt is a weight file."""
    from inpaintbench.core.registry import method_registry

    args = _args_file(None, TINY["repaint-like"])
    method = method_registry().create("sr-inpaint-repaint", inpainter_config={
        "model": str(tiny_pt), "adm": args, "num_steps": 2, "jump_length": 1, "jump_n_sample": 1})
    assert str(tiny_pt) in method.weight_files()
    bicubic_ilvr = method_registry().create("sr-bicubic-ilvr", model=str(tiny_pt), adm=args, num_steps=2)
    assert bicubic_ilvr.loaded_files == [str(tiny_pt)] and bicubic_ilvr.config["adm"] == args


@pytest.mark.parametrize("down_n,range_t", [(4, 2), (2, 0)])
def test_whole_ilvr_chain_official_equals_ilvr_loop(monkeypatch, tiny_pt, down_n, range_t):
    """ILVR's released loop (p_sample_loop with Resizer down/up, range_t) equals the method's
    chain="official" (bicubic phi_N, reference noised to the current level, t > range_t) from
    the same draws; the core's default chain does not."""
    from inpaintbench.methods.diffusion.ddpm import from_model_space, to_model_space
    from inpaintbench.methods.diffusion.ilvr import ILVRMethod

    gd, su = import_reference(ILVR_ROOT, ["guided_diffusion.gaussian_diffusion", "guided_diffusion.script_util"])
    (resizer,) = import_reference(ILVR_ROOT, ["resizer"])
    (gsu,) = import_reference(GD_ROOT, ["guided_diffusion.script_util"])
    config = TINY["repaint-like"]
    ref = gsu.create_model(**model_kwargs(config))
    ref.load_state_dict(torch.load(tiny_pt, weights_only=True))
    ref.eval()
    diffusion = su.create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="linear",
                                             timestep_respacing="10")
    shape = (2, 3, 32, 32)
    down = resizer.Resizer(shape, 1 / down_n)
    up = resizer.Resizer((2, 3, 32 // down_n, 32 // down_n), down_n)
    reference = torch.rand(shape, generator=torch.Generator().manual_seed(4))
    recorder = _Recorder(21)
    monkeypatch.setattr(gd, "th", recorder)
    with torch.no_grad():
        official = diffusion.p_sample_loop(lambda x, t, **_: ref(x, t), shape,
                                           model_kwargs={"ref_img": to_model_space(reference)},
                                           resizers=(down, up), range_t=range_t, device=torch.device("cpu"))
    draws = recorder.draws
    assert len(draws) == 1 + 10 + (10 - 1 - range_t)  # start, z per step, reference noise while t > range_t
    args = _args_file(None, config)
    method = ILVRMethod(model=str(tiny_pt), adm=args, num_steps=10, down_n=down_n, range_t=range_t, chain="official")
    assert method.config["chain"] == "official"
    out = method.sample(reference, None, rng=_Replay(draws, 2))
    diff = (out.image - from_model_space(official)).abs().max().item()
    print(f"ILVR chain N={down_n} range_t={range_t}: max diff {diff:.3g}")
    assert diff <= 1e-5, diff
    # Make it fail: the core's chain (cell means, next level, conditioned last step) differs.
    core_method = ILVRMethod(model=str(tiny_pt), adm=args, num_steps=10, down_n=down_n, range_t=range_t)
    replay = _Replay(draws + draws, 2)
    assert (core_method.sample(reference, None, rng=replay).image - from_model_space(official)).abs().max() > 1e-3
