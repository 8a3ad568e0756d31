"""The contracts every part of the harness agrees on.

Conventions (the whole suite relies on them):

* images are ``float32`` tensors ``[B, C, H, W]`` with values in ``[0, 1]``; ``C`` is 1 or 3;
* masks are ``bool`` tensors ``[B, 1, H, W]`` and **True marks a missing pixel (a hole)**;
* a method receives the *masked* image, holes already zero-filled, so it can never see the
  ground truth inside a hole;
* every random choice is driven by explicit generators: one per sample (:class:`SampleRNG`).

Files with other conventions (RePaint / MI-GAN masks: white = known; diffusers' RePaint
pipeline: 0 = inpaint; its Stable Diffusion inpainting pipeline: white = repaint, like ours)
are converted where they are read, never inside a method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, Sequence, runtime_checkable

import torch

if TYPE_CHECKING:
    from inpaintbench.tasks import Observation


class InpaintBenchError(Exception):
    """Base class of the errors the harness reports to users as one clear line."""


class InputError(InpaintBenchError, ValueError):
    """Bad input: wrong shape, dtype, range, mask values, size mismatch, unreadable file."""


class StorageError(InpaintBenchError, OSError):
    """Writing a results folder failed (disk full, read-only, quota): the message names the file
    and the cause; every record written before is kept, so a rerun resumes."""


class MethodUnavailable(InpaintBenchError, RuntimeError):
    """A method cannot be built here (missing optional extra, missing weights file).

    The message names what is missing and how to provide it; the registry lists the method
    as unavailable with that message instead of failing the whole run.
    """


class SampleRNG:
    """Per-sample randomness: one ``torch.Generator`` per image of a batch.

    The harness seeds generator ``i`` from (suite seed, method label, sample id ``i``) alone,
    so a sample's draws never depend on the batch it lands in, the batch size, or where an
    interrupted run resumed. Methods draw through :meth:`randn` (a stack of per-sample
    draws), never from one batch-wide generator.

    Args:
        generators: one generator per image, all on the same device.
    """

    def __init__(self, generators: Sequence[torch.Generator]):
        self.generators = tuple(generators)
        if not self.generators:
            raise InputError("SampleRNG needs at least one generator")
        self.device = self.generators[0].device

    @classmethod
    def for_samples(cls, *parts: object, sample_ids: Sequence[str],
                    device: torch.device | str = "cpu") -> "SampleRNG":
        """Generators seeded by :func:`inpaintbench.seeding.derive_seed` of ``(*parts, sample_id)``."""
        from inpaintbench.seeding import make_generator

        return cls([make_generator(*parts, sid, device=device) for sid in sample_ids])

    def __len__(self) -> int:
        return len(self.generators)

    def __getitem__(self, index: slice) -> "SampleRNG":
        """The generators of a sub-batch (``rng[lo:hi]``), for methods that chunk a batch."""
        if not isinstance(index, slice):
            raise TypeError("SampleRNG is indexed by slices (rng[lo:hi])")
        return SampleRNG(self.generators[index])

    def select(self, indices: Sequence[int]) -> "SampleRNG":
        """The generators of the images at ``indices`` (a sub-batch picked by index)."""
        return SampleRNG([self.generators[int(i)] for i in indices])

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[B, *shape]`` standard normal draws, row ``i`` from generator ``i`` (on its device)."""
        return torch.stack([torch.randn(shape, generator=g, device=self.device, dtype=dtype)
                            for g in self.generators])

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample standard normal draws shaped like ``x`` (``[B, ...]``, B = ``len(self)``)."""
        if x.shape[0] != len(self):
            raise InputError(f"batch of {x.shape[0]} images but {len(self)} per-sample generators")
        return self.randn(*x.shape[1:], dtype=x.dtype)

    def rand(self, *shape: int) -> torch.Tensor:
        """``[B, *shape]`` uniform ``[0, 1)`` draws, row ``i`` from generator ``i``."""
        return torch.stack([torch.rand(shape, generator=g, device=self.device) for g in self.generators])


@dataclass
class Restoration:
    """What one method call returns.

    Attributes:
        image: float32 ``[B, C, H, W]`` in ``[0, 1]``, the raw output (before compositing).
        stats: counters of the call: ``nfe`` (network evaluations per image),
            ``inner_calls`` (wrappers), ``predictor_calls``...; each value a float (the same
            for every image) or a sequence of ``B`` floats (one per image); empty when nothing
            is counted.
    """

    image: torch.Tensor
    stats: dict[str, Any] = field(default_factory=dict)

    def per_image(self, name: str, index: int) -> float:
        """The value of counter ``name`` for image ``index`` of the batch."""
        value = self.stats[name]
        return float(value) if isinstance(value, (int, float)) else float(value[index])


class Method:
    """Base class of every method of the suite.

    A method declares the tasks it solves in ``tasks`` (``"inpainting"``,
    ``"super-resolution"``) and implements that task's hook; the harness calls only
    :meth:`restore`, the one call for every task:

    * inpainting: ``inpaint(image, mask, *, rng)`` gets the image with its holes zero-filled
      and the bool mask (True = hole; ``None`` for ``blind`` methods);
    * super-resolution: ``upscale(low_res, scale, *, rng)`` gets the degraded low-resolution
      image and the integer factor.

    A hook returns a tensor, or a :class:`Restoration` when it has counters (NFE).
    Constructor keyword arguments are the config (``self.config``, saved and hashed into
    every result).

    Class attributes a subclass may override:

    * ``tasks`` -- the task names it supports;
    * ``preserves_known`` -- True when the raw output equals the input on known pixels by
      construction (the contract tests check it exactly);
    * ``blind`` -- True when the method is given only the corrupted image (``mask=None``);
    * ``deterministic`` -- False when the output depends on the random draws (diffusion);
      the same per-sample generators must still give the same output.
    """

    name: str = "unnamed"
    tasks: ClassVar[tuple[str, ...]] = ("inpainting",)
    preserves_known: ClassVar[bool] = False
    blind: ClassVar[bool] = False
    deterministic: ClassVar[bool] = True

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> "Method":
        """Move the method's models to ``device``; returns ``self``."""
        self.device = torch.device(device)
        return self

    def restore(self, observation: "Observation", rng: SampleRNG) -> Restoration:
        """Solve one batch of a task.

        Args:
            observation: what the task lets the method see (see :class:`inpaintbench.tasks.Observation`).
            rng: one generator per image (``len(rng) == B``), the only randomness allowed.

        Returns:
            :class:`Restoration` with the raw output ``[B, C, H, W]`` of the original's size.

        Raises:
            InputError: the method does not support the observation's task.
        """
        task = observation.task
        if task.name not in self.tasks:
            raise InputError(f"method {self.name!r} solves {list(self.tasks)}, not {task.name!r}")
        out = task.call_hook(self, observation, rng)
        return out if isinstance(out, Restoration) else Restoration(out)

    def weight_files(self) -> list[str]:
        """Paths of the weight files this method loaded (their sha256 enters the config hash).

        Methods that load weights append to ``self.loaded_files``; wrappers add their inner
        methods' files.
        """
        return list(getattr(self, "loaded_files", []))

    def effective_config(self) -> dict[str, Any]:
        """The configuration that determines the outputs: ``self.config`` plus, for wrappers,
        the inner methods' effective configs (a wrapper overrides this)."""
        return dict(self.config)


@runtime_checkable
class MaskFamily(Protocol):
    """A seeded generator of hole masks.

    ``family(n, h, w, generator=g)`` returns bool ``[n, 1, h, w]`` with True = hole; the same
    generator state gives the same masks on any machine.
    """

    name: str

    def __call__(self, n: int, h: int, w: int, *, generator: torch.Generator) -> torch.Tensor: ...


def check_image_batch(image: torch.Tensor, what: str = "image") -> None:
    """Raise :class:`InputError` unless ``image`` is float32 ``[B, C, H, W]``, C in {1, 3},
    finite, with values in ``[0, 1]``."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise InputError(f"{what} must have shape [B, C, H, W] with C in {{1, 3}}, got {list(image.shape)}")
    if image.dtype != torch.float32:
        raise InputError(f"{what} must be float32, got {image.dtype}")
    if not torch.isfinite(image).all():
        raise InputError(f"{what} contains NaN or inf values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{what} values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")


def check_mask_batch(mask: torch.Tensor, image: torch.Tensor | None = None) -> None:
    """Raise :class:`InputError` unless ``mask`` is bool ``[B, 1, H, W]`` matching ``image``."""
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise InputError(
            f"mask must be a bool tensor (True = hole), got {mask.dtype}; "
            "convert with mask > 0.5 after checking its polarity"
        )
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise InputError(f"mask must have shape [B, 1, H, W], got {list(mask.shape)}")
    if image is not None and (mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]):
        raise InputError(
            f"mask shape {list(mask.shape)} does not match image shape {list(image.shape)} "
            "(batch and spatial size must agree)"
        )


def composite(output: torch.Tensor, original: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Paste the known pixels of ``original`` over ``output``.

    Args:
        output, original: ``[B, C, H, W]`` in ``[0, 1]``.
        mask: bool ``[B, 1, H, W]``, True = hole.

    Returns:
        ``[B, C, H, W]``: ``output`` inside the holes, ``original`` elsewhere.
    """
    return torch.where(mask, output, original)


def apply_mask(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero-fill the holes: the input every method receives. Shapes as in :func:`composite`."""
    return image.masked_fill(mask, 0.0)


class Sample(NamedTuple):
    """One dataset item.

    Attributes:
        image: float32 ``[C, H, W]`` in ``[0, 1]``.
        sample_id: a stable string id (file stem, dataset index) used for seeding and resuming.
        mask: bool ``[1, H, W]`` (True = hole) when the dataset ships its own mask, else None.
    """

    image: torch.Tensor
    sample_id: str
    mask: torch.Tensor | None = None
