"""The method-task contract: one call, :meth:`Method.restore`, for every task; the hooks a method
implements for the tasks it declares; the abstract :class:`Task` and the :class:`Observation` it
lets a method see. Concrete tasks (inpainting, super-resolution) are in :mod:`inpaintbench.core.tasks`."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG


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
            observation: what the task lets the method see (see :class:`inpaintbench.core.tasks.Observation`).
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

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *, rng: SampleRNG) -> "torch.Tensor | Restoration":
        """The inpainting hook (a method with ``"inpainting"`` in ``tasks`` overrides it).

        Args:
            image: float32 ``[B, C, H, W]`` in ``[0, 1]``, holes zero-filled.
            mask: bool ``[B, 1, H, W]``, True = hole; ``None`` for ``blind`` methods.
            rng: one generator per image.

        Returns:
            the raw output ``[B, C, H, W]`` in ``[0, 1]``, or a :class:`Restoration` with counters.
        """
        raise InputError(f"method {self.name!r} declares no inpainting hook (tasks: {list(self.tasks)})")

    def upscale(self, low_res: torch.Tensor, scale: int, *, rng: SampleRNG) -> "torch.Tensor | Restoration":
        """The super-resolution hook (a method with ``"super-resolution"`` in ``tasks`` overrides it).

        Args:
            low_res: float32 ``[B, C, H / scale, W / scale]`` in ``[0, 1]`` (area-downscaled).
            scale: the integer factor (>= 2).
            rng: one generator per image.

        Returns:
            the raw output ``[B, C, H, W]`` in ``[0, 1]``, or a :class:`Restoration` with counters.
        """
        raise InputError(f"method {self.name!r} declares no super-resolution hook (tasks: {list(self.tasks)})")

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
