"""DDPM prior: UNet construction, the training task, loading (and refusing to load), sampling."""

from __future__ import annotations

import pytest
import torch

from inpaintbench.api import InputError, MethodUnavailable
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
    from inpaintbench.methods.diffusion import ddpm

    missing = tmp_path / "no-such-weights"
    with pytest.raises(MethodUnavailable, match="no-such-weights.*does not exist"):
        load_ddpm(missing)
    # the default MNIST folder's message also carries the command that creates it
    monkeypatch.setattr(ddpm, "MNIST_WEIGHTS", tmp_path / "ddpm-mnist")
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


def test_sampling_shape_range_and_determinism():
    task = DDPMTask(**TINY)
    unet, scheduler = task.unet.eval(), task.scheduler
    a = sample_ddpm(unet, scheduler, 3, generator=torch.Generator().manual_seed(1), num_inference_steps=4, batch_size=2)
    b = sample_ddpm(unet, scheduler, 3, generator=torch.Generator().manual_seed(1), num_inference_steps=4, batch_size=2)
    assert a.shape == (3, 1, 8, 8) and a.dtype == torch.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert torch.equal(a, b)
    assert scheduler.num_inference_steps is None  # the caller's scheduler is left untouched


@pytest.mark.skipif(not (MNIST_WEIGHTS / "diffusion_pytorch_model.safetensors").exists(),
                    reason="committed MNIST prior not present (methods/weights/ddpm-mnist)")
def test_committed_mnist_prior_loads():
    unet, scheduler = load_ddpm()
    assert unet.config.sample_size == 28 and unet.config.in_channels == 1
    assert scheduler.config.num_train_timesteps == 1000
