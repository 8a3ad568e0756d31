"""DDPM prior: UNet construction, the training task, loading (and refusing to load), sampling
through the diffusion core, and the core's step against the official guided-diffusion
(learned and fixed variance)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion import core
from inpaintbench.methods.diffusion.denoiser import DenoiserOutput, UNet2DDenoiser
from inpaintbench.methods.diffusion.prior import DiffusionPrior
from inpaintbench.methods.diffusion.respacing import NoiseSchedule, Respacing
from inpaintbench.methods.diffusion.schedules import plain_schedule
from inpaintbench.methods.diffusion.steps import reverse_step
from inpaintbench.methods.diffusion.ddpm import (
    MNIST_WEIGHTS,
    DDPMTask,
    build_unet,
    load_ddpm,
    sample_ddpm,
)
from inpaintbench.methods.training.loop import TrainTask

TINY = dict(image_size=8, channels=1, block_out_channels=(8, 16), attention_levels=(False, False),
            norm_num_groups=8, num_train_timesteps=50)



def test_mnist_unet_is_small_and_keeps_shape():
    unet = build_unet()  # the MNIST defaults of methods/configs/ddpm-mnist.toml
    n_params = sum(p.numel() for p in unet.parameters())
    assert 0.8e6 < n_params < 1.5e6
    x = torch.zeros(2, 1, 28, 28)
    assert unet(x, torch.tensor([0, 999])).sample.shape == (2, 1, 28, 28)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=30), "not divisible"),
        (dict(attention_levels=(True,)), "attention_levels needs 3"),
        (dict(norm_num_groups=24), "norm_num_groups"),
    ],
)
def test_build_unet_rejects_bad_config(kwargs, message):
    with pytest.raises(InputError, match=message):
        build_unet(**kwargs)


def test_task_is_seeded_and_its_loss_deterministic():
    a, b, c = DDPMTask(**TINY), DDPMTask(**TINY), DDPMTask(**{**TINY, "init_seed": 1})
    assert isinstance(a, TrainTask)
    assert all(torch.equal(p, q) for p, q in zip(a.unet.parameters(), b.unet.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(a.unet.parameters(), c.unet.parameters()))
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    la, _ = a.loss(images, 0, torch.Generator().manual_seed(5))
    lb, _ = b.loss(images, 0, torch.Generator().manual_seed(5))
    assert la.ndim == 0 and torch.isfinite(la) and la.item() == lb.item()
    # untrained epsilon prediction: the MSE against unit-variance noise is of order 1
    assert 0.3 < la.item() < 5.0


def test_export_then_load_round_trip(tmp_path):
    task = DDPMTask(**TINY)
    task.export(task.modules(), tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    unet, scheduler = load_ddpm(tmp_path)
    assert scheduler.config.num_train_timesteps == 50
    assert scheduler.config.prediction_type == "epsilon"
    assert not unet.training
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([3, 40])
    with torch.no_grad():
        assert torch.equal(unet(x, t).sample, task.unet.eval()(x, t).sample)


def test_missing_folder_names_path_and_train_command(tmp_path, monkeypatch):
    from inpaintbench.methods.diffusion import ddpm_checkpoint

    missing = tmp_path / "no-such-weights"
    with pytest.raises(MethodUnavailable, match="no-such-weights.*does not exist"):
        load_ddpm(missing)
    # the default MNIST folder's message also carries the command that creates it
    monkeypatch.setattr(ddpm_checkpoint, "MNIST_WEIGHTS", tmp_path / "ddpm-mnist")
    with pytest.raises(MethodUnavailable, match="ddpm-mnist does not exist.*inpaintbench train ddpm"):
        load_ddpm(tmp_path / "ddpm-mnist")


def test_folder_without_safetensors_is_refused(tmp_path):
    task = DDPMTask(**TINY)
    task.export(task.modules(), tmp_path)
    (tmp_path / "diffusion_pytorch_model.safetensors").unlink()
    torch.save(task.unet.state_dict(), tmp_path / "diffusion_pytorch_model.bin")  # pickled: never read
    with pytest.raises(MethodUnavailable, match="diffusion_pytorch_model.safetensors"):
        load_ddpm(tmp_path)


def test_uncached_hub_id_offline_is_unavailable():
    with pytest.raises(MethodUnavailable, match="inpaintbench-test/no-such-model"):
        load_ddpm("inpaintbench-test/no-such-model", local_files_only=True)


def rng(n: int, seed: int = 0) -> SampleRNG:
    return SampleRNG([torch.Generator().manual_seed(seed + i) for i in range(n)])


def test_sampling_shape_range_and_determinism():
    task = DDPMTask(**TINY)
    unet, scheduler = task.unet.eval(), task.scheduler
    a = sample_ddpm(unet, scheduler, rng(3, 1), num_inference_steps=4, batch_size=2)
    b = sample_ddpm(unet, scheduler, rng(3, 1), num_inference_steps=4, batch_size=3)
    assert a.shape == (3, 1, 8, 8) and a.dtype == torch.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)  # per-sample noise: batching does not matter
    assert torch.equal(a, sample_ddpm(unet, scheduler, rng(3, 1), num_inference_steps=4, batch_size=2))
    assert scheduler.num_inference_steps is None  # the caller's scheduler is left untouched


def test_sampling_equals_diffusers_ddpm_loop_without_clipping():
    """Oracle: with clip_sample=False the core's loop (eta = 1, fixed-small variance) is
    diffusers' DDPMScheduler ancestral loop on the same respaced timesteps and the same noise."""
    import copy

    task = DDPMTask(**TINY)
    unet, scheduler = task.unet.eval(), task.scheduler
    loaded = DiffusionPrior.from_pair(unet, scheduler)
    respacing = Respacing(loaded.schedule, 5)
    draws = [torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(k)) for k in range(6)]

    class Replay:
        def __init__(self):
            self.it = iter(draws)

        def randn(self, *shape):
            return next(self.it)

        def randn_like(self, x):
            return next(self.it)

    ours = core.sample(loaded.denoiser, respacing, plain_schedule(5), Replay(), shape=(2, 1, 8, 8),
                       clip_denoised=False).sample
    ref = copy.deepcopy(scheduler)
    ref.register_to_config(clip_sample=False)
    ref.set_timesteps(5)
    x = draws[0]
    for k, t in enumerate(ref.timesteps):
        with torch.no_grad():
            eps = unet(x, t).sample
        # diffusers draws its variance noise from the generator; give it ours (draw k + 1)
        x = ref.step(eps, t, x, generator=torch.Generator().manual_seed(k + 1)).prev_sample
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=0)


GUIDED = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "guided-diffusion"


@pytest.mark.skipif(not (GUIDED / "guided_diffusion" / "respace.py").exists(),
                    reason=f"official guided-diffusion not found at {GUIDED}")
@pytest.mark.parametrize("learn_sigma", [True, False])
def test_reverse_step_matches_guided_diffusion(learn_sigma, monkeypatch):
    """Oracle: one respaced reverse step with a learned-variance (2C-channel) or fixed-small
    network equals guided-diffusion's p_mean_variance (posterior mean of the clipped x0 and
    IDDPM's interpolated log variance) plus exp(log_var / 2) z, on the respaced timesteps the
    core uses (SpacedDiffusion with use_timesteps = {i * T // t_T})."""
    monkeypatch.syspath_prepend(str(GUIDED))
    from guided_diffusion import gaussian_diffusion as gd
    from guided_diffusion.respace import SpacedDiffusion

    T, t_T = 100, 10
    scheduler = build_scheduler_for(T)
    schedule = NoiseSchedule.from_scheduler(scheduler)
    respacing = Respacing(schedule, t_T)
    spaced = SpacedDiffusion(
        use_timesteps={respacing.timestep(i) for i in range(t_T)},
        betas=schedule.betas.double().numpy(),
        model_mean_type=gd.ModelMeanType.EPSILON,
        model_var_type=gd.ModelVarType.LEARNED_RANGE if learn_sigma else gd.ModelVarType.FIXED_SMALL,
        loss_type=gd.LossType.MSE,
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen)
    eps = torch.randn(2, 3, 8, 8, generator=gen) * 1.5  # large: some x0_hat get clipped
    v = torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1
    z = torch.randn(2, 3, 8, 8, generator=gen)
    output = torch.cat([eps, v], 1) if learn_sigma else eps
    for index in (9, 4, 1):
        # the spaced model is called with the respaced index and maps it to the timestep itself
        out = spaced.p_mean_variance(lambda x_, t_: output, x, torch.full((2,), index), clip_denoised=True)
        expected = out["mean"] + (0.5 * out["log_variance"]).exp() * z
        ours, x0_hat = reverse_step(x, DenoiserOutput(eps, v if learn_sigma else None),
                                         respacing.alpha_bar(index), respacing.alpha_bar(index - 1), z)
        torch.testing.assert_close(x0_hat, out["pred_xstart"].float(), atol=1e-5, rtol=0)
        if learn_sigma:
            torch.testing.assert_close(ours, expected.float(), atol=1e-4, rtol=0)
        else:
            # fixed-small: same variance; the mean agrees where x0_hat is not clipped (the core
            # keeps the network's eps there, see reverse_step)
            raw = (x - (1 - respacing.alpha_bar(index)).sqrt() * eps) / respacing.alpha_bar(index).sqrt()
            keep = raw.abs() <= 1
            torch.testing.assert_close(ours[keep], expected.float()[keep], atol=1e-4, rtol=0)


def build_scheduler_for(T: int):
    from inpaintbench.methods.diffusion.ddpm import build_scheduler

    return build_scheduler(num_train_timesteps=T)


def test_unet_adapter_splits_learned_variance():
    unet = build_unet(image_size=8, channels=1, block_out_channels=(8, 16), attention_levels=(False, False),
                      norm_num_groups=8)
    with pytest.raises(InputError, match="learn_sigma=True needs a UNet with 2 output channels"):
        UNet2DDenoiser(unet, learn_sigma=True)
    from diffusers import UNet2DModel

    two = UNet2DModel(sample_size=8, in_channels=1, out_channels=2, block_out_channels=(8, 16),
                      down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                      norm_num_groups=8, layers_per_block=1).eval()
    denoiser = UNet2DDenoiser(two, learn_sigma=True)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 5])
    with torch.no_grad():
        full = two(x, t).sample
        eps, v = denoiser(x, t)
    assert torch.equal(eps, full[:, :1]) and torch.equal(v, full[:, 1:])


@pytest.mark.skipif(not (MNIST_WEIGHTS / "diffusion_pytorch_model.safetensors").exists(),
                    reason="committed MNIST prior not present (methods/weights/ddpm-mnist)")
def test_committed_mnist_prior_loads():
    unet, scheduler = load_ddpm()
    assert unet.config.sample_size == 28 and unet.config.in_channels == 1
    assert scheduler.config.num_train_timesteps == 1000
