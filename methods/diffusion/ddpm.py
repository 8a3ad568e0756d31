"""The DDPM prior (Ho et al. 2020) as one namespace, and its sample-grid command.

The family lives in modules by role: :mod:`~inpaintbench.methods.diffusion.ddpm_network`
(``build_unet``, ``build_scheduler``), :mod:`~inpaintbench.methods.diffusion.ddpm_task` (the
training task ``DDPMTask``), :mod:`~inpaintbench.methods.diffusion.ddpm_checkpoint`
(``load_ddpm``, ``MNIST_WEIGHTS``); they are re-exported here because the method catalogue
(``ddpm:DDPMTask``), the weights' TRAINING.md notes and the training tests name this module.
This module itself draws unconditional samples through the diffusion core
(:func:`sample_ddpm`) and renders them (``python -m inpaintbench.methods.diffusion.ddpm``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.core import sample
from inpaintbench.methods.diffusion.ddpm_checkpoint import MNIST_TRAIN_COMMAND, MNIST_WEIGHTS, load_ddpm
from inpaintbench.methods.diffusion.ddpm_network import build_scheduler, build_unet
from inpaintbench.methods.diffusion.ddpm_task import DDPMTask
from inpaintbench.methods.diffusion.denoiser import from_model_space, to_model_space
from inpaintbench.methods.diffusion.prior import DiffusionPrior
from inpaintbench.methods.diffusion.respacing import Respacing
from inpaintbench.methods.diffusion.schedules import plain_schedule

__all__ = ["DDPMTask", "MNIST_TRAIN_COMMAND", "MNIST_WEIGHTS", "build_scheduler", "build_unet", "from_model_space",
           "load_ddpm", "main", "sample_ddpm", "save_sample_grid", "to_model_space"]


def sample_ddpm(unet, scheduler, rng: SampleRNG, *, num_inference_steps: int | None = None,
                batch_size: int = 64) -> torch.Tensor:
    """Unconditional ancestral DDPM samples: the diffusion core's loop
    (:func:`inpaintbench.methods.diffusion.core.sample`) on the plain schedule, no conditioning.

    Args:
        unet, scheduler: as returned by :func:`~inpaintbench.methods.diffusion.ddpm_checkpoint.load_ddpm`
            (neither is modified).
        rng: one generator per image (``len(rng)`` images), on the UNet's device.
        num_inference_steps: respaced steps ``t_T`` (None: all ``T`` training steps); index
            ``i`` is timestep ``i * (T // t_T)``, diffusers' ``"leading"`` spacing.
        batch_size: images per UNet batch (the output does not depend on it).

    Returns:
        float32 ``[len(rng), C, H, W]`` in ``[0, 1]``.
    """
    prior = DiffusionPrior.from_pair(unet, scheduler)
    steps = num_inference_steps or prior.schedule.num_train_timesteps
    respacing = Respacing(prior.schedule, steps)
    shape = (prior.denoiser.in_channels, *prior.denoiser.sample_size)
    out = []
    for lo in range(0, len(rng), batch_size):
        chunk = rng[lo:lo + batch_size]
        x = sample(prior.denoiser, respacing, plain_schedule(steps), chunk, shape=(len(chunk), *shape)).sample
        out.append(from_model_space(x))
    return torch.cat(out)


def save_sample_grid(weights: str | os.PathLike, out_png: str | os.PathLike, *, n: int = 64, seed: int = 0,
                     num_inference_steps: int | None = 250) -> torch.Tensor:
    """Render ``n`` unconditional samples of the prior at ``weights`` as a PNG grid (8 per row).

    Returns the samples, float32 ``[n, C, H, W]`` in ``[0, 1]``.
    """
    from torchvision.utils import save_image

    unet, scheduler = load_ddpm(weights)
    rng = SampleRNG.for_samples(seed, "ddpm-samples", sample_ids=[str(i) for i in range(n)])
    samples = sample_ddpm(unet, scheduler, rng, num_inference_steps=num_inference_steps)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    save_image(samples, str(out_png), nrow=8, padding=2, pad_value=0.5)
    return samples


def main(argv: list[str] | None = None) -> None:
    """``python -m inpaintbench.methods.diffusion.ddpm WEIGHTS OUT.png [--n 64] [--steps 250] [--seed 0]``."""
    import argparse

    parser = argparse.ArgumentParser(description="render unconditional DDPM samples as a PNG grid")
    parser.add_argument("weights", help="save_pretrained folder or hub id")
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--steps", type=int, default=250, help="respaced sampling steps (<= T)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    save_sample_grid(args.weights, args.out, n=args.n, seed=args.seed, num_inference_steps=args.steps)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
