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

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from inpaintbench.api import InpaintBenchError, InputError, apply_mask, check_image_batch, check_mask_batch

if TYPE_CHECKING:
    from inpaintbench.api import Method, SampleRNG


@dataclass(frozen=True)
class Observation:
    """What a method is allowed to see of one batch.

    Attributes:
        task: the task that made it.
        image: float32 ``[B, C, h, w]`` in ``[0, 1]``: the zero-filled image (inpainting) or
            the low-resolution image (super-resolution).
        mask: bool ``[B, 1, H, W]``, True = hole (inpainting), else None.
    """

    task: "Task"
    image: torch.Tensor
    mask: torch.Tensor | None = None


class ArgumentModified(InpaintBenchError):
    """A method changed one of its input tensors in place (the harness scores its own copy;
    the call is recorded as an error)."""


def check_unchanged(method: "Method", what: str, given: torch.Tensor, original: torch.Tensor) -> None:
    """Raise :class:`ArgumentModified` when the copy ``given`` to ``method`` no longer equals ``original``."""
    if given.shape != original.shape or not torch.equal(given, original):
        raise ArgumentModified(
            f"method {method.name!r} modified its {what} argument in place; the harness scores its own "
            f"{what}, so this call is not scored (copy an input before changing it)")


class Task(abc.ABC):
    """One batch's degradation. Subclasses set ``name`` and implement the methods below."""

    name: ClassVar[str]

    @abc.abstractmethod
    def observe(self, original: torch.Tensor) -> Observation:
        """The observation of ``original`` (float32 ``[B, C, H, W]`` in ``[0, 1]``)."""

    @abc.abstractmethod
    def call_hook(self, method: "Method", observation: Observation, rng: "SampleRNG") -> Any:
        """Call the method's hook for this task on copies of the observation's tensors (a
        method can never change the harness's own tensors)."""

    @abc.abstractmethod
    def composite(self, raw: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        """The scored output: ``raw`` (``[B, C, H, W]``) with the known pixels of ``original``."""

    @abc.abstractmethod
    def generated_region(self) -> torch.Tensor:
        """bool ``[B, 1, H, W]``: True where the method had to generate pixels (the holes; the
        whole image in super-resolution)."""

    @abc.abstractmethod
    def shown_mask(self) -> torch.Tensor:
        """bool ``[B, 1, H, W]`` drawn in comparison grids (the holes; the zero-insertion grid
        in super-resolution)."""


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
        return torch.where(self.mask.to(raw.device), raw, original)

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
        from inpaintbench.masks import SuperResolveMask

        b, _, h, w = self.shape
        return SuperResolveMask(scale=self.scale)(b, h, w, generator=torch.Generator())


class Condition(abc.ABC):
    """A suite's task setting (a mask family, a scale): makes the task of each batch.

    Attributes:
        label: how results and tables name it (the record's ``mask`` field).
        task_name: the name of the tasks it makes.
    """

    label: str
    task_name: ClassVar[str]

    @property
    @abc.abstractmethod
    def hash(self) -> str:
        """Stable hash of the condition's settings (part of every record's key)."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able settings saved in every record (``mask_config``)."""

    @abc.abstractmethod
    def task_for(self, sample_ids: list[str], shape: tuple[int, int, int, int], seed: int,
                 dataset_masks: torch.Tensor | None) -> Task:
        """The task of a batch of samples (``shape`` = ``(B, C, H, W)`` of the originals); the
        masks of sample ``i`` depend only on ``(seed, label, sample_ids[i])``."""

    def validate(self) -> None:
        """Raise :class:`InputError` for bad settings, before anything is written."""


class MaskCondition(Condition):
    """Inpainting with the masks of one family (a suite's ``[[masks]]`` entry).

    Args:
        name: mask family registry name (``"dataset"``: the dataset's own masks).
        label: results label.
        config: the family's keyword arguments.
    """

    task_name = "inpainting"

    def __init__(self, name: str, label: str, config: dict[str, Any]):
        self.name, self.label, self.config = name, label, dict(config)
        self._family = None

    @property
    def hash(self) -> str:
        from inpaintbench.run.records import config_hash

        return config_hash({"name": self.name, **self.config})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.config}

    def family(self):
        """The built mask family (None for ``"dataset"``)."""
        from inpaintbench.registry import mask_registry

        if self.name == "dataset":
            return None
        if self._family is None:
            self._family = mask_registry().create(self.name, **self.config)
        return self._family

    def validate(self) -> None:
        self.family()

    def task_for(self, sample_ids, shape, seed, dataset_masks):
        from inpaintbench.seeding import make_generator

        if self.name == "dataset":
            if dataset_masks is None:
                raise InputError("mask family 'dataset' needs a dataset that ships masks (e.g. 'paired')")
            return Inpainting(dataset_masks)
        _, _, h, w = shape
        family = self.family()
        if getattr(family, "per_sample", False):  # a mask file per sample id (RePaint's protocol)
            return Inpainting(torch.cat([family.for_sample(sid, h, w) for sid in sample_ids]))
        masks = torch.cat([family(1, h, w, generator=make_generator(seed, "mask", self.label, sid))
                           for sid in sample_ids])
        return Inpainting(masks)


class ScaleCondition(Condition):
    """Super-resolution at one integer scale (a suite's ``scales`` entry)."""

    task_name = "super-resolution"

    def __init__(self, scale: int):
        self.scale = check_scale(scale)
        self.label = f"x{scale}"

    @property
    def hash(self) -> str:
        from inpaintbench.run.records import config_hash

        return config_hash({"name": "scale", "scale": self.scale})

    def describe(self) -> dict[str, Any]:
        return {"name": "scale", "scale": self.scale}

    def task_for(self, sample_ids, shape, seed, dataset_masks):
        return SuperResolution(self.scale, shape)


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
        the method's :class:`~inpaintbench.api.Restoration` (raw output and counters).
    """
    from inpaintbench.api import SampleRNG

    ids = sample_ids if sample_ids is not None else [str(i) for i in range(original.shape[0])]
    rng = SampleRNG.for_samples(seed, "method", method.name, sample_ids=ids, device=method.device)
    return method.restore(task.observe(original), rng)


def inpaint(method: "Method", image: torch.Tensor, mask: torch.Tensor, *, seed: int = 0,
            sample_ids: list[str] | None = None) -> Any:
    """:func:`run_task` of ``Inpainting(mask)``: ``image`` float32 ``[B, C, H, W]`` in ``[0, 1]``
    (its holes are zero-filled before the method sees them), ``mask`` bool ``[B, 1, H, W]``,
    True = hole. Returns the :class:`~inpaintbench.api.Restoration`."""
    return run_task(method, Inpainting(mask), image, seed=seed, sample_ids=sample_ids)
