"""The GPU path of a run: reduced precision, channels-last memory layout, ``torch.compile``,
and batching up to a memory budget (issue #15, item 5).

One frozen :class:`Acceleration` says what a run asks for; :meth:`Acceleration.apply` applies
it to one method and returns an :class:`AppliedAcceleration` that says what was *actually*
applied to that method (its record config) and gives the autocast context of its calls::

    acc = Acceleration(precision="bf16", channels_last=True)
    method = method_registry().create("lama-ffc", weights="lama-ffc-celeba32").to("cuda")
    applied = acc.apply(method)                  # after .to(device): it checks the device
    with applied.autocast():                     # around the (timed) restore call
        out = method.restore(observation, rng)
    record_config["acceleration"] = applied.describe()

What each option does, and why:

* ``precision``: ``"bf16"`` / ``"fp16"`` run the call under :func:`torch.autocast` with that
  dtype (matmuls and convolutions in reduced precision, reductions and norms in float32 as
  autocast decides); parameters stay float32 and the method's output stays float32 ``[0, 1]``
  (every method returns ``.float()``). ``fp16`` is refused on the CPU (no fast fp16 kernels
  there; use ``bf16``).
* ``channels_last``: the method's networks get NHWC weights, and their 4-D float inputs are
  converted on entry (a forward pre-hook): cuDNN's and oneDNN's fast convolution kernels
  are NHWC, especially with tensor cores. Outputs are numerically the same as NCHW (up to
  kernel-choice rounding, ~1e-6).
* ``compile``: the method's networks are compiled in place with ``nn.Module.compile``
  (``torch.compile``; ``compile_mode="reduce-overhead"`` adds CUDA graphs, which remove the
  per-kernel launch cost that dominates a diffusion chain at small batch). The first call
  of each new input shape is slow (compilation): time after a warm-up call.

Methods that hold no ``torch.nn.Module`` (OpenCV, scikit-image, TensorFlow, the torch
classical baselines) are left untouched and recorded as ``precision = "fp32"``.

:func:`auto_batch_size` picks how many images to batch per call from the peak CUDA memory
of a one-image call (:func:`measure_peak_bytes`).
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import torch
from torch import nn

from inpaintbench.core.errors import InputError

__all__ = [
    "Acceleration",
    "AppliedAcceleration",
    "PRECISIONS",
    "auto_batch_size",
    "find_modules",
    "measure_peak_bytes",
]

#: Precision name -> the autocast dtype (``None``: no autocast, plain float32).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

#: ``torch.compile`` modes accepted (``None`` = the default mode).
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# Objects whose attributes are searched for networks: the project's own classes and
# diffusers' pipelines (Stable Diffusion keeps its UNet/VAE/text encoder there). Foreign
# objects (Keras models, OpenCV handles, modules) are never walked.
_WALK_PREFIXES = ("inpaintbench.", "diffusers.")
_MAX_DEPTH = 6


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


@dataclass(frozen=True)
class Acceleration:
    """What a run asks for on its torch methods.

    Args:
        precision: ``"fp32"`` (default, no autocast), ``"bf16"`` or ``"fp16"`` (CUDA only):
            the dtype of :func:`torch.autocast` around each call.
        channels_last: convert the networks (and their 4-D inputs) to NHWC memory layout.
        compile: compile the networks in place with ``torch.compile`` (torch >= 2).
        compile_mode: ``torch.compile`` mode (None = default; ``"reduce-overhead"`` = CUDA
            graphs, CUDA only; ``"max-autotune"``...); only with ``compile=True``.
        compile_backend: ``torch.compile`` backend (``"inductor"``; ``"eager"`` traces
            without generating code: a cheap check of the compile path on a CPU).

    Raises:
        InputError: one line naming the bad value and the allowed ones.
    """

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        for name in ("channels_last", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise InputError(f"compile_mode must be one of {list(COMPILE_MODES)}, got {self.compile_mode!r}")
        if not isinstance(self.compile_backend, str) or not self.compile_backend:
            raise InputError(f"compile_backend must be a backend name such as 'inductor', got {self.compile_backend!r}")
        if (self.compile_mode is not None or self.compile_backend != "inductor") and not self.compile:
            raise InputError("compile_mode / compile_backend are options of compile=true; set compile=true or drop them")
        if self.compile and (_torch_version() < (2, 0) or not hasattr(torch, "compile")):
            raise InputError(f"compile=true needs torch >= 2.0 (torch.compile); this is torch {torch.__version__}")

    @classmethod
    def from_config(cls, values: dict[str, Any] | None) -> "Acceleration":
        """From a suite's ``[run]`` keys (``precision``, ``channels_last``, ``compile``,
        ``compile_mode``, ``compile_backend``); other keys are ignored (they are the run's),
        missing keys take the defaults. Raises :class:`InputError` for bad values."""
        values = dict(values or {})
        known = ("precision", "channels_last", "compile", "compile_mode", "compile_backend")
        return cls(**{k: values[k] for k in known if k in values})

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype; None for ``fp32`` (no autocast)."""
        return PRECISIONS[self.precision]

    def check_device(self, device: torch.device | str) -> None:
        """Raise :class:`InputError` when this acceleration cannot run on ``device``
        (``fp16`` or CUDA graphs on the CPU, ``bf16`` on a GPU without bfloat16)."""
        device = torch.device(device)
        if device.type == "cpu" and self.precision == "fp16":
            raise InputError("precision='fp16' is not supported on the CPU (no fast fp16 kernels there); "
                             "use precision='bf16' on the CPU")
        if device.type == "cpu" and self.compile and self.compile_mode == "reduce-overhead":
            raise InputError("compile_mode='reduce-overhead' uses CUDA graphs: CUDA only; "
                             "use the default compile_mode on the CPU")
        if device.type == "cuda" and self.precision == "bf16" and torch.cuda.is_available() \
                and not torch.cuda.is_bf16_supported():
            raise InputError(f"precision='bf16' needs a GPU with bfloat16 support (Ampere or newer); "
                             f"{torch.cuda.get_device_name(device)} has none: use precision='fp16'")
        if device.type not in ("cpu", "cuda") and self.precision != "fp32":
            raise InputError(f"precision={self.precision!r} is supported on 'cpu' and 'cuda', not {device.type!r}")

    def describe(self) -> dict[str, Any]:
        """What was asked, as plain values for a record's config:
        ``{"precision", "channels_last", "compile"[, "compile_mode", "compile_backend"]}``
        (the compile options only when compiling, so default records keep their hash)."""
        out: dict[str, Any] = {"precision": self.precision, "channels_last": self.channels_last,
                               "compile": self.compile}
        if self.compile:
            out["compile_mode"] = self.compile_mode or "default"
            out["compile_backend"] = self.compile_backend
        return out

    def autocast(self, device: torch.device | str) -> ContextManager[Any]:
        """The context of a call on ``device``: ``torch.autocast(device.type, dtype)`` for
        bf16 / fp16, a no-op for fp32. Use the :class:`AppliedAcceleration`'s own
        :meth:`~AppliedAcceleration.autocast` for a method (it is a no-op for non-torch ones)."""
        self.check_device(device)
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=self.dtype)

    def apply(self, method: Any, device: torch.device | str | None = None) -> "AppliedAcceleration":
        """Apply this acceleration to ``method``'s networks, **in place**, and say what was done.

        The networks are found by :func:`find_modules` (the method itself when it is an
        ``nn.Module``, else the ``nn.Module`` attributes it holds, through wrappers' inner
        methods and diffusion priors). Call it once per method, after ``method.to(device)``;
        applying twice does not convert or compile twice.

        Args:
            method: a :class:`~inpaintbench.core.method.Method` (or any object holding networks).
            device: where it runs; default ``method.device`` (else the CPU).

        Returns:
            :class:`AppliedAcceleration`: the effective settings (fp32 and nothing applied
            when no network was found) and the autocast context of the method's calls.

        Raises:
            InputError: the acceleration cannot run on ``device`` (:meth:`check_device`).
        """
        device = torch.device(device if device is not None else getattr(method, "device", "cpu"))
        self.check_device(device)
        found = find_modules(method)
        if not found:
            return AppliedAcceleration(self, device, "fp32", False, False, (),
                                       "no torch.nn.Module in this method: run as is, in fp32")
        for _, module in found:
            if self.channels_last:
                _to_channels_last(module)
            if self.compile:
                _compile_in_place(module, self.compile_mode, self.compile_backend)
        return AppliedAcceleration(self, device, self.precision, self.channels_last, self.compile,
                                   tuple(path for path, _ in found), None)


@dataclass(frozen=True)
class AppliedAcceleration:
    """What :meth:`Acceleration.apply` actually did to one method.

    Attributes:
        requested: the run's :class:`Acceleration`.
        device: the device the method runs on.
        precision: the effective precision (``"fp32"`` for non-torch methods).
        channels_last, compiled: whether they were applied.
        modules: attribute paths of the networks found (``"method.net"``, ...).
        note: why nothing was applied (non-torch method), else None.
    """

    requested: Acceleration
    device: torch.device
    precision: str
    channels_last: bool
    compiled: bool
    modules: tuple[str, ...]
    note: str | None = None

    def autocast(self) -> ContextManager[Any]:
        """The context of this method's calls: autocast with the effective precision on its
        device (a no-op for fp32 and for methods without networks)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision])

    def describe(self) -> dict[str, Any]:
        """The record-config entry: what was applied to this method (``precision``,
        ``channels_last``, ``compile`` [+ ``compile_mode``, ``compile_backend``]), plus
        ``requested`` (the run's options) with ``note`` when they differ from what was applied."""
        out: dict[str, Any] = {"precision": self.precision, "channels_last": self.channels_last,
                               "compile": self.compiled}
        if self.compiled:
            out["compile_mode"] = self.requested.compile_mode or "default"
            out["compile_backend"] = self.requested.compile_backend
        asked = self.requested.describe()
        if {k: out.get(k) for k in asked} != asked:
            out["requested"] = asked
            if self.note:
                out["note"] = self.note
        return out


# ---------------------------------------------------------------------------- finding networks


def find_modules(obj: Any) -> list[tuple[str, nn.Module]]:
    """The top-level ``nn.Module``s an object holds, with their attribute paths.

    ``obj`` itself when it is an ``nn.Module``; else its attributes, searched recursively
    (lists, tuples, dicts, and objects of the project's or diffusers' classes: a wrapper's
    inner method, a :class:`~inpaintbench.methods.diffusion.core.DiffusionPrior`'s denoiser, a
    diffusers pipeline's components), at most a few levels deep. A module inside another
    found module is not listed again; foreign objects (Keras, OpenCV) are not searched.

    Returns:
        ``[(path, module), ...]`` in attribute order, e.g. ``[("method.prior.denoiser.unet",
        UNet2DModel)]``; empty for a method without networks.
    """
    found: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def visit(value: Any, path: str, depth: int) -> None:
        if id(value) in seen or depth > _MAX_DEPTH:
            return
        seen.add(id(value))
        if isinstance(value, nn.Module):
            found.append((path, value))
            return
        if isinstance(value, (torch.Tensor, str, bytes, int, float, bool, type(None), types.ModuleType, type)):
            return
        if isinstance(value, dict):
            for key, item in list(value.items()):
                visit(item, f"{path}[{key!r}]", depth + 1)
            return
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit(item, f"{path}[{i}]", depth + 1)
            return
        if type(value).__module__.startswith(_WALK_PREFIXES) and hasattr(value, "__dict__"):
            for key, item in list(vars(value).items()):
                visit(item, f"{path}.{key}", depth + 1)

    visit(obj, "method", 0)
    inner = {id(sub) for _, module in found for sub in module.modules() if sub is not module}
    return [(path, module) for path, module in found if id(module) not in inner]


# ---------------------------------------------------------------------------- what apply does


def _channels_last_args(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.contiguous(memory_format=torch.channels_last)
                 if isinstance(a, torch.Tensor) and a.ndim == 4 and a.is_floating_point() else a
                 for a in args)


def _to_channels_last(module: nn.Module) -> None:
    """NHWC weights (4-D parameters and buffers) and NHWC 4-D inputs for ``module``."""
    if getattr(module, "_inpaintbench_channels_last", False):
        return
    # nn.Module.to itself, not a subclass override (a Method that is an nn.Module has its own .to(device)).
    nn.Module.to(module, memory_format=torch.channels_last)
    module.register_forward_pre_hook(_channels_last_args)
    module._inpaintbench_channels_last = True  # type: ignore[attr-defined]


def _compile_in_place(module: nn.Module, mode: str | None, backend: str) -> None:
    """``module.compile(...)``: compiles its forward in place (``torch.compile``), so every
    holder of the module (a method, a diffusers pipeline) uses the compiled version."""
    if getattr(module, "_inpaintbench_compiled", False):
        return
    options: dict[str, Any] = {"backend": backend}
    if mode not in (None, "default"):
        options["mode"] = mode
    module.compile(**options)
    module._inpaintbench_compiled = True  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- batching


def measure_peak_bytes(fn: Callable[[], Any], device: torch.device | str) -> tuple[int | None, int]:
    """Peak CUDA memory of one call of ``fn`` and the memory resident before it.

    Returns:
        ``(peak_bytes, resident_bytes)``: ``torch.cuda.max_memory_allocated`` during the call
        (the allocator's peak is reset first) and ``torch.cuda.memory_allocated`` before it
        (weights and anything else kept), in bytes. On the CPU ``(None, 0)``: torch keeps no
        allocator statistics there.
    """
    from inpaintbench.harness.timing import timed_call

    device = torch.device(device)
    resident = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    return timed_call(fn, device).peak_memory_bytes, resident


def auto_batch_size(measure_peak_bytes_at_batch_1: int | None | Callable[[], int | None], budget_bytes: int,
                    max_batch: int, *, resident_bytes: int = 0, safety: float = 0.8) -> int:
    """How many images to put in one call so that its peak memory stays within a budget.

    The peak of a call is modelled as ``resident + B * per_image`` with
    ``per_image = peak(1) - resident``: activations grow linearly with the batch in these
    networks (convolutions, attention over a fixed number of positions), while weights do
    not. With ``resident_bytes = 0`` the whole one-image peak is counted per image, which
    under-estimates ``B`` (safe). ``safety`` keeps a margin for allocator fragmentation and
    for the kernels (cuDNN workspaces) that a larger batch selects::

        B = clamp(floor((safety * budget - resident) / (peak(1) - resident)), 1, max_batch)

    Args:
        measure_peak_bytes_at_batch_1: the peak bytes of a one-image call (e.g.
            ``measure_peak_bytes(...)[0]``), or a callable returning it; None (the CPU, no
            allocator statistics): ``max_batch`` is returned.
        budget_bytes: memory the calls may use, in bytes (> 0), e.g. a fraction of
            ``torch.cuda.mem_get_info()[1]``.
        max_batch: upper bound (>= 1), e.g. the dataset size or the run's batch size.
        resident_bytes: bytes allocated before the call (weights), in ``[0, peak)``.
        safety: fraction of the budget planned for, in ``(0, 1]``.

    Returns:
        The batch size, an int in ``[1, max_batch]`` (1 even when one image exceeds the budget).

    Raises:
        InputError: a non-positive budget or max_batch, a safety outside ``(0, 1]``.
    """
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise InputError(f"max_batch must be an int >= 1, got {max_batch!r}")
    if not budget_bytes or budget_bytes <= 0:
        raise InputError(f"budget_bytes must be > 0, got {budget_bytes!r}")
    if not 0.0 < safety <= 1.0:
        raise InputError(f"safety must lie in (0, 1], got {safety!r}")
    peak = measure_peak_bytes_at_batch_1() if callable(measure_peak_bytes_at_batch_1) else measure_peak_bytes_at_batch_1
    if peak is None:
        return max_batch
    per_image = max(int(peak) - int(resident_bytes), 1)
    usable = safety * budget_bytes - resident_bytes
    return max(1, min(max_batch, int(usable // per_image)))
