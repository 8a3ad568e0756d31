"""The method-task contract: one call, :meth:`Method.restore`, for every task; the hooks a method
implements for the tasks it declares; the abstract :class:`Task` and the :class:`Observation` it
lets a method see. Concrete tasks (inpainting, super-resolution) are in :mod:`inpaintbench.core.tasks`."""

from __future__ import annotations

import abc
import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

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

    #: Constructor arguments never recorded in the config: objects (a preloaded model) and aliases
    #: the constructor records under another name.
    config_excludes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)
        self.device = torch.device("cpu")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _capturing_arguments(cls.__init__)  # type: ignore[method-assign]

    def _record_arguments(self, signature: inspect.Signature, args: tuple, kwargs: dict[str, Any]) -> None:
        """Add the constructor's arguments that its own code left out of ``self.config`` (diffusers'
        ``register_to_config`` idea): every argument that differs from its default, and every
        extra keyword, unless named in :attr:`config_excludes`. A plugin whose constructor takes
        explicit options and calls ``super().__init__()`` thus has them in its config and hash.
        Arguments at their defaults are left out, so the configs (and hashes) of methods that
        record their options themselves are unchanged."""
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # the call already failed or succeeded without a bindable signature
            return
        for index, (name, param) in enumerate(signature.parameters.items()):
            if index == 0 or name in self.config or name in self.config_excludes:
                continue
            if param.kind is param.VAR_KEYWORD:  # passed on to a parent: its default decides
                for key, value in bound.arguments.get(name, {}).items():
                    if key not in self.config and key not in self.config_excludes \
                            and not _equal(value, _inherited_default(type(self), key)):
                        self.config[key] = value
                continue
            if param.kind is param.VAR_POSITIONAL or name not in bound.arguments:
                continue
            if not _equal(bound.arguments[name], param.default):
                self.config[name] = bound.arguments[name]

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

    def accepts(self, channels: int, height: int, width: int) -> str | None:
        """Whether this built method runs on a dataset's images; asked at plan time, per dataset.

        Args:
            channels, height, width: the dataset's images, ``[C, H, W]`` (super-resolution: the
                high-resolution size the method must produce).

        Returns:
            None when it runs on them, else why not, in one line naming what to change. The
            harness then leaves that (method, dataset) pair out: ``plan`` shows it, ``run``
            names it once at the start and runs the rest. The default accepts anything; a
            learned method declares what its weights were trained on
            (:func:`trained_shape_refusal`), a fully convolutional one only its channels. Not
            part of the config: a declaration never changes a config hash.
        """
        return None

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


def trained_shape_refusal(who: str, trained: tuple[int, int, int], given: tuple[int, int, int], *,
                          any_size: bool = False, multiple: int = 1, hint: str = "") -> str | None:
    """The one-line refusal of a learned method whose weights were trained on other images, or None.

    Args:
        who: names the method and its weights (``"lama-ffc (weights lama-ffc-mnist)"``).
        trained: ``(C, H, W)`` of the training images; ``given``: ``(C, H, W)`` of the data.
        any_size: the network runs at other sizes (fully convolutional): only the channels
            must match, and ``H`` and ``W`` be multiples of ``multiple``.
        hint: what to pass instead (``"weights=\"lama-ffc-celeba32\" for RGB"``).

    A grey model is never run channel by channel on colour images, nor a colour one on grey
    images; a network of fixed size (a DDPM prior, a fully connected generator) never on
    resized or cropped images it was not trained on.
    """
    (tc, th, tw), (c, h, w) = trained, given
    grey = {1: "grey", 3: "RGB"}
    instead = f"; {hint}" if hint else ""
    if tc != c:
        return (f"{who} was trained on {grey.get(tc, f'{tc}-channel')} images, the data is "
                f"{grey.get(c, f'{c}-channel')}{instead}")
    if any_size:
        if h % multiple or w % multiple:
            return f"{who} needs a height and width divisible by {multiple}, the data is {h}x{w}"
        return None
    if (th, tw) != (h, w):
        return f"{who} was trained on {th}x{tw} images and runs only at that size, the data is {h}x{w}{instead}"
    return None


@runtime_checkable
class MaskFamily(Protocol):
    """A seeded generator of hole masks.

    ``family(n, h, w, generator=g)`` returns bool ``[n, 1, h, w]`` with True = hole; the same
    generator state gives the same masks on any machine.
    """

    name: str

    def __call__(self, n: int, h: int, w: int, *, generator: torch.Generator) -> torch.Tensor: ...


def _equal(value: Any, default: Any) -> bool:
    """Whether ``value`` is the default (``inspect.Parameter.empty``: there is none)."""
    if default is inspect.Parameter.empty:
        return False
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001 - e.g. a tensor: not comparable to a default, so recorded
        return False


def _inherited_default(cls: type, name: str) -> Any:
    """The default of parameter ``name`` in the nearest ``__init__`` of ``cls``'s MRO that
    declares it (``inspect.Parameter.empty`` when none does)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            return param.default
    return inspect.Parameter.empty


def _capturing_arguments(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a method class's ``__init__`` so the outermost call records its arguments
    (:meth:`Method._record_arguments`) once the constructor chain has run."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Method, *args: Any, **kwargs: Any) -> None:
        outermost = "_recording_arguments" not in self.__dict__
        if outermost:
            self.__dict__["_recording_arguments"] = True
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                del self.__dict__["_recording_arguments"]
        if outermost and isinstance(getattr(self, "config", None), dict):
            self._record_arguments(signature, args, kwargs)

    return wrapper
