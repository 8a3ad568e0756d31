"""Tasks: the degradation a method must undo, kept apart from the methods that undo it.

A task (deepinv's ``Physics``) knows how to turn an original image into the observation a
method receives, which pixels are known, how to composite the method's raw output with the
known pixels, and which region the hole metrics score. The runner never branches on the
task: it asks a :class:`Condition` of the suite (a mask family, a scale) for the task of each
batch and goes through the task's methods.

* :class:`Inpainting` (a hole mask): the method sees the image with its holes zero-filled and
  the mask; known pixels are pasted back; the holes are scored.
* :class:`SuperResolution` (an integer scale): the method sees the area-downscaled image; no
  pixel of the high-resolution grid is known, so nothing is pasted and the whole image is
  scored.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InpaintBenchError, InputError
from inpaintbench.core.images import apply_mask, check_image_batch, check_mask_batch, composite
from inpaintbench.core.method import Method, Observation, Task
from inpaintbench.core.seeding import SampleRNG



class ArgumentModified(InpaintBenchError):
    """A method changed one of its input tensors in place (the harness scores its own copy;
    the call is recorded as an error)."""


def check_unchanged(method: "Method", what: str, given: torch.Tensor, original: torch.Tensor) -> None:
    """Raise :class:`ArgumentModified` when the copy ``given`` to ``method`` no longer equals ``original``."""
    if given.shape != original.shape or not torch.equal(given, original):
        raise ArgumentModified(
            f"method {method.name!r} modified its {what} argument in place; the harness scores its own "
            f"{what}, so this call is not scored (copy an input before changing it)")


class Inpainting(Task):
    """Fill the holes of a mask.

    Args:
        mask: bool ``[B, 1, H, W]``, True = hole.
    """

    name = "inpainting"

    def __init__(self, mask: torch.Tensor):
        check_mask_batch(mask)
        self.mask = mask

    def observe(self, original: torch.Tensor) -> Observation:
        """Zero-filled image and the mask; ``original`` must match the mask's batch and size."""
        if original.shape[0] != self.mask.shape[0] or original.shape[2:] != self.mask.shape[2:]:
            raise InputError(f"mask shape {list(self.mask.shape)} does not match image shape {list(original.shape)}")
        mask = self.mask.to(original.device)
        return Observation(self, apply_mask(original, mask), mask)

    def call_hook(self, method: "Method", observation: Observation, rng: "SampleRNG") -> Any:
        """``method.inpaint(image, mask or None if blind, rng=rng)`` on copies; a copy changed
        in place by the method raises :class:`ArgumentModified` (the call is not scored)."""
        image = observation.image.clone()
        mask = None if method.blind else observation.mask.clone()
        out = method.inpaint(image, mask, rng=rng)
        check_unchanged(method, "image", image, observation.image)
        if mask is not None:
            check_unchanged(method, "mask", mask, observation.mask)
        return out

    def composite(self, raw: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        """``raw`` in the holes, ``original`` elsewhere."""
        return composite(raw, original, self.mask.to(raw.device))

    def generated_region(self) -> torch.Tensor:
        """The holes."""
        return self.mask

    def shown_mask(self) -> torch.Tensor:
        """The holes."""
        return self.mask


def check_scale(scale: int) -> int:
    """``scale`` if it is an int >= 2, else :class:`InputError`."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise InputError(f"super-resolution scale must be an int >= 2, got {scale!r}")
    return scale


def downscale(high_res: torch.Tensor, scale: int) -> torch.Tensor:
    """The super-resolution degradation: area downsampling (mean of each ``scale x scale`` cell).

    Args:
        high_res: float32 ``[B, C, H, W]`` in ``[0, 1]``, ``H`` and ``W`` divisible by ``scale``.
        scale: integer factor >= 2.

    Returns:
        float32 ``[B, C, H / scale, W / scale]`` in ``[0, 1]``.
    """
    check_image_batch(high_res, "high-resolution image")
    check_scale(scale)
    h, w = high_res.shape[-2:]
    if h % scale or w % scale:
        raise InputError(f"image size {h}x{w} is not divisible by the super-resolution scale {scale}")
    return F.avg_pool2d(high_res, scale)


class SuperResolution(Task):
    """Recover the high-resolution image from its area-downscaled version.

    Args:
        scale: integer factor >= 2.
        shape: ``(B, C, H, W)`` of the high-resolution originals.
    """

    name = "super-resolution"

    def __init__(self, scale: int, shape: tuple[int, int, int, int]):
        self.scale = check_scale(scale)
        self.shape = tuple(shape)

    def observe(self, original: torch.Tensor) -> Observation:
        """:func:`downscale` of ``original``; no mask."""
        return Observation(self, downscale(original, self.scale))

    def call_hook(self, method: "Method", observation: Observation, rng: "SampleRNG") -> Any:
        """``method.upscale(low_res, scale, rng=rng)`` on a copy (changed in place: :class:`ArgumentModified`)."""
        low_res = observation.image.clone()
        out = method.upscale(low_res, self.scale, rng=rng)
        check_unchanged(method, "low-resolution image", low_res, observation.image)
        return out

    def composite(self, raw: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        """``raw``: no high-resolution pixel is known."""
        return raw

    def generated_region(self) -> torch.Tensor:
        """The whole image."""
        b, _, h, w = self.shape
        return torch.ones((b, 1, h, w), dtype=torch.bool)

    def shown_mask(self) -> torch.Tensor:
        """The zero-insertion grid (one known pixel per ``scale x scale`` cell)."""
        from inpaintbench.core.masks import SuperResolveMask

        b, _, h, w = self.shape
        return SuperResolveMask(scale=self.scale)(b, h, w, generator=torch.Generator())


def run_task(method: "Method", task: Task, original: torch.Tensor, *, seed: int = 0,
             sample_ids: list[str] | None = None) -> Any:
    """One call of ``method`` on one batch of ``task``, outside a suite (scripts, tests, notebooks
    of users).

    Args:
        method: a built method that supports ``task``.
        task: e.g. ``Inpainting(mask)``.
        original: float32 ``[B, C, H, W]`` in ``[0, 1]``; the task degrades it.
        seed: with ``sample_ids``, seeds the per-sample generators exactly as a suite run does
            (suite seed, ``"method"``, the method's name, sample id).
        sample_ids: one id per image; default ``"0"``, ``"1"``, ...

    Returns:
        the method's :class:`~inpaintbench.core.method.Restoration` (raw output and counters).
    """
    ids = sample_ids if sample_ids is not None else [str(i) for i in range(original.shape[0])]
    rng = SampleRNG.for_samples(seed, "method", method.name, sample_ids=ids, device=method.device)
    return method.restore(task.observe(original), rng)


def inpaint(method: "Method", image: torch.Tensor, mask: torch.Tensor, *, seed: int = 0,
            sample_ids: list[str] | None = None) -> Any:
    """:func:`run_task` of ``Inpainting(mask)``: ``image`` float32 ``[B, C, H, W]`` in ``[0, 1]``
    (its holes are zero-filled before the method sees them), ``mask`` bool ``[B, 1, H, W]``,
    True = hole. Returns the :class:`~inpaintbench.core.method.Restoration`."""
    return run_task(method, Inpainting(mask), image, seed=seed, sample_ids=sample_ids)
