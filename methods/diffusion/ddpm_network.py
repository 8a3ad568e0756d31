"""The DDPM prior's network and training schedule (Ho et al. 2020): a diffusers
``UNet2DModel`` predicting epsilon and its ``DDPMScheduler``."""

from __future__ import annotations

from typing import Sequence

from inpaintbench.core.errors import InputError

__all__ = ["build_scheduler", "build_unet"]


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
