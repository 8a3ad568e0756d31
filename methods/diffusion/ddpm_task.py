"""The DDPM training task (noise-prediction MSE) of ``inpaintbench train ddpm``
(``methods/configs/ddpm-*.toml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inpaintbench.methods.diffusion.ddpm_network import build_scheduler, build_unet
from inpaintbench.methods.diffusion.denoiser import to_model_space
from inpaintbench.methods.training.init import seeded_init_

__all__ = ["DDPMTask"]


class DDPMTask:
    """:class:`inpaintbench.methods.training.loop.TrainTask` of a DDPM: noise-prediction MSE.

    Keyword arguments are those of :func:`build_unet` plus ``num_train_timesteps`` and
    ``beta_schedule`` of :func:`build_scheduler`; they are kept in ``self.config``.
    The UNet is initialised from ``init_seed`` (a local generator, not the global RNG).
    """

    def __init__(self, *, num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                 init_seed: int = 0, **unet_kwargs: Any):
        self.config = {"num_train_timesteps": num_train_timesteps, "beta_schedule": beta_schedule,
                       "init_seed": init_seed, **unet_kwargs}
        self.scheduler = build_scheduler(num_train_timesteps, beta_schedule)
        self.unet = build_unet(**unet_kwargs)
        seeded_init_(self.unet, init_seed)

    def modules(self) -> dict[str, torch.nn.Module]:
        """``{"unet": UNet2DModel}``."""
        return {"unet": self.unet}

    def loss(self, images: torch.Tensor, step: int, generator: torch.Generator):
        """MSE between the true and predicted noise at uniform random timesteps.

        ``images``: float32 ``[B, C, H, W]`` in ``[0, 1]``; timesteps and noise from ``generator``.
        """
        x0 = to_model_space(images)
        T = self.scheduler.config.num_train_timesteps
        t = torch.randint(0, T, (x0.shape[0],), generator=generator, device=x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.scheduler.add_noise(x0, noise, t)
        pred = self.unet(x_t, t).sample
        return F.mse_loss(pred, noise), {}

    def export(self, modules: dict[str, torch.nn.Module], out_dir: Path) -> None:
        """``save_pretrained`` of the UNet (safetensors) and the scheduler into ``out_dir``."""
        modules["unet"].save_pretrained(out_dir, safe_serialization=True)
        self.scheduler.save_pretrained(out_dir)
