"""Training of the hole predictor (the ``mask-predictor`` trainer): :class:`MaskPredictorTask`,
trained with the suite's shared loop (:mod:`inpaintbench.methods.training.loop`) on a mix of the
harness's mask families, corrupting the training images exactly as the harness corrupts them
for blind methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from inpaintbench.core.images import apply_mask
from inpaintbench.core.masks import mixed_masks
from inpaintbench.methods.feedforward.mask_predictor_net import MaskPredictorUNet
from inpaintbench.methods.feedforward.mask_predictor_weights import save_mask_predictor
from inpaintbench.methods.training.init import seeded_init_

#: Mask families of the harness the predictor is trained and evaluated on (28x28-capable,
#: no external files).
DEFAULT_FAMILIES: tuple[str, ...] = (
    "box", "random-boxes", "strokes-thin", "strokes-medium", "strokes-thick", "wide", "narrow",
    "super-resolve", "alternating-lines", "half", "expand", "disc",
)


def sample_mixed_masks(families: Mapping[str, Any], n: int, h: int, w: int, *,
                       generator: torch.Generator) -> torch.Tensor:
    """Masks for ``n`` images, each from a family drawn uniformly from ``families``.

    Args:
        families: name -> mask family (``family(n, h, w, generator=g)`` -> bool ``[n, 1, h, w]``).
        n, h, w: number of masks and their size in pixels.
        generator: draws the family of each image and then the masks (in ``families`` order).

    Returns:
        bool ``[n, 1, h, w]`` on the generator's device, True = hole.
    """
    return mixed_masks(list(families.values()), n, h, w, generator=generator)


def create_families(names: Sequence[str]) -> dict[str, Any]:
    """``{name: mask family}`` of the harness's mask registry, in ``names`` order."""
    from inpaintbench.core.registry import mask_registry

    registry = mask_registry()
    return {name: registry.create(name) for name in names}


class MaskPredictorTask:
    """:class:`inpaintbench.methods.training.loop.TrainTask` of the hole predictor.

    Each batch: one mask per image from a family drawn uniformly from ``families`` (the
    harness's registry names), holes zero-filled with :func:`inpaintbench.core.images.apply_mask`
    (what blind methods receive), loss = binary cross-entropy of the predicted hole logits.

    Args:
        families: mask family names of the harness (``inpaintbench list``).
        in_channels, channels, norm_groups: :class:`MaskPredictorUNet` architecture.
        threshold: decision threshold written into the exported config.
        init_seed: seeds the initial weights (no global RNG).
    """

    def __init__(self, *, families: Sequence[str] = DEFAULT_FAMILIES, in_channels: int = 1,
                 channels: Sequence[int] = (16, 32, 64), norm_groups: int = 8, threshold: float = 0.5,
                 init_seed: int = 0):
        self.net = MaskPredictorUNet(in_channels, channels, norm_groups)
        seeded_init_(self.net, init_seed)
        self.families = create_families(families)
        self.threshold = float(threshold)
        self.config = {"families": list(families), **self.net.config, "threshold": self.threshold,
                       "init_seed": init_seed}

    def modules(self) -> dict[str, torch.nn.Module]:
        """``{"predictor": MaskPredictorUNet}``."""
        return {"predictor": self.net}

    def loss(self, images: torch.Tensor, step: int, generator: torch.Generator):
        """Binary cross-entropy of the hole logits; also logs the batch's hole fraction.

        ``images``: float32 ``[B, C, H, W]`` in ``[0, 1]``; masks drawn from ``generator``.
        """
        b, _, h, w = images.shape
        holes = sample_mixed_masks(self.families, b, h, w, generator=generator).to(images.device)
        logits = self.net(apply_mask(images, holes))
        loss = F.binary_cross_entropy_with_logits(logits, holes.to(logits.dtype))
        return loss, {"hole_fraction": float(holes.float().mean())}

    def export(self, modules: dict[str, torch.nn.Module], out_dir: Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` (architecture, threshold, families;
        :func:`~inpaintbench.methods.feedforward.mask_predictor_weights.save_mask_predictor`)."""
        save_mask_predictor(modules["predictor"], self.threshold, self.config["families"], out_dir)
