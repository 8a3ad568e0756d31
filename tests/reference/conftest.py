"""Fixtures of the oracle tests of the gradient solvers (DPS, PiGDM, RED-diff): tiny random
networks, one per test module."""

from __future__ import annotations

import json

import pytest
import torch

from reddiff_oracle import SIZE, T  # tests/reference is on pytest's pythonpath


@pytest.fixture(scope="module")
def pair():
    """A tiny random 3-channel diffusers UNet (``SIZE`` px) and its ``T``-step linear scheduler."""
    from inpaintbench.methods.diffusion.ddpm_network import build_scheduler, build_unet
    from inpaintbench.methods.training.init import seeded_init_

    unet = build_unet(SIZE, 3, (32, 32), 1, (False, False), False, 8)
    seeded_init_(unet, 0)
    return unet.eval(), build_scheduler(T)


@pytest.fixture(scope="module")
def tiny_adm_files(tmp_path_factory):
    """A random tiny 16-px ADM checkpoint with learned variance (6 output channels) and its args
    file: ``(pt, json)``."""
    from inpaintbench.methods.diffusion.adm_config import ADMConfig
    from inpaintbench.methods.diffusion.adm_network import ADMUNet

    args = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="8",
                num_head_channels=16, learn_sigma=True, diffusion_steps=T, noise_schedule="linear",
                resblock_updown=True, use_scale_shift_norm=True)
    net = ADMUNet(ADMConfig.from_mapping(args))
    gen = torch.Generator().manual_seed(1)
    folder = tmp_path_factory.mktemp("adm")
    torch.save({k: torch.randn(v.shape, generator=gen) * 0.1 for k, v in net.state_dict().items()}, folder / "tiny.pt")
    (folder / "tiny.json").write_text(json.dumps(args))
    return folder / "tiny.pt", folder / "tiny.json"
