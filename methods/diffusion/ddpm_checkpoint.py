"""Loading DDPM priors: diffusers ``save_pretrained`` folders (safetensors only) and hub ids,
and where the committed MNIST prior lives."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from inpaintbench.core.errors import MethodUnavailable
from inpaintbench.methods import WEIGHTS_DIR
from inpaintbench.core.availability import hub_cached, looks_like_hub_id, require_package
from inpaintbench.methods.diffusion.ddpm_network import build_scheduler

__all__ = ["MNIST_TRAIN_COMMAND", "MNIST_WEIGHTS", "check_ddpm", "load_ddpm", "locate_ddpm"]

#: Where the committed MNIST prior lives (a diffusers save_pretrained folder).
MNIST_WEIGHTS = WEIGHTS_DIR / "ddpm-mnist"
#: The command that (re)creates :data:`MNIST_WEIGHTS`.
MNIST_TRAIN_COMMAND = (
    "inpaintbench train ddpm --config methods/configs/ddpm-mnist.toml "
    "--data-root ../shared/data --out runs/ddpm-mnist, then copy runs/ddpm-mnist/final/* to "
    "methods/weights/ddpm-mnist/"
)


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
    local, subfolder = locate_ddpm(path_or_hub_id, subfolder=subfolder)
    if local is not None:
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


def locate_ddpm(path_or_hub_id: str | os.PathLike, *, subfolder: str | None = None) -> tuple[Path | None, str | None]:
    """Where :func:`load_ddpm` reads ``path_or_hub_id`` from, checked without reading it.

    Returns:
        ``(folder, subfolder)`` of a local save_pretrained folder whose weights file exists
        (``subfolder`` becomes ``"unet"`` for a pipeline layout), or ``(None, subfolder)`` for a
        Hub id (``owner/name`` that is no existing path).

    Raises:
        MethodUnavailable: the local folder or its ``diffusion_pytorch_model.safetensors`` is
        missing (the message names it and how to create it).
    """
    source = str(path_or_hub_id)
    local = Path(source).expanduser()
    # A hub id is "owner/name"; anything else (or anything that exists) is a local path.
    if not (isinstance(path_or_hub_id, os.PathLike) or local.exists() or not looks_like_hub_id(source)):
        return None, subfolder
    if not local.is_dir():
        raise MethodUnavailable(_missing_message(local))
    if subfolder is None and not (local / "config.json").exists() and (local / "unet" / "config.json").exists():
        subfolder = "unet"
    weights = local / (subfolder or "") / "diffusion_pytorch_model.safetensors"
    if not weights.exists():
        raise MethodUnavailable(_missing_message(weights))
    return local, subfolder


def check_ddpm(path_or_hub_id: str | os.PathLike = MNIST_WEIGHTS) -> None:
    """Raise :class:`MethodUnavailable` where :func:`load_ddpm` of ``path_or_hub_id`` would fail
    for want of diffusers or of the weights, without importing diffusers or reading weights:
    a local folder must hold its weights file (:func:`locate_ddpm`); a Hub id must be in the
    local Hugging Face cache (a model the loader would still have to download counts as
    unavailable: listing never downloads)."""
    require_package("diffusers", "a DDPM prior", "pip install -e '.[diffusion]'")
    local, _ = locate_ddpm(path_or_hub_id)
    hub_id = str(path_or_hub_id)
    if local is None and not hub_cached(hub_id, "diffusion_pytorch_model.safetensors"):
        raise MethodUnavailable(
            f"DDPM weights {hub_id!r} are not in the Hugging Face cache; building the method would "
            f"download them from the Hub. Download them where the hub is reachable (huggingface-cli "
            f"download {hub_id}) or pass a local save_pretrained folder with diffusion_pytorch_model.safetensors."
        )


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
