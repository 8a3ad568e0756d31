"""inpaintbench: a comparative benchmark suite for image inpainting.

The public API::

    from inpaintbench import create_method, list_methods, run_suite, load_suite, Inpainting, inpaint

    method = create_method("telea")
    result = inpaint(method, images, masks)        # Restoration: .image (raw output), .stats
    summary = run_suite(load_suite("default"), "results/default")

The package is layered (see ARCHITECTURE.md at the repository root): ``core`` (contracts) ->
``metrics`` -> ``store`` (records, results folders) -> ``harness`` (suite, plan, units,
executors) and ``report`` (statistics, tables, plots, pages, the gate), which meet only through
the store -> ``cli``. Methods, baselines and datasets import only ``core`` (and ``metrics``).

Conventions: images float32 ``[B, C, H, W]`` in ``[0, 1]``; masks bool ``[B, 1, H, W]``,
True = hole. Nothing heavy is imported until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inpaintbench.core.method import Method, Restoration
    from inpaintbench.core.seeding import SampleRNG
    from inpaintbench.harness.runner import RunSummary
    from inpaintbench.core.tasks import Inpainting, SuperResolution

__all__ = ["Method", "Restoration", "SampleRNG", "Inpainting", "SuperResolution", "create_method",
           "list_methods", "load_suite", "run_suite", "inpaint", "run_task"]

_LAZY = {
    "Method": "inpaintbench.core.method", "Restoration": "inpaintbench.core.method",
    "SampleRNG": "inpaintbench.core.seeding",
    "Inpainting": "inpaintbench.core.tasks", "SuperResolution": "inpaintbench.core.tasks",
    "inpaint": "inpaintbench.core.tasks", "run_task": "inpaintbench.core.tasks",
    "load_suite": "inpaintbench.harness.suite", "run_suite": "inpaintbench.harness.runner",
}


def create_method(name: str, **config: Any) -> "Method":
    """Build the registered method ``name`` with ``config`` over its registry defaults."""
    from inpaintbench.core.registry import method_registry

    return method_registry().create(name, **config)


def list_methods() -> list[str]:
    """Names of every registered method (built-in and plugins), in registration order."""
    from inpaintbench.core.registry import method_registry

    return method_registry().names()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'inpaintbench' has no attribute {name!r}")
