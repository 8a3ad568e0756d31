"""Super-resolution methods built on inpainters and on the DDPM prior.

The task (:class:`inpaintbench.core.tasks.SuperResolution`): the high-resolution (HR) image is the
ground truth; the method sees :func:`inpaintbench.core.tasks.downscale` of it, the **area** average
of each ``scale x scale`` cell, and returns an HR estimate through its
``upscale(low_res, scale, *, rng)`` hook (``tasks = ("super-resolution",)``). The scale comes
from the call, never from the constructor, so one configured method serves every scale.

* :class:`InpaintingUpscale` -- zero insertion onto a stride-``s`` grid (:func:`zero_insert`,
  the grid of the ``super-resolve`` mask family) then any known-mask inpainter of the registry
  (RePaint, ILVR, pde-heat, telea, biharmonic...);
* :class:`BicubicILVRUpscale` -- bicubic upsampling, then ILVR (a
  :class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`: the core's loop with ILVR's
  strategy) with the bicubic image as the whole-image reference and ``down_n = scale``.

The bicubic baseline is :class:`inpaintbench.baselines.bicubic.BicubicUpscale`.

Zero insertion puts each low-resolution pixel (a cell *mean*) at one pixel of its cell: the
inpainting view treats the cell mean as a sample of the HR image, an approximation the
measurements include.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.method import Method, Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import check_image_batch
from inpaintbench.baselines.bicubic import bicubic_upscale
from inpaintbench.methods.diffusion.base import DiffusionMethod, check_num_steps
from inpaintbench.methods.diffusion.conditioning import Conditioning
from inpaintbench.methods.diffusion.ilvr import DEFAULT_NUM_STEPS, check_range_t, ilvr_conditioning
from inpaintbench.methods.diffusion.lowpass import LowPassFilter
from inpaintbench.methods.diffusion.schedules import plain_schedule
from inpaintbench.core.tasks import check_scale, downscale  # noqa: F401  (downscale: re-exported for old callers)

#: The task name of every method of this module.
TASK = "super-resolution"


def super_resolve_holes(n: int, h: int, w: int, scale: int) -> torch.Tensor:
    """The hole mask of zero insertion: the harness's ``super-resolve`` mask family at ``scale``.

    Returns:
        bool ``[n, 1, h, w]`` on the CPU, False (known) at one pixel per ``scale x scale`` cell.
    """
    from inpaintbench.core.masks import SuperResolveMask

    # The family is deterministic; the generator argument of the protocol is not drawn from.
    return SuperResolveMask(scale=check_scale(scale))(n, h, w, generator=torch.Generator())


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


def _check_inpainter(name: str, inner: Any) -> None:
    """InputError unless ``inner`` (a method or its class) is a known-mask inpainter."""
    tasks = getattr(inner, "tasks", ("inpainting",))
    if "inpainting" not in tasks:
        raise InputError(f"inpainter {name!r} is a {'/'.join(tasks)} method, not an inpainter")
    if getattr(inner, "blind", False):
        raise InputError(f"inpainter {name!r} is blind; zero insertion needs a known-mask inpainter")


class InpaintingUpscale(Method):
    """Zero insertion plus a known-mask inpainter (``sr-inpaint-*``).

    Args:
        inpainter: registry name of a known-mask inpainting method (``repaint``, ``ilvr``,
            ``pde-heat``, ``telea``, ``biharmonic``...).
        inpainter_config: keyword arguments of that method (merged over its registry defaults).

    :meth:`effective_config` includes the inner method's effective config (its registry
    defaults and these overrides), :meth:`weight_files` its weight files; the stats of a call
    are the inner method's (``nfe``...).

    Raises:
        InputError: the inpainter is blind or does not inpaint.
        MethodUnavailable: the inpainter cannot be built here.
    """

    tasks: ClassVar[tuple[str, ...]] = (TASK,)

    def __init__(self, *, inpainter: str = "pde-heat", inpainter_config: dict[str, Any] | None = None):
        from inpaintbench.core.registry import method_registry

        super().__init__(inpainter=inpainter, inpainter_config=dict(inpainter_config or {}))
        inner = method_registry().create(inpainter, **self.config["inpainter_config"])
        _check_inpainter(inpainter, inner)
        self.inpainter = inner
        self.deterministic = inner.deterministic

    @classmethod
    def check_available(cls, *, inpainter: str = "pde-heat", inpainter_config: dict[str, Any] | None = None,
                        **_: Any) -> None:
        """The inpainter's check (:meth:`Registry.availability
        <inpaintbench.core.registry.Registry.availability>` with ``inpainter_config``): raises
        :class:`MethodUnavailable` naming it and its reason, :class:`InputError` for a method that
        is no known-mask inpainter; nothing is built."""
        from inpaintbench.core.registry import method_registry

        registry = method_registry()
        ok, reason = registry.availability(inpainter, **(inpainter_config or {}))
        if not ok:
            raise MethodUnavailable(f"its inpainter {inpainter!r} is unavailable: {reason}")
        _check_inpainter(inpainter, registry.entry(inpainter).resolve())

    def to(self, device: torch.device | str) -> "InpaintingUpscale":
        """Move the inner inpainter to ``device``; returns ``self``."""
        super().to(device)
        self.inpainter.to(device)
        return self

    def accepts(self, channels: int, height: int, width: int) -> str | None:
        """What the inner inpainter accepts: it fills the high-resolution grid."""
        return self.inpainter.accepts(channels, height, width)

    def effective_config(self) -> dict[str, Any]:
        """``self.config`` plus ``"inpainter_effective"``: the inner method's effective config."""
        return {**self.config, "inpainter_effective": self.inpainter.effective_config()}

    def weight_files(self) -> list[str]:
        """The inner inpainter's weight files."""
        return [*super().weight_files(), *self.inpainter.weight_files()]

    def upscale(self, low_res: torch.Tensor, scale: int, *, rng: SampleRNG) -> Restoration:
        """:func:`zero_insert` then the inner inpainter, with the inserted pixels pasted back.

        ``[B, C, h, w]`` in ``[0, 1]`` -> ``[B, C, h * scale, w * scale]`` in ``[0, 1]``; the
        stats are the inner call's."""
        image, hole = zero_insert(low_res.to(self.device), check_scale(scale))
        out = self.inpainter.inpaint(image, hole, rng=rng)
        result = out if isinstance(out, Restoration) else Restoration(out)
        return Restoration(torch.where(hole, result.image, image).clamp(0.0, 1.0), dict(result.stats))


class BicubicILVRUpscale(DiffusionMethod):
    """Bicubic upsampling refined by ILVR (``sr-bicubic-ilvr``).

    The bicubic image is the ILVR reference for the whole image with ``down_n`` = the call's
    scale: the prior supplies the details, the reference's ``scale x scale`` cell means are
    imposed at every step (the diffusion core's loop with ILVR's strategy,
    :func:`~inpaintbench.methods.diffusion.ilvr.ilvr_conditioning`, no hole mask).

    Args:
        num_steps: respaced reverse steps (None: the ILVR methods' default).
        range_t: the last ``range_t`` steps run unconditioned.
        weights, model, adm, prior: those of :class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`.
    """

    tasks: ClassVar[tuple[str, ...]] = (TASK,)

    def __init__(self, *, num_steps: int | None = None, range_t: int = 0,
                 weights: str | os.PathLike | None = None, prior: tuple[Any, Any] | None = None,
                 model: str | os.PathLike | None = None, adm: str | os.PathLike | None = None):
        num_steps = DEFAULT_NUM_STEPS if num_steps is None else num_steps
        check_num_steps(num_steps)
        check_range_t(range_t, num_steps)
        super().__init__(num_steps=num_steps, weights=weights, model=model, adm=adm, prior=prior, range_t=range_t)
        self.range_t = range_t
        self.schedule = plain_schedule(num_steps)

    def conditioning(self, reference: torch.Tensor, hole: torch.Tensor | None, *, scale: int) -> Conditioning:
        """ILVR with ``phi_N`` the ``scale x scale`` cell mean on the whole image."""
        return ilvr_conditioning(reference, hole, LowPassFilter(scale), self.range_t)

    def upscale(self, low_res: torch.Tensor, scale: int, *, rng: SampleRNG) -> Restoration:
        """ILVR sample referenced on the bicubic upsampling of ``low_res`` with ``down_n=scale``.

        ``[B, C, h, w]`` in ``[0, 1]`` -> ``[B, C, h * scale, w * scale]`` in ``[0, 1]`` and
        ``{"nfe": num_steps}``."""
        reference = bicubic_upscale(low_res, check_scale(scale))
        self.check_input(reference)
        return self.sample_chain(reference, None, rng=rng, scale=scale)
