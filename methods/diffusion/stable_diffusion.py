"""Stable Diffusion inpainting through diffusers' ``StableDiffusionInpaintPipeline`` (``sd-inpaint``).

This adapter exists for the known-pixel preservation study (issue #7): the pipeline re-encodes
the whole image through its VAE and so changes pixels outside the mask, more as ``strength``
grows. The harness measures that change on the raw output, so this method returns the
pipeline's output **as it is**, never pasted back over the known pixels
(``preserves_known = False``).

Conventions at the edge (our side -> the pipeline's side), checked in diffusers 0.42's
``pipeline_stable_diffusion_inpaint.py`` and ``image_processor.py``:

* images: float32 ``[B, C, H, W]`` in ``[0, 1]`` are handed over as a torch tensor in ``[0, 1]``
  (the pipeline's ``VaeImageProcessor`` maps tensors from ``[0, 1]`` to ``[-1, 1]`` itself);
  grayscale is repeated to RGB, and the RGB output is averaged back to one channel.
* masks: our bool mask (True = hole) becomes a float ``[B, 1, h, w]`` tensor with **1 =
  repaint**. diffusers' mask processor binarises at 0.5 and its docstring says "white pixels
  are repainted while black pixels are preserved" (``masked_image = init_image * (mask < 0.5)``),
  so for SD inpainting the polarity is the SAME as ours; only the dtype changes.
* size: the pipeline works on a ``resolution x resolution`` square (a multiple of 8). Inputs of
  another size are resized to it and the output back to the input size with bicubic
  interpolation (antialiased, clipped to ``[0, 1]``); the mask is resized by "any overlap"
  (adaptive max pooling), so every working pixel that touches a hole is repainted. That
  resampling round trip itself changes known pixels a little; for the preservation study give
  inputs already at ``resolution`` (or ``resolution=None``), where no resizing happens.
* the method receives the zero-filled masked image (the harness contract), so with
  ``strength < 1`` the pipeline starts from a noised latent of an image with black holes.

Weights are never downloaded silently and never replaced by random ones: when they cannot be
loaded the constructor raises :class:`~inpaintbench.core.errors.MethodUnavailable` naming the model and
how to provide it. The tests wrap a tiny randomly initialised pipeline with
:meth:`StableDiffusionInpaint.from_pipeline` to check the plumbing only; such output is
meaningless and is never reported as a result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inpaintbench.core.method import Restoration, Method
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.images import check_image_batch, check_mask_batch
from inpaintbench.core.availability import hub_cached, require_package

#: The Stable Diffusion 1.5 inpainting weights on the Hugging Face Hub. The original
#: ``runwayml/stable-diffusion-inpainting`` was deleted in 2024; this is the maintained copy
#: that diffusers' own documentation points to.
DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"
#: The extra that installs diffusers and transformers.
INSTALL_HINT = "pip install -e '.[diffusion]'"

_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# The values huggingface_hub accepts as "true" for HF_HUB_OFFLINE.
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}


def to_pipeline_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Our image batch -> the pipeline's image input.

    Args:
        image: float32 ``[B, C, H, W]`` in ``[0, 1]``, C in {1, 3}.
        size: ``(height, width)`` the pipeline works at.

    Returns:
        float32 ``[B, 3, height, width]`` in ``[0, 1]`` (grayscale repeated to RGB; bicubic,
        antialiased, clipped when the size changes).
    """
    rgb = image.repeat(1, 3, 1, 1) if image.shape[1] == 1 else image
    return resize_image(rgb, size)


def to_pipeline_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Our hole mask -> the pipeline's ``mask_image``.

    Args:
        mask: bool ``[B, 1, H, W]``, True = hole.
        size: ``(height, width)`` the pipeline works at.

    Returns:
        float32 ``[B, 1, height, width]`` in {0, 1}, **1 = repaint** (diffusers' convention for
        SD inpainting, the same polarity as ours). When the size changes, a working pixel is 1
        if its footprint overlaps any hole pixel.
    """
    holes = mask.to(torch.float32)
    if tuple(holes.shape[-2:]) == tuple(size):
        return holes
    return F.adaptive_max_pool2d(holes, size)


def from_pipeline_output(output: torch.Tensor, size: tuple[int, int], channels: int) -> torch.Tensor:
    """The pipeline's ``output_type="pt"`` images -> our output batch.

    Args:
        output: ``[B, 3, h, w]`` in ``[0, 1]``, any float dtype.
        size: ``(H, W)`` of the input image.
        channels: C of the input image (1: the RGB output is averaged to one channel).

    Returns:
        float32 ``[B, channels, H, W]`` in ``[0, 1]``.
    """
    images = resize_image(output.to(torch.float32), size)
    return images.mean(dim=1, keepdim=True) if channels == 1 else images


def resize_image(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize (antialiased when shrinking) of ``[B, C, H, W]`` images in ``[0, 1]``,
    clipped back to ``[0, 1]`` (bicubic overshoots at edges); unchanged when already ``size``."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    resized = F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)
    return resized.clamp(0.0, 1.0)


def _hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value now (read at call time, not import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE_VALUES


def _how_to_provide(model: str) -> str:
    return (
        f"download it where you are online with `hf download {model}` (older huggingface_hub: "
        f"`huggingface-cli download {model}`), or pass model=<a local folder written by "
        "StableDiffusionInpaintPipeline.save_pretrained, with safetensors weights>"
    )


def load_inpaint_pipeline(model: str, dtype: str = "float32") -> Any:
    """Load a ``StableDiffusionInpaintPipeline`` from a Hub id or a local folder.

    Loading only ever reads safetensors (``use_safetensors=True``: no pickled code runs), and
    the safety checker is left out (``safety_checker=None``): it replaces any image it flags
    with a black one, which would corrupt the known-region measurement. A Hub id is looked up
    in the local cache first (no network); only when it is missing there and
    ``HF_HUB_OFFLINE`` is not set is the Hub asked (diffusers falls back to the cache and fails
    fast when the Hub is unreachable).

    Args:
        model: Hub id (``owner/name``) or path of a ``save_pretrained`` folder.
        dtype: ``"float32"`` or ``"float16"`` (float16 is meant for CUDA).

    Raises:
        MethodUnavailable: diffusers/transformers missing, or the weights cannot be found.
    """
    try:
        import transformers  # noqa: F401  (the pipeline's text encoder and tokenizer)
        from diffusers import StableDiffusionInpaintPipeline
        from huggingface_hub.utils import HFValidationError, validate_repo_id
    except ImportError as err:
        raise MethodUnavailable(
            f"sd-inpaint needs diffusers and transformers ({err}); install them with {INSTALL_HINT}"
        ) from err

    def load(source: str, local_files_only: bool) -> Any:
        pipe = StableDiffusionInpaintPipeline.from_pretrained(
            source,
            safety_checker=None,
            requires_safety_checker=False,
            use_safetensors=True,
            local_files_only=local_files_only,
        )
        return pipe.to(dtype=_DTYPES[dtype])

    path = Path(model).expanduser()
    if path.is_dir():
        try:
            return load(str(path), local_files_only=True)
        except (OSError, ValueError) as err:
            raise MethodUnavailable(
                f"sd-inpaint could not load a Stable Diffusion inpainting pipeline from the folder "
                f"{path} ({err}); it must be written by save_pretrained with safetensors weights"
            ) from err
    try:
        validate_repo_id(model)
    except HFValidationError:
        raise MethodUnavailable(
            f"sd-inpaint: no folder at {path} (and {model!r} is not a Hugging Face Hub id); "
            + _how_to_provide(DEFAULT_MODEL)
        ) from None
    try:
        return load(model, local_files_only=True)
    except (OSError, ValueError) as cache_err:
        if _hub_offline():
            raise MethodUnavailable(
                f"sd-inpaint: the weights of {model!r} are not in the Hugging Face cache and "
                f"HF_HUB_OFFLINE is set; {_how_to_provide(model)}"
            ) from cache_err
    try:
        return load(model, local_files_only=False)
    except (OSError, ValueError) as err:
        raise MethodUnavailable(
            f"sd-inpaint could not load {model!r}: not a local folder, not in the Hugging Face "
            f"cache, and the Hub did not provide it ({err}); {_how_to_provide(model)}"
        ) from err


def check_settings(*, strength: float, num_inference_steps: int, guidance_scale: float,
                   resolution: int | None, dtype: str) -> None:
    """Raise :class:`InputError` for a setting the pipeline would reject or misread.

    diffusers runs ``int(num_inference_steps * strength)`` denoising steps and refuses zero, so
    ``strength`` must be at least ``1 / num_inference_steps`` (``strength=0`` is not a
    configuration: it would be the VAE round trip alone, which the pipeline cannot run).
    """
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise InputError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength must lie in (0, 1], got {strength!r}")
    if int(num_inference_steps * strength) < 1:
        raise InputError(
            f"strength={strength} with num_inference_steps={num_inference_steps} leaves "
            f"int({num_inference_steps} * {strength}) = 0 denoising steps; diffusers needs at least "
            f"one, so use strength >= {1 / num_inference_steps:.4g} or more steps"
        )
    if guidance_scale < 0:
        raise InputError(f"guidance_scale must be >= 0, got {guidance_scale!r}")
    if resolution is not None and (not isinstance(resolution, int) or resolution < 8 or resolution % 8):
        raise InputError(f"resolution must be None or a positive multiple of 8, got {resolution!r}")
    if dtype not in _DTYPES:
        raise InputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")


class StableDiffusionInpaint(Method):
    """diffusers' Stable Diffusion inpainting pipeline; returns its raw, un-composited output.

    Args:
        model: Hugging Face Hub id or a local ``save_pretrained`` folder (safetensors weights).
        prompt: text prompt for every image (default empty: unconditional content).
        negative_prompt: used only with classifier-free guidance (``guidance_scale > 1``).
        strength: in ``(0, 1]``: how far the start is noised; 1 starts from pure noise. At least
            ``1 / num_inference_steps`` (diffusers runs ``int(steps * strength)`` steps).
        guidance_scale: classifier-free guidance weight; ``<= 1`` turns guidance off.
        num_inference_steps: scheduler steps before ``strength`` shortens them.
        resolution: side of the square the pipeline works at (multiple of 8), or ``None`` to
            work at the input size (which must then be a multiple of 8).
        dtype: ``"float32"``, or ``"float16"`` on CUDA only.

    Build with weights via the constructor (raises
    :class:`~inpaintbench.core.errors.MethodUnavailable` when they are missing), or wrap an existing
    pipeline with :meth:`from_pipeline`.
    """

    preserves_known = False
    deterministic = False

    def __init__(self, model: str = DEFAULT_MODEL, prompt: str = "", negative_prompt: str | None = None,
                 strength: float = 1.0, guidance_scale: float = 7.5, num_inference_steps: int = 50,
                 resolution: int | None = 512, dtype: str = "float32", *, pipeline: Any | None = None):
        check_settings(strength=strength, num_inference_steps=num_inference_steps,
                       guidance_scale=guidance_scale, resolution=resolution, dtype=dtype)
        super().__init__(model=str(model), prompt=prompt, negative_prompt=negative_prompt,
                         strength=float(strength), guidance_scale=float(guidance_scale),
                         num_inference_steps=num_inference_steps, resolution=resolution, dtype=dtype)
        self.pipe = pipeline if pipeline is not None else load_inpaint_pipeline(str(model), dtype)
        self.pipe.set_progress_bar_config(disable=True)

    @classmethod
    def check_available(cls, model: str = DEFAULT_MODEL, *, pipeline: Any | None = None, **_: Any) -> None:
        """Raise :class:`MethodUnavailable` (with the reason) where building would fail for want
        of diffusers / transformers or of the weights, without importing diffusers: a local
        folder must hold ``model_index.json``; a Hub id must be in the local Hugging Face cache
        (one that would still be downloaded counts as unavailable: listing never downloads)."""
        if pipeline is not None:
            return
        for package in ("diffusers", "transformers"):
            require_package(package, "sd-inpaint", INSTALL_HINT)
        path = Path(str(model)).expanduser()
        if path.is_dir():
            if not (path / "model_index.json").is_file():
                raise MethodUnavailable(f"sd-inpaint: the folder {path} has no model_index.json; it must be written "
                                        "by StableDiffusionInpaintPipeline.save_pretrained with safetensors weights")
            return
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(str(model))
        except HFValidationError:
            raise MethodUnavailable(f"sd-inpaint: no folder at {path} (and {str(model)!r} is not a Hugging Face "
                                    f"Hub id); " + _how_to_provide(DEFAULT_MODEL)) from None
        if not hub_cached(str(model), "model_index.json"):
            raise MethodUnavailable(f"sd-inpaint: {str(model)!r} is not in the Hugging Face cache; building it would "
                                    f"download it from the Hub; {_how_to_provide(str(model))}")

    @classmethod
    def from_pipeline(cls, pipe: Any, **config: Any) -> "StableDiffusionInpaint":
        """Wrap an already built ``StableDiffusionInpaintPipeline`` (its weights as they are).

        ``config`` takes the constructor's settings; ``model`` defaults to the pipeline's
        ``name_or_path`` (recorded in the config only, nothing is loaded).
        """
        config.setdefault("model", getattr(pipe, "name_or_path", "") or "in-memory pipeline")
        return cls(pipeline=pipe, **config)

    def to(self, device: torch.device | str) -> "StableDiffusionInpaint":
        """Move the pipeline to ``device``; returns ``self``."""
        super().to(device)
        self.pipe.to(self.device)
        return self

    def _working_size(self, height: int, width: int) -> tuple[int, int]:
        resolution = self.config["resolution"]
        if resolution is not None:
            return resolution, resolution
        if height % 8 or width % 8:
            raise InputError(
                f"resolution=None works at the input size, which must be a multiple of 8; got "
                f"{height}x{width} (set resolution=512 to resize)"
            )
        return height, width

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *,
                rng: SampleRNG) -> Restoration:
        """Run the pipeline once on the batch.

        Args:
            image: float32 ``[B, C, H, W]`` in ``[0, 1]``, holes zero-filled.
            mask: bool ``[B, 1, H, W]``, True = hole.
            rng: per-image generators, passed to the pipeline as its list of generators (the
                pipeline draws each image's latents from its own generator).

        Returns:
            :class:`Restoration`: float32 ``[B, C, H, W]`` in ``[0, 1]``, the pipeline's raw
            output at the input size, known pixels NOT pasted back; ``nfe`` UNet evaluations per
            image (x2 with classifier-free guidance).
        """
        check_image_batch(image)
        if mask is None:
            raise InputError("sd-inpaint needs a mask (it is not a blind method)")
        check_mask_batch(mask, image)
        device = self.pipe.device
        if device.type == "cpu" and self.pipe.dtype == torch.float16:
            raise InputError("dtype='float16' needs a CUDA device; use dtype='float32' on CPU")
        batch, channels, height, width = image.shape
        size = self._working_size(height, width)
        negative = self.config["negative_prompt"]
        steps_run = 0

        def count_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            nonlocal steps_run
            steps_run += 1
            return {}

        result = self.pipe(
            prompt=[self.config["prompt"]] * batch,
            negative_prompt=None if negative is None else [negative] * batch,
            image=to_pipeline_image(image, size).to(device),
            mask_image=to_pipeline_mask(mask, size).to(device),
            height=size[0],
            width=size[1],
            strength=self.config["strength"],
            guidance_scale=self.config["guidance_scale"],
            num_inference_steps=self.config["num_inference_steps"],
            generator=list(rng.generators),
            output_type="pt",
            callback_on_step_end=count_step,
        )
        nfe = float(steps_run * (2 if self.pipe.do_classifier_free_guidance else 1))
        return Restoration(from_pipeline_output(result.images, (height, width), channels).to(image.device), {"nfe": nfe})
