"""A dataset as a run streams it: sample ids up front, images read batch by batch.

The runner never stacks a whole dataset: it learns the sample ids (cheap for file datasets,
which expose ``sample_id(index)``) and the image shape from the first sample, and a unit reads
only the images of its batch when it runs them, so peak memory does not grow with the number
of images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import check_image_batch
from inpaintbench.core.registry import dataset_registry
from inpaintbench.harness.suite import Spec


def _sample_id(dataset: Any, index: int) -> str:
    """The id of item ``index`` without decoding its image where the dataset allows it."""
    getter = getattr(dataset, "sample_id", None)
    return str(getter(index)) if callable(getter) else str(dataset[index].sample_id)


@dataclass
class DatasetView:
    """The first ``len(ids)`` items of one built dataset.

    Attributes:
        spec: the suite's dataset spec (label, hash).
        dataset: the built dataset (``dataset[i]`` -> :class:`~inpaintbench.core.images.Sample`).
        ids: sample ids of the items run, in order.
        shape: ``(C, H, W)`` of every image (the first one's; :meth:`load` refuses others).
        has_masks: whether the dataset ships its own masks (from the first item).
    """

    spec: Spec
    dataset: Any
    ids: list[str]
    shape: tuple[int, int, int]
    has_masks: bool

    def load(self, indices: Sequence[int], expected_ids: Sequence[str] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Read items ``indices``: images float32 ``[B, C, H, W]`` in [0, 1] and the dataset's
        masks (bool ``[B, 1, H, W]``, True = hole) or None.

        Args:
            expected_ids: the ids the plan gave these indices; a dataset read elsewhere (another
                machine's copy, a folder that changed since planning) must still agree.
        Raises:
            InputError: an item whose id is not the planned one, an image of another size than
                the first (give the dataset a ``size=``), or a dataset whose masks come and go.
        """
        samples = [self.dataset[i] for i in indices]
        for index, sample, expected in zip(indices, samples, expected_ids or [None] * len(samples)):
            if expected is not None and sample.sample_id != expected:
                raise InputError(f"dataset {self.spec.label!r}: item {index} is {sample.sample_id!r} here but was "
                                 f"{expected!r} when the run was planned; its files changed (or differ on this "
                                 "machine): keep the dataset fixed while a run uses it")
            if tuple(sample.image.shape) != self.shape:
                raise InputError(f"dataset {self.spec.label!r} has images of different sizes: sample "
                                 f"{sample.sample_id!r} is {list(sample.image.shape)}, the first is "
                                 f"{list(self.shape)}; give it a size= so they are resized to one")
            if (sample.mask is not None) != self.has_masks:
                raise InputError(f"dataset {self.spec.label!r}: sample {sample.sample_id!r} "
                                 f"{'lacks' if self.has_masks else 'has'} a mask of its own, unlike the first")
        images = torch.stack([s.image for s in samples]).to(torch.float32)
        check_image_batch(images, f"dataset {self.spec.label!r} images")
        masks = torch.stack([s.mask for s in samples]) if self.has_masks else None
        return images, masks


def open_dataset(spec: Spec, n_images: int) -> DatasetView:
    """Build a dataset and learn its first ``n_images`` ids and its image shape (one image read).

    Raises:
        InputError: an empty dataset, or a sample id with a control character (ids name
            records and example files).
    """
    dataset = dataset_registry().create(spec.name, **spec.config)
    n = min(n_images, len(dataset))
    if n == 0:
        raise InputError(f"dataset {spec.label!r} is empty")
    ids = [_sample_id(dataset, i) for i in range(n)]
    for sample_id in ids:
        if any(ord(c) < 32 or ord(c) == 127 for c in sample_id):
            raise InputError(f"dataset {spec.label!r}: sample {sample_id!r} has a control character in its "
                             "name (sample ids name records and example files); rename the file")
    if len(set(ids)) != len(ids):
        raise InputError(f"dataset {spec.label!r} gives two samples the same id; ids must be unique")
    first = dataset[0]
    view = DatasetView(spec, dataset, ids, tuple(first.image.shape), first.mask is not None)
    check_image_batch(first.image[None].to(torch.float32), f"dataset {spec.label!r} images")
    return view
