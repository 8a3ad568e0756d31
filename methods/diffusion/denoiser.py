"""The denoiser: the network interface every sampler of the diffusion core calls, and the
model space it works in.

* :class:`DenoiserOutput` / :class:`Denoiser`: ``(x_t, t) -> (eps, v)``, the noise estimate and,
  for learned-variance models (Improved DDPM, ADM ``learn_sigma``), the variance interpolation;
* :class:`UNet2DDenoiser`: the adapter for a diffusers ``UNet2DModel`` (the ADM adapter is
  :class:`~inpaintbench.methods.diffusion.adm_network.ADMDenoiser`);
* :func:`to_model_space` / :func:`from_model_space`: images ``[0, 1]`` <-> model space ``[-1, 1]``
  (the methods convert at their edges; everything inside the core is model space).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch

from inpaintbench.core.errors import InputError


def to_model_space(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images -> ``[-1, 1]`` (same shape)."""
    return images * 2.0 - 1.0


def from_model_space(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` model samples -> float32 ``[0, 1]`` images, clipped."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0).to(torch.float32)


class DenoiserOutput(NamedTuple):
    """What a denoiser returns for ``x_t``.

    Attributes:
        eps: ``[B, C, H, W]``, the predicted noise of ``x_t`` (model space).
        v: ``[B, C, H, W]`` in ``[-1, 1]`` (nominally), the learned-variance interpolation of
            IDDPM Eq. 15 as guided-diffusion outputs it (``frac = (v + 1) / 2`` between
            ``log beta_t`` and ``log beta~_t``); None for fixed-variance models.
    """

    eps: torch.Tensor
    v: torch.Tensor | None = None


@runtime_checkable
class Denoiser(Protocol):
    """A network ``(x_t, t) -> DenoiserOutput``.

    ``x_t``: float32 ``[B, C, H, W]`` in model space; ``t``: long ``[B]`` training timesteps in
    ``[0, T)``. ``learn_sigma`` says whether ``v`` is returned; ``in_channels`` and
    ``sample_size`` (``(H, W)``) describe the images it models.
    """

    learn_sigma: bool
    in_channels: int
    sample_size: tuple[int, int]

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> DenoiserOutput: ...


class UNet2DDenoiser:
    """Adapter for a diffusers ``UNet2DModel`` predicting epsilon.

    Args:
        unet: the network (called as ``unet(x, t).sample``).
        learn_sigma: the network outputs ``2 C`` channels, ``eps`` then ``v`` (guided-diffusion's
            layout); False (the MNIST prior): ``C`` channels, ``eps`` only, fixed variance.
    """

    def __init__(self, unet: torch.nn.Module, *, learn_sigma: bool = False):
        self.unet = unet
        self.learn_sigma = learn_sigma
        config = unet.config
        out_channels = int(getattr(config, "out_channels", config.in_channels))
        self.in_channels = int(config.in_channels)
        expected = 2 * self.in_channels if learn_sigma else self.in_channels
        if out_channels != expected:
            raise InputError(f"learn_sigma={learn_sigma} needs a UNet with {expected} output channels, "
                             f"this one has {out_channels}")
        size = config.sample_size
        self.sample_size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> DenoiserOutput:
        """``x``: ``[B, C, H, W]`` model space; ``t``: long ``[B]``. Returns eps (and v)."""
        out = self.unet(x, t).sample
        if not self.learn_sigma:
            return DenoiserOutput(out)
        eps, v = out.split(self.in_channels, dim=1)
        return DenoiserOutput(eps, v)

    def to(self, device: torch.device | str) -> "UNet2DDenoiser":
        """Move the network to ``device``; returns ``self``."""
        self.unet.to(device)
        return self

    @property
    def device(self) -> torch.device:
        """The device of the network's parameters."""
        return next(self.unet.parameters()).device
