"""The contracts a plugin author needs, in one import (re-exported from :mod:`inpaintbench.core`).

Conventions (the whole suite relies on them):

* images are ``float32`` tensors ``[B, C, H, W]`` with values in ``[0, 1]``; ``C`` is 1 or 3;
* masks are ``bool`` tensors ``[B, 1, H, W]`` and **True marks a missing pixel (a hole)**;
* a method receives the *masked* image, holes already zero-filled, so it can never see the
  ground truth inside a hole;
* every random choice is driven by explicit generators: one per sample (:class:`SampleRNG`).

The definitions live in the core layer (``core/errors.py``, ``core/seeding.py``,
``core/images.py``, ``core/method.py``, ``core/tasks.py``, ``core/registry.py``); the suite's
own modules import them from there, and this module keeps the names plugins have always used.
"""

from __future__ import annotations

from inpaintbench.core.errors import InpaintBenchError, InputError, MethodUnavailable, StorageError
from inpaintbench.core.images import Sample, apply_mask, check_image_batch, check_mask_batch, composite
from inpaintbench.core.method import MaskFamily, Method, Restoration
from inpaintbench.core.registry import Entry
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.method import Observation, Task
from inpaintbench.core.tasks import Inpainting, SuperResolution

__all__ = ["InpaintBenchError", "InputError", "MethodUnavailable", "StorageError", "Sample", "apply_mask",
           "check_image_batch", "check_mask_batch", "composite", "MaskFamily", "Method", "Restoration", "Entry",
           "SampleRNG", "Inpainting", "Observation", "SuperResolution", "Task"]
