"""A suite's task settings (a mask family, a scale) and the drawing of each batch's task.

A condition makes the task of a batch of samples; the masks of sample ``i`` depend only on
``(suite seed, condition label, sample id)``, never on the batch it lands in.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.identity import config_hash
from inpaintbench.core.registry import mask_registry
from inpaintbench.core.seeding import make_generator
from inpaintbench.core.method import Task
from inpaintbench.core.tasks import Inpainting, SuperResolution, check_scale


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
        return config_hash({"name": self.name, **self.config})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.config}

    def family(self):
        """The built mask family (None for ``"dataset"``)."""
        if self.name == "dataset":
            return None
        if self._family is None:
            self._family = mask_registry().create(self.name, **self.config)
        return self._family

    def validate(self) -> None:
        self.family()

    def task_for(self, sample_ids, shape, seed, dataset_masks):
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
        return config_hash({"name": "scale", "scale": self.scale})

    def describe(self) -> dict[str, Any]:
        return {"name": "scale", "scale": self.scale}

    def task_for(self, sample_ids, shape, seed, dataset_masks):
        return SuperResolution(self.scale, shape)
