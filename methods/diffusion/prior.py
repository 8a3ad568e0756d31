"""The prior factory: the denoiser, training schedule and respacing table a diffusion method
samples with, from its ``weights=`` / ``model=`` and ``adm=`` options.

* :class:`DiffusionPrior`: a denoiser with its training schedule and the files it was read
  from (``Method.loaded_files``);
* :func:`load_prior`: what every diffusion method calls: an ADM ``.pt`` with guided-diffusion's
  spacing (:func:`load_adm_prior`, :func:`adm_respacing`), or a diffusers folder / hub id / the
  committed MNIST prior with the core's spacing (:meth:`DiffusionPrior.load`);
* :func:`resolve_model_option`: the one weight source of ``weights=`` and its alias ``model=``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import check_image_batch
from inpaintbench.methods import resolve_weights
from inpaintbench.methods.diffusion.adm_checkpoint import load_adm, require_adm_file
from inpaintbench.methods.diffusion.adm_config import PRESETS, ADMConfig, resolve_adm
from inpaintbench.methods.diffusion.adm_network import ADMDenoiser
from inpaintbench.methods.diffusion.ddpm_checkpoint import MNIST_WEIGHTS, check_ddpm, load_ddpm
from inpaintbench.methods.diffusion.denoiser import Denoiser, UNet2DDenoiser
from inpaintbench.methods.diffusion.respacing import NoiseSchedule, Respacing, SpacedRespacing, beta_schedule

__all__ = ["DiffusionPrior", "adm_respacing", "check_prior", "load_adm_prior", "load_prior", "resolve_model_option"]


class DiffusionPrior:
    """A denoiser with its training schedule and where it was read from.

    Args:
        denoiser: the network adapter.
        schedule: its training :class:`NoiseSchedule`.
        files: the weight folders it was read from (``Method.loaded_files``).
    """

    def __init__(self, denoiser: Denoiser, schedule: NoiseSchedule, files: Sequence[str] = ()):
        self.denoiser, self.schedule, self.files = denoiser, schedule, list(files)

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None, *, learn_sigma: bool = False) -> "DiffusionPrior":
        """Load a diffusers ``UNet2DModel`` folder or hub id (None: the committed MNIST prior)
        with :func:`~inpaintbench.methods.diffusion.ddpm_checkpoint.load_ddpm`.

        Raises:
            MethodUnavailable: the weights are missing (the message says how to create them).
        """
        source = resolve_weights(weights, MNIST_WEIGHTS)
        unet, scheduler = load_ddpm(source)
        folder = Path(source).expanduser()
        files = [str(folder)] if folder.is_dir() else []  # hub ids: the cache path is not known here
        return cls(UNet2DDenoiser(unet, learn_sigma=learn_sigma), NoiseSchedule.from_scheduler(scheduler), files)

    @classmethod
    def from_pair(cls, unet: torch.nn.Module, scheduler: Any, *, learn_sigma: bool = False) -> "DiffusionPrior":
        """From an already loaded ``(UNet2DModel, DDPMScheduler)`` pair (tests, shared models)."""
        unet.eval().requires_grad_(False)
        return cls(UNet2DDenoiser(unet, learn_sigma=learn_sigma), NoiseSchedule.from_scheduler(scheduler))

    @property
    def device(self) -> torch.device:
        """The network's device."""
        return self.denoiser.device

    def to(self, device: torch.device | str) -> "DiffusionPrior":
        """Move the network to ``device``; returns ``self``."""
        self.denoiser.to(device)
        return self

    def check_input(self, image: torch.Tensor, who: str = "this DDPM prior") -> None:
        """Raise :class:`InputError` unless ``image`` is a valid float32 ``[B, C, H, W]`` batch in
        ``[0, 1]`` of the size and channels the prior models."""
        check_image_batch(image)
        c, (h, w) = self.denoiser.in_channels, self.denoiser.sample_size
        if image.shape[1] != c or tuple(image.shape[-2:]) != (h, w):
            raise InputError(f"{who} models {c}x{h}x{w} images (shape [B, {c}, {h}, {w}]), got "
                             f"{list(image.shape)}; pass weights= of a prior trained at that size")


def load_adm_prior(path: str | os.PathLike, adm: str | os.PathLike | Mapping[str, Any] | ADMConfig) -> DiffusionPrior:
    """A :class:`DiffusionPrior` of an ADM checkpoint:
    its :class:`ADMDenoiser`, the training schedule of ``adm``'s ``noise_schedule`` and
    ``diffusion_steps``, and ``files = [path]``. Use :func:`adm_respacing` for guided-diffusion's
    timestep spacing."""
    model = load_adm(path, adm)
    config = model.config
    betas = beta_schedule(config.noise_schedule, config.diffusion_steps)
    schedule = NoiseSchedule(betas.float(), torch.cumprod(1 - betas, 0).float())
    prior = DiffusionPrior(ADMDenoiser(model), schedule, [str(Path(path).expanduser())])  # type: ignore[arg-type]
    prior.adm_config = config  # type: ignore[attr-defined]
    prior.betas64 = betas  # type: ignore[attr-defined]
    return prior


def adm_respacing(config: ADMConfig, num_steps: int | str) -> SpacedRespacing:
    """guided-diffusion's respacing of ``config``'s schedule with ``num_steps`` kept steps."""
    return SpacedRespacing(beta_schedule(config.noise_schedule, config.diffusion_steps), num_steps)


def resolve_model_option(weights: str | os.PathLike | None, model: str | os.PathLike | None) -> str | None:
    """The one weight source of a method given ``weights=`` and its alias ``model=``.

    Returns:
        The path / hub id as a string, or None (the method's default prior).

    Raises:
        InputError: both are given and differ.
    """
    if model is not None and weights is not None and str(model) != str(weights):
        raise InputError(f"model={str(model)!r} and weights={str(weights)!r} disagree; give one of them")
    source = model if model is not None else weights
    return None if source is None else str(source)


def load_prior(source: str | os.PathLike | None, adm: str | os.PathLike | Mapping[str, Any] | None,
               num_steps: int) -> tuple[DiffusionPrior, Respacing]:
    """The prior and respacing table a diffusion method samples with.

    * ``adm`` given: ``source`` is a guided-diffusion ``.pt`` (:func:`load_adm_prior`), and
      the table is guided-diffusion's (:class:`SpacedRespacing`, ``num_steps`` kept steps),
      so the network sees the training timesteps the official samplers give it;
    * ``adm`` None: ``source`` is a diffusers folder / hub id / None (the committed MNIST
      prior) and the table is the core's :class:`Respacing`.

    Args:
        source: the weights (``model=`` / ``weights=`` of the method).
        adm: an ADM preset name, a ``.toml``/``.json`` args file, or None.
        num_steps: ``t_T``, respaced steps.

    Raises:
        InputError: a ``.pt`` without ``adm``, ``adm`` without a file, or a bad ``num_steps``.
        MethodUnavailable: the weights are missing.
    """
    _check_pairing(source, adm)
    if adm is None:
        prior = DiffusionPrior.load(source)
        return prior, Respacing(prior.schedule, num_steps)
    config = _adm_config(adm, num_steps)
    prior = load_adm_prior(source, config)
    return prior, adm_respacing(config, num_steps)


def check_prior(source: str | os.PathLike | None, adm: str | os.PathLike | Mapping[str, Any] | None,
                num_steps: int) -> None:
    """Raise what :func:`load_prior` would raise for want of diffusers or of the weights
    (:class:`MethodUnavailable`) or for bad options (:class:`InputError`), without importing
    diffusers or reading weights: the ``adm`` pairing, the DDPM folder's weights file or the
    Hub id in the local cache (:func:`~inpaintbench.methods.diffusion.ddpm_checkpoint.check_ddpm`),
    the ADM preset / args file and the ``.pt`` file's existence. A damaged file is found
    only when loaded."""
    _check_pairing(source, adm)
    if adm is None:
        check_ddpm(resolve_weights(source, MNIST_WEIGHTS))
        return
    _adm_config(adm, num_steps)
    require_adm_file(source)


def _check_pairing(source: str | os.PathLike | None, adm: Any) -> None:
    if adm is None and source is not None and str(source).endswith((".pt", ".pth")):
        raise InputError(f"model={str(source)!r} is a guided-diffusion checkpoint: give adm= its architecture "
                         f"(a preset: {', '.join(sorted(PRESETS))}, or a .toml/.json args file)")
    if adm is not None and source is None:
        raise InputError("adm= describes an ADM checkpoint: give model= the .pt file as well")


def _adm_config(adm: Any, num_steps: int) -> ADMConfig:
    config = resolve_adm(adm)
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= config.diffusion_steps:
        raise InputError(f"num_steps must be an int in [1, {config.diffusion_steps}], got {num_steps!r}")
    return config
