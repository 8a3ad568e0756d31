"""DDPM prior (Ho et al. 2020): a diffusers ``UNet2DModel`` with a ``DDPMScheduler``.

Model space is ``[-1, 1]``; the functions here take and return images in ``[0, 1]`` and
convert at the edge. The network predicts the noise (epsilon) of ``x_t``. Sampling goes through
the diffusion core (:mod:`inpaintbench.methods.diffusion.core`), like every method built on
the prior.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods import WEIGHTS_DIR
from inpaintbench.methods.training.init import seeded_init_

#: Where the committed MNIST prior lives (a diffusers save_pretrained folder).
MNIST_WEIGHTS = WEIGHTS_DIR / "ddpm-mnist"
#: The command that (re)creates :data:`MNIST_WEIGHTS`.
MNIST_TRAIN_COMMAND = (
    "inpaintbench train ddpm --config methods/configs/ddpm-mnist.toml "
    "--data-root ../shared/data --out runs/ddpm-mnist, then copy runs/ddpm-mnist/final/* to "
    "methods/weights/ddpm-mnist/"
)


def to_model_space(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images -> ``[-1, 1]`` (same shape)."""
    return images * 2.0 - 1.0


def from_model_space(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` model samples -> float32 ``[0, 1]`` images, clipped."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0).to(torch.float32)


def build_unet(
    image_size: int = 28,
    channels: int = 1,
    block_out_channels: Sequence[int] = (32, 64, 64),
    layers_per_block: int = 1,
    attention_levels: Sequence[bool] = (False, False, False),
    mid_attention: bool = True,
    norm_num_groups: int = 16,
    dropout: float = 0.0,
):
    """A small ``diffusers.UNet2DModel`` for ``channels x image_size x image_size`` images.

    Args:
        image_size: side in pixels; must be divisible by ``2 ** (len(block_out_channels) - 1)``
            (28 -> 14 -> 7 for three levels).
        block_out_channels: channels per resolution level, finest first.
        attention_levels: one flag per level: self-attention in that level's blocks.
        mid_attention: self-attention in the bottleneck (at the coarsest resolution).
        norm_num_groups: GroupNorm groups; must divide every entry of ``block_out_channels``.

    The defaults give ~1.1 M parameters with one attention layer at 7x7 for MNIST.
    """
    from diffusers import UNet2DModel

    levels = len(block_out_channels)
    if len(attention_levels) != levels:
        raise InputError(f"attention_levels needs {levels} flags, got {len(attention_levels)}")
    if image_size % (2 ** (levels - 1)):
        raise InputError(f"image_size {image_size} is not divisible by 2**{levels - 1}")
    if any(c % norm_num_groups for c in block_out_channels):
        raise InputError(f"norm_num_groups={norm_num_groups} must divide every block_out_channels {list(block_out_channels)}")
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention_levels)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention_levels))
    return UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=down,
        up_block_types=up,
        add_attention=mid_attention,
        norm_num_groups=norm_num_groups,
        dropout=dropout,
    )


def build_scheduler(num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                    beta_start: float = 1e-4, beta_end: float = 0.02):
    """The ``DDPMScheduler`` of training: epsilon prediction, ``T = num_train_timesteps``."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        beta_start=beta_start,
        beta_end=beta_end,
        prediction_type="epsilon",
        clip_sample=True,
        variance_type="fixed_small",
    )


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


def load_ddpm(path_or_hub_id: str | os.PathLike = MNIST_WEIGHTS, *, subfolder: str | None = None,
              device: str | torch.device = "cpu", local_files_only: bool = False):
    """Load a ``UNet2DModel`` and its ``DDPMScheduler`` from a save_pretrained folder or a hub id.

    Args:
        path_or_hub_id: a local folder (``config.json`` + ``diffusion_pytorch_model.safetensors``
            [+ ``scheduler_config.json``]) or a Hugging Face id such as ``google/ddpm-celebahq-256``.
        subfolder: the UNet's subfolder (``"unet"`` for pipeline layouts); found automatically
            for local folders.
        local_files_only: for hub ids, look only in the local Hugging Face cache (no network).

    Returns:
        ``(unet, scheduler)``: the UNet in eval mode on ``device``; the scheduler from the
        folder's ``scheduler_config.json`` (its ``scheduler/`` subfolder) if present, else a
        1000-step linear DDPMScheduler.

    Raises:
        MethodUnavailable: the folder / file is missing or the hub is unreachable, with how to
        provide it. Only safetensors weights are read (no pickled code).
    """
    from diffusers import DDPMScheduler, UNet2DModel

    source = str(path_or_hub_id)
    local = Path(source).expanduser()
    # A hub id is "owner/name"; anything else (or anything that exists) is a local path.
    is_local = (isinstance(path_or_hub_id, os.PathLike) or local.exists() or source.startswith(".")
                or not re.fullmatch(r"[\w.-]+/[\w.-]+", source))
    if is_local:
        if not local.is_dir():
            raise MethodUnavailable(_missing_message(local))
        if subfolder is None and not (local / "config.json").exists() and (local / "unet" / "config.json").exists():
            subfolder = "unet"
        weights = local / (subfolder or "") / "diffusion_pytorch_model.safetensors"
        if not weights.exists():
            raise MethodUnavailable(_missing_message(weights))
        # low_cpu_mem_usage=False: the default path wants `accelerate` and warns on every load
        unet = UNet2DModel.from_pretrained(str(local), subfolder=subfolder, use_safetensors=True,
                                           low_cpu_mem_usage=False)
        sched_sub = "scheduler" if subfolder == "unet" else None
        sched_cfg = local / (sched_sub or "") / "scheduler_config.json"
        scheduler = (DDPMScheduler.from_pretrained(str(local), subfolder=sched_sub)
                     if sched_cfg.exists() else build_scheduler())
    else:
        unet, scheduler = _load_from_hub(source, subfolder, local_files_only)
    return unet.to(device).eval().requires_grad_(False), scheduler


def _load_from_hub(hub_id: str, subfolder: str | None, local_files_only: bool):
    from diffusers import DDPMScheduler, UNet2DModel

    errors = []
    # The cache first (works offline), then the network; every failure becomes one message.
    for local_only in (True,) if local_files_only else (True, False):
        try:
            unet = UNet2DModel.from_pretrained(hub_id, subfolder=subfolder, use_safetensors=True,
                                               low_cpu_mem_usage=False, local_files_only=local_only)
        except (OSError, ValueError) as err:
            first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
            errors.append(f"{'cache' if local_only else 'hub'}: {first_line}")
            continue
        sched_sub = "scheduler" if subfolder == "unet" else subfolder
        try:
            scheduler = DDPMScheduler.from_pretrained(hub_id, subfolder=sched_sub, local_files_only=local_only)
        except OSError:  # no scheduler_config.json in the repo: the DDPM default
            scheduler = build_scheduler()
        return unet, scheduler
    raise MethodUnavailable(
        f"could not load the UNet2DModel {hub_id!r} (subfolder={subfolder!r}) from the Hugging Face "
        f"cache or hub ({'; '.join(errors)}). Download it where the hub is reachable "
        f"(huggingface-cli download {hub_id}) or pass a local save_pretrained folder with "
        "diffusion_pytorch_model.safetensors."
    )


def _missing_message(missing: Path) -> str:
    hint = (f" Create it with: {MNIST_TRAIN_COMMAND}." if MNIST_WEIGHTS in (missing, missing.parent)
            else " Pass a diffusers save_pretrained folder (config.json + diffusion_pytorch_model.safetensors).")
    return f"DDPM weights not found: {missing} does not exist.{hint}"


def sample_ddpm(unet, scheduler, rng: SampleRNG, *, num_inference_steps: int | None = None,
                batch_size: int = 64) -> torch.Tensor:
    """Unconditional ancestral DDPM samples: the diffusion core's loop
    (:func:`inpaintbench.methods.diffusion.core.sample`) on the plain schedule, no conditioning.

    Args:
        unet, scheduler: as returned by :func:`load_ddpm` (neither is modified).
        rng: one generator per image (``len(rng)`` images), on the UNet's device.
        num_inference_steps: respaced steps ``t_T`` (None: all ``T`` training steps); index
            ``i`` is timestep ``i * (T // t_T)``, diffusers' ``"leading"`` spacing.
        batch_size: images per UNet batch (the output does not depend on it).

    Returns:
        float32 ``[len(rng), C, H, W]`` in ``[0, 1]``.
    """
    from inpaintbench.methods.diffusion.core import DiffusionPrior, Respacing, plain_schedule, sample

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
