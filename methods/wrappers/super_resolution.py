"""Super-resolution posed as inpainting (a task of the harness beside inpainting).

The task: the high-resolution (HR) image is the ground truth; the input is
:func:`downscale` of it by an integer ``scale`` (2 or 4): the **area** average of each
``scale x scale`` cell (no bicubic kernel, so the degradation is exactly known and linear).
A super-resolution method returns an HR estimate; the harness scores it against the HR image.

Interface for the runner (one call per batch)::

    low_res = downscale(high_res, method.scale)                     # [B, C, H/s, W/s]
    output = method.upscale(low_res, method.scale, generator=g)     # [B, C, H, W] in [0, 1]
    stats = method.call_stats()                                     # {"nfe": ...} or {}

Every method here is a :class:`SuperResolutionMethod` (``task = "super-resolution"``); its
``inpaint`` refuses to run. The methods:

* :class:`BicubicUpscale` -- bicubic interpolation (the baseline);
* :class:`InpaintingUpscale` -- zero insertion onto a stride-``s`` grid (:func:`zero_insert`,
  the grid of the ``super-resolve`` mask family) then any known-mask inpainter of the registry
  (RePaint, ILVR, pde-heat, telea, biharmonic...);
* :class:`BicubicILVRUpscale` -- bicubic upsampling, then ILVR with the bicubic image as the
  reference and ``down_n = scale``.

Zero insertion puts each low-resolution pixel (a cell *mean*) at one pixel of its cell: the
inpainting view treats the cell mean as a sample of the HR image, an approximation the
measurements include.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from inpaintbench.api import InputError, Method, check_image_batch

#: The value of :attr:`SuperResolutionMethod.task`.
TASK = "super-resolution"


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise InputError(f"super-resolution scale must be an int >= 2, got {scale!r}")
    return scale


def downscale(high_res: torch.Tensor, scale: int) -> torch.Tensor:
    """The task's degradation: area downsampling (mean of each ``scale x scale`` cell).

    Args:
        high_res: float32 ``[B, C, H, W]`` in ``[0, 1]``, ``H`` and ``W`` divisible by ``scale``.
        scale: integer factor >= 2.

    Returns:
        float32 ``[B, C, H / scale, W / scale]`` in ``[0, 1]``.
    """
    check_image_batch(high_res, "high-resolution image")
    _check_scale(scale)
    h, w = high_res.shape[-2:]
    if h % scale or w % scale:
        raise InputError(f"image size {h}x{w} is not divisible by the super-resolution scale {scale}")
    return F.avg_pool2d(high_res, scale)


def super_resolve_holes(n: int, h: int, w: int, scale: int) -> torch.Tensor:
    """The hole mask of zero insertion: the harness's ``super-resolve`` mask family at ``scale``.

    Returns:
        bool ``[n, 1, h, w]`` on the CPU, False (known) at one pixel per ``scale x scale`` cell.
    """
    from inpaintbench.masks import SuperResolveMask

    # The family is deterministic; the generator argument of the protocol is not drawn from.
    return SuperResolveMask(scale=_check_scale(scale))(n, h, w, generator=torch.Generator())


def zero_insert(low_res: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread a low-resolution image onto the high-resolution grid, zeros elsewhere.

    Pixel ``(i, j)`` of ``low_res`` lands on the known pixel of cell ``(i, j)`` of the
    ``super-resolve`` mask family (:func:`super_resolve_holes`), so the phase is that family's
    by construction.

    Args:
        low_res: float32 ``[B, C, h, w]`` in ``[0, 1]``.
        scale: integer factor >= 2.

    Returns:
        ``(image, hole)``: float32 ``[B, C, h * scale, w * scale]`` with zeros in the holes, and
        bool ``[B, 1, h * scale, w * scale]``, True = hole: the inpainting problem.
    """
    check_image_batch(low_res, "low-resolution image")
    b, c, h, w = low_res.shape
    hole = super_resolve_holes(b, h * scale, w * scale, scale).to(low_res.device)
    known = (~hole).expand(b, c, -1, -1)
    # Known pixels in raster order are the cells in raster order: one per low-res pixel.
    image = torch.zeros((b, c, h * scale, w * scale), dtype=low_res.dtype, device=low_res.device)
    return image.masked_scatter(known, low_res), hole


def bicubic_upscale(low_res: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic interpolation (Keys kernel, a = -0.75, half-pixel centres, replicated borders:
    ``F.interpolate(..., mode="bicubic", align_corners=False)``), clipped to ``[0, 1]``.

    Args:
        low_res: float32 ``[B, C, h, w]`` in ``[0, 1]``.
        scale: integer factor >= 2.

    Returns:
        float32 ``[B, C, h * scale, w * scale]`` in ``[0, 1]``.
    """
    check_image_batch(low_res, "low-resolution image")
    _check_scale(scale)
    return F.interpolate(low_res, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


class SuperResolutionMethod(Method):
    """Base class of super-resolution methods: ``upscale`` instead of ``inpaint``.

    Args:
        scale: the factor this configured method is evaluated at (the runner degrades the HR
            image with :func:`downscale` by it); saved in the config.
        **config: the subclass's parameters.
    """

    task: ClassVar[str] = TASK

    def __init__(self, *, scale: int = 2, **config: Any):
        super().__init__(scale=_check_scale(scale), **config)
        self.scale = scale

    def upscale(self, low_res: torch.Tensor, scale: int, *, generator: torch.Generator) -> torch.Tensor:
        """Estimate the high-resolution image.

        Args:
            low_res: float32 ``[B, C, h, w]`` in ``[0, 1]`` (the output of :func:`downscale`).
            scale: integer factor >= 2 (normally ``self.scale``).
            generator: the only randomness source (on ``self.device``).

        Returns:
            float32 ``[B, C, h * scale, w * scale]`` in ``[0, 1]``.
        """
        raise NotImplementedError

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *,
                generator: torch.Generator) -> torch.Tensor:
        """Always raises :class:`InputError`: this is a super-resolution method."""
        raise InputError(f"{self.name} is a {TASK} method (task={TASK!r}); it cannot inpaint. "
                         "Call upscale(low_res, scale, generator=...) instead")


class BicubicUpscale(SuperResolutionMethod):
    """Bicubic upsampling (``sr-bicubic``), the baseline: :func:`bicubic_upscale`."""

    def upscale(self, low_res: torch.Tensor, scale: int, *, generator: torch.Generator) -> torch.Tensor:
        """:func:`bicubic_upscale` of ``low_res`` (``[B, C, h, w]`` -> ``[B, C, h*s, w*s]``)."""
        return bicubic_upscale(low_res, scale)


class InpaintingUpscale(SuperResolutionMethod):
    """Zero insertion plus a known-mask inpainter (``sr-inpaint-*``).

    Args:
        scale: as :class:`SuperResolutionMethod`.
        inpainter: registry name of a known-mask inpainting method (``repaint``, ``ilvr``,
            ``pde-heat``, ``telea``, ``biharmonic``...).
        inpainter_config: keyword arguments of that method (merged over its registry defaults).

    Raises:
        InputError: the inpainter is blind or is itself a super-resolution method.
        MethodUnavailable: the inpainter cannot be built here.
    """

    def __init__(self, *, scale: int = 2, inpainter: str = "pde-heat",
                 inpainter_config: dict[str, Any] | None = None):
        from inpaintbench.registry import method_registry

        super().__init__(scale=scale, inpainter=inpainter, inpainter_config=dict(inpainter_config or {}))
        inner = method_registry().create(inpainter, **self.config["inpainter_config"])
        if getattr(inner, "task", "inpainting") != "inpainting":
            raise InputError(f"inpainter {inpainter!r} is a {TASK} method, not an inpainter")
        if inner.blind:
            raise InputError(f"inpainter {inpainter!r} is blind; zero insertion needs a known-mask inpainter")
        self.inpainter = inner
        self.deterministic = inner.deterministic

    def to(self, device: torch.device | str) -> "InpaintingUpscale":
        """Move the inner inpainter to ``device``; returns ``self``."""
        super().to(device)
        self.inpainter.to(device)
        return self

    def call_stats(self) -> dict[str, float]:
        """The inner inpainter's counters of the last call (e.g. ``{"nfe": ...}``)."""
        return self.inpainter.call_stats()

    def upscale(self, low_res: torch.Tensor, scale: int, *, generator: torch.Generator) -> torch.Tensor:
        """:func:`zero_insert` then the inner inpainter, with the inserted pixels pasted back.

        ``[B, C, h, w]`` in ``[0, 1]`` -> ``[B, C, h * scale, w * scale]`` in ``[0, 1]``."""
        image, hole = zero_insert(low_res, _check_scale(scale))
        output = self.inpainter.inpaint(image, hole, generator=generator)
        return torch.where(hole, output, image).clamp(0.0, 1.0)


class BicubicILVRUpscale(SuperResolutionMethod):
    """Bicubic upsampling refined by ILVR (``sr-bicubic-ilvr``).

    The bicubic image is the ILVR reference for the whole image with ``down_n = scale``: the
    prior supplies the details, the reference's ``scale x scale`` cell means are imposed at
    every step (see :mod:`inpaintbench.methods.diffusion.ilvr`).

    Args:
        scale: as :class:`SuperResolutionMethod` (a power of two).
        num_steps, range_t, weights, prior: as :class:`inpaintbench.methods.diffusion.ilvr.ILVRMethod`.
    """

    deterministic: ClassVar[bool] = False

    def __init__(self, *, scale: int = 2, num_steps: int | None = None, range_t: int = 0,
                 weights: str | os.PathLike | None = None, prior: tuple[Any, Any] | None = None):
        from inpaintbench.methods.diffusion.ilvr import DEFAULT_NUM_STEPS, ILVRMethod

        num_steps = DEFAULT_NUM_STEPS if num_steps is None else num_steps
        super().__init__(scale=scale, num_steps=num_steps, range_t=range_t,
                         weights=None if weights is None else str(weights))
        self.ilvr = ILVRMethod(num_steps=num_steps, down_n=scale, range_t=range_t, weights=weights, prior=prior)
        self.device = self.ilvr.device

    def to(self, device: torch.device | str) -> "BicubicILVRUpscale":
        """Move the DDPM prior to ``device``; returns ``self``."""
        super().to(device)
        self.ilvr.to(device)
        return self

    def call_stats(self) -> dict[str, float]:
        """``{"nfe": DDPM evaluations per image of the last call}``."""
        return self.ilvr.call_stats()

    def upscale(self, low_res: torch.Tensor, scale: int, *, generator: torch.Generator) -> torch.Tensor:
        """ILVR sample referenced on :func:`bicubic_upscale` of ``low_res`` with ``down_n=scale``.

        ``[B, C, h, w]`` in ``[0, 1]`` -> ``[B, C, h * scale, w * scale]`` in ``[0, 1]``."""
        reference = bicubic_upscale(low_res, scale)
        self.ilvr.check_input(reference)
        return self.ilvr.sample(reference, None, generator=generator, down_n=scale)
