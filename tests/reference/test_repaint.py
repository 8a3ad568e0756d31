"""RePaint: the resampling schedule, the sampler's invariants, per-sample randomness, and a
cross-check of the diffusion core against diffusers' RePaintScheduler/RePaintPipeline on the
same (tiny, random) UNet."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.method import Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion import core
from inpaintbench.methods.diffusion.conditioning import Replacement
from inpaintbench.methods.diffusion.denoiser import DenoiserOutput, UNet2DDenoiser
from inpaintbench.methods.diffusion.respacing import NoiseSchedule, Respacing
from inpaintbench.methods.diffusion.ddpm import MNIST_WEIGHTS, DDPMTask
from inpaintbench.methods.diffusion.repaint import RePaint, repaint_schedule, schedule_nfe
from inpaintbench.core.tasks import Inpainting

TINY = dict(image_size=8, channels=1, block_out_channels=(8, 16), attention_levels=(False, False),
            norm_num_groups=8, num_train_timesteps=100)



@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A randomly initialised tiny UNet saved like the real prior (never a reported result)."""
    folder = tmp_path_factory.mktemp("tiny-ddpm")
    task = DDPMTask(**TINY)
    task.export(task.modules(), folder)
    return folder


def rng(n=3, seed=0) -> SampleRNG:
    """Per-sample generators ``seed, seed + 1, ...``."""
    return SampleRNG([torch.Generator().manual_seed(seed + i) for i in range(n)])


def batch(n=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 1, 8, 8, generator=gen)
    mask = torch.zeros(n, 1, 8, 8, dtype=torch.bool)
    mask[:, :, 2:6, 1:5] = True
    return image.masked_fill(mask, 0.0), mask


@pytest.mark.parametrize("t_T, j, r", [(25, 5, 2), (50, 5, 3), (250, 10, 10), (10, 3, 1), (7, 10, 4), (1, 1, 1)])
def test_schedule_nfe_matches_formula(t_T, j, r):
    schedule = repaint_schedule(t_T, j, r)
    assert schedule[0] == t_T - 1 and schedule[-1] == -1
    assert all(abs(a - b) == 1 for a, b in zip(schedule[:-1], schedule[1:]))
    assert schedule_nfe(schedule) == t_T + (r - 1) * j * len(range(0, t_T - j, j))
    assert max(schedule) == t_T - 1 and min(schedule) == -1


def test_schedule_matches_diffusers_timesteps():
    from diffusers import RePaintScheduler

    sched = RePaintScheduler(num_train_timesteps=1000)
    sched.set_timesteps(50, jump_length=5, jump_n_sample=3)
    ours = repaint_schedule(50, 5, 3)
    assert ours[:-1] == (sched.timesteps // 20).tolist()


def test_schedule_rejects_bad_arguments():
    with pytest.raises(InputError, match="jump_length"):
        repaint_schedule(10, 0, 2)


def test_paper_preset_nfe():
    # T=250, j=10, r=10 (paper): 250 + 9 * 10 * 24 = 2410 network evaluations per image
    assert schedule_nfe(repaint_schedule(250, 10, 10)) == 2410


def test_output_contract_and_known_pixels(tiny_weights):
    method = RePaint(weights=tiny_weights, num_steps=5, jump_length=2, jump_n_sample=2)
    image, mask = batch()
    result = method.inpaint(image, mask, rng=rng())
    assert isinstance(result, Restoration) and result.stats == {"nfe": 5.0 + 1 * 2 * 2}
    out = result.image
    assert out.shape == image.shape and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0 and torch.isfinite(out).all()
    assert method.preserves_known
    assert torch.equal(out[~mask.expand_as(out)], image[~mask.expand_as(image)])
    again = method.inpaint(image, mask, rng=rng()).image
    other = method.inpaint(image, mask, rng=rng(seed=10)).image
    assert torch.equal(out, again)
    assert not torch.equal(out, other)
    assert method.weight_files() == [str(tiny_weights)]


def test_restore_goes_through_the_task(tiny_weights):
    method = RePaint(weights=tiny_weights, num_steps=3, jump_n_sample=1)
    image, mask = batch()
    original = torch.rand(image.shape, generator=torch.Generator().manual_seed(3))
    result = method.restore(Inpainting(mask).observe(original), rng())
    expected = method.inpaint(original.masked_fill(mask, 0.0), mask, rng=rng())
    assert torch.equal(result.image, expected.image) and result.stats == {"nfe": 3.0}


def test_no_paste_is_sdedit_and_changes_known_pixels(tiny_weights):
    method = RePaint(weights=tiny_weights, num_steps=4, jump_n_sample=1, paste_known=False)
    image, mask = batch()
    out = method.inpaint(image, mask, rng=rng()).image
    assert not method.preserves_known
    assert 0.0 <= out.min() and out.max() <= 1.0
    # Without pasting nothing holds the known pixels: from pure noise they are regenerated.
    known = ~mask.expand_as(out)
    assert (out[known] - image[known]).abs().max() > 0.05


def test_holes_do_not_leak(tiny_weights):
    method = RePaint(weights=tiny_weights, num_steps=4, jump_length=2, jump_n_sample=2)
    image, mask = batch()
    tampered = torch.where(mask, torch.rand(image.shape, generator=torch.Generator().manual_seed(9)), image)
    a = method.inpaint(image, mask, rng=rng()).image
    b = method.inpaint(tampered, mask, rng=rng()).image
    assert torch.equal(a, b)  # nothing of the holes' values reaches the output


def test_strength_below_one_starts_from_the_noised_input(tiny_weights):
    full = RePaint(weights=tiny_weights, num_steps=10, jump_length=2, jump_n_sample=2)
    half = RePaint(weights=tiny_weights, num_steps=10, jump_length=2, jump_n_sample=2, strength=0.5)
    assert half.schedule[0] == 4 and half.schedule == full.schedule[full.schedule.index(4):]
    image, mask = batch()
    half_nfe = half.inpaint(image, mask, rng=rng()).stats["nfe"]
    full_nfe = full.inpaint(image, mask, rng=rng()).stats["nfe"]
    assert half_nfe == schedule_nfe(half.schedule) < full_nfe
    # a tiny strength keeps the output close to the input (few, low-noise steps)
    gentle = RePaint(weights=tiny_weights, num_steps=100, jump_n_sample=1, strength=0.02, paste_known=False)
    result = gentle.inpaint(image, mask, rng=rng())
    out = result.image
    assert result.stats["nfe"] == 2
    assert (out - image).abs().max() < 0.15
    with pytest.raises(InputError, match="strength"):
        RePaint(weights=tiny_weights, strength=0.0)


def test_chunked_equals_batched(tiny_weights):
    """batch_size chunks draw from their own images' generators: the same output."""
    whole = RePaint(weights=tiny_weights, num_steps=3, jump_n_sample=1)
    chunked = RePaint(weights=tiny_weights, num_steps=3, jump_n_sample=1, batch_size=2)
    image, mask = batch(3)
    a = whole.inpaint(image, mask, rng=rng())
    b = chunked.inpaint(image, mask, rng=rng())
    assert a.stats == b.stats == {"nfe": 3.0}
    torch.testing.assert_close(a.image, b.image, atol=1e-4, rtol=0)


def test_batch_of_n_equals_n_single_calls(tiny_weights):
    """Per-sample randomness: image i of a batch equals image i run alone with generator i,
    up to the batched UNet's float rounding (oneDNN picks kernels per batch size)."""
    method = RePaint(weights=tiny_weights, num_steps=6, jump_length=2, jump_n_sample=2)
    image, mask = batch(4, seed=2)
    batched = method.inpaint(image, mask, rng=rng(4)).image
    for i in range(4):
        single = method.inpaint(image[i:i + 1], mask[i:i + 1], rng=SampleRNG([torch.Generator().manual_seed(i)]))
        torch.testing.assert_close(batched[i:i + 1], single.image, atol=1e-4, rtol=0)


class ZeroDenoiser:
    """A UNet stub predicting eps = 0: the chain is then a fixed affine map of the draws, so
    the output exposes the noise drawn for each sample."""

    learn_sigma, in_channels, sample_size = False, 1, (8, 8)

    def __call__(self, x, t):
        return DenoiserOutput(torch.zeros_like(x))


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_noise_of_a_sample_is_bitwise_independent_of_its_batch(tiny_weights, strength):
    method = RePaint(weights=tiny_weights, num_steps=6, jump_length=2, jump_n_sample=2, strength=strength)
    method.prior.denoiser = ZeroDenoiser()
    image, mask = batch(3, seed=5)
    batched = method.inpaint(image, mask, rng=rng(3)).image
    for i in range(3):
        single = method.inpaint(image[i:i + 1], mask[i:i + 1], rng=SampleRNG([torch.Generator().manual_seed(i)]))
        assert torch.equal(batched[i:i + 1], single.image)
    # and the draws do differ between samples
    assert not torch.equal(batched[0], batched[1])


def test_bad_inputs_and_missing_weights(tiny_weights, tmp_path):
    method = RePaint(weights=tiny_weights, num_steps=2, jump_n_sample=1)
    image, mask = batch()
    with pytest.raises(InputError, match="mask must be a bool"):
        method.inpaint(image, mask.float(), rng=rng())
    with pytest.raises(InputError, match="shape"):
        method.inpaint(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16, dtype=torch.bool), rng=rng(1))
    with pytest.raises(MethodUnavailable, match="missing-prior"):
        RePaint(weights=tmp_path / "missing-prior")
    with pytest.raises(InputError, match="num_steps"):
        RePaint(weights=tiny_weights, num_steps=101)


def diffusers_states(timesteps: list[int]) -> list[int]:
    """The states diffusers' RePaintPipeline visits for its timestep list (in respaced indices).

    diffusers evaluates the model at each listed t (state t -> t - 1) and, on an upward entry,
    noises the *current* state (one below the listed t_last) up to t - 1. So its chain is
    ours run on ``[ts[0]] + [t - 1 for t in ts]``: each jump starts one level lower, and the
    last jump re-noises the finished x_0 (see the report).
    """
    return [timesteps[0]] + [t - 1 for t in timesteps]


class ReplayRNG:
    """Stands in for a SampleRNG: hands out recorded batch draws in order."""

    def __init__(self, draws):
        self.draws = iter(draws)

    def randn(self, *shape):
        return next(self.draws)

    def randn_like(self, x):
        out = next(self.draws)
        assert out.shape == x.shape
        return out


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_matches_diffusers_repaint_pipeline(eta, monkeypatch):
    """Same UNet, same chain of states, same noise -> same output as diffusers' RePaintPipeline.

    Without respacing (t_T = T) diffusers' unit-step undo is exactly one of our jumps, so the
    recorded diffusers draws can be replayed into the core's loop one for one (in the order the
    core documents: start, then per reverse step one draw shared by both regions, one per jump).
    """
    from diffusers import RePaintPipeline, RePaintScheduler
    import diffusers.pipelines.deprecated.repaint.pipeline_repaint as pipe_mod
    import diffusers.schedulers.scheduling_repaint as sched_mod

    T, j, r = 20, 3, 2
    task = DDPMTask(**{**TINY, "num_train_timesteps": T})
    unet = task.unet.eval()
    scheduler = RePaintScheduler(num_train_timesteps=T, eta=eta)  # linear betas, as in training
    image, mask = batch(2, seed=4)
    x0 = image * 2 - 1
    known = (~mask).float()  # diffusers' RePaint mask: 1 = known

    draws: list[torch.Tensor] = []

    def recorder(original):
        def randn(shape, generator=None, device=None, dtype=None, **kw):
            out = original(shape, generator=generator, device=device, dtype=dtype, **kw)
            draws.append(out.clone())
            return out
        return randn

    monkeypatch.setattr(pipe_mod, "randn_tensor", recorder(pipe_mod.randn_tensor))
    monkeypatch.setattr(sched_mod, "randn_tensor", recorder(sched_mod.randn_tensor))
    calls = {"n": 0}
    original_forward = unet.forward

    def counting_forward(*args, **kw):
        calls["n"] += 1
        return original_forward(*args, **kw)

    monkeypatch.setattr(unet, "forward", counting_forward)
    pipe = RePaintPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(image=x0, mask_image=known, num_inference_steps=T, jump_length=j, jump_n_sample=r,
               eta=eta, generator=torch.Generator().manual_seed(0), output_type="np").images
    ref = torch.from_numpy(ref).permute(0, 3, 1, 2)
    ref_nfe, calls["n"] = calls["n"], 0

    ours_schedule = repaint_schedule(T, j, r)
    assert scheduler.timesteps.tolist() == ours_schedule[:-1]  # the same list of indices...
    states = diffusers_states(scheduler.timesteps.tolist())
    assert states != ours_schedule  # ...read as a different chain (see diffusers_states)
    assert schedule_nfe(states) == schedule_nfe(ours_schedule) == ref_nfe  # same work

    replay = ReplayRNG(draws)
    respacing = Respacing(NoiseSchedule.from_scheduler(scheduler), T)
    out, nfe = core.sample(UNet2DDenoiser(unet), respacing, states, replay, shape=x0.shape,
                           guidance=Replacement(x0, mask), eta=eta)
    assert nfe == calls["n"] == ref_nfe
    assert next(replay.draws, None) is None, "every diffusers draw was used exactly once"
    torch.testing.assert_close((out / 2 + 0.5).clamp(0, 1), ref, atol=1e-5, rtol=0)


SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.needs_shared
@pytest.mark.skipif(not (MNIST_WEIGHTS / "diffusion_pytorch_model.safetensors").exists(),
                    reason="committed MNIST prior not present (methods/weights/ddpm-mnist)")
@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason=f"MNIST not found under {SHARED_DATA}")
def test_committed_prior_beats_mean_fill_on_mnist_holes():
    """With the trained prior, RePaint restores every other missing row of real test digits far
    better than a flat fill (a sampler is not a posterior mean: on big holes its error can match
    a flat fill's, so the test uses holes that the known pixels pin down)."""
    from inpaintbench.datasets.mnist import MNISTDataset

    data = MNISTDataset(SHARED_DATA, split="test", limit=16)
    image = torch.stack([data[i].image for i in range(16)])
    mask = torch.zeros(16, 1, 28, 28, dtype=torch.bool)
    mask[:, :, 1::2, :] = True  # RePaint's "alternating lines"
    method = RePaint(num_steps=25, jump_length=5, jump_n_sample=2)
    rng = SampleRNG.for_samples("test", sample_ids=[str(i) for i in range(16)])
    out = method.inpaint(image.masked_fill(mask, 0.0), mask, rng=rng).image
    hole = mask.expand_as(image)
    repaint_mse = ((out - image)[hole] ** 2).mean()
    known_mean = image[~hole].mean()
    flat_mse = ((known_mean - image)[hole] ** 2).mean()
    assert repaint_mse < 0.5 * flat_mse, (repaint_mse, flat_mse)
