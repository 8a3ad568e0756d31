"""Training of ``lama-ffc`` (the ``lama`` trainer): :class:`LamaTask`, the
:class:`~inpaintbench.methods.training.loop.TrainTask` that trains an
:class:`~inpaintbench.methods.feedforward.lama_net.FFCInpaintNet` on the harness's mask families
(fresh masks every batch) with LaMa's pixel-weighted L1 plus a VGG16 perceptual term, and
exports it with :func:`~inpaintbench.methods.feedforward.lama_weights.save_ffc_net`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.images import apply_mask
from inpaintbench.core.masks import mixed_masks
from inpaintbench.methods.feedforward.lama_net import FFCInpaintNet
from inpaintbench.methods.feedforward.lama_weights import save_ffc_net
from inpaintbench.methods.training.init import seeded_init_

#: Mask families (registry names) training draws from, one chosen uniformly per image.
DEFAULT_TRAIN_MASKS = ("strokes-thin", "strokes-medium", "strokes-thick", "wide", "narrow",
                       "box", "random-boxes", "half")


def draw_training_masks(families: Sequence[Callable[..., torch.Tensor]], n: int, h: int, w: int,
                        generator: torch.Generator, *, random_flips: bool = True) -> torch.Tensor:
    """Masks for one training batch: each image's family drawn uniformly from ``families``.

    Args:
        families: mask families (``family(n, h, w, generator=...) -> bool [n, 1, h, w]``).
        n, h, w: batch size and image size in pixels.
        generator: the only randomness (family choice, the masks, the flips).
        random_flips: apply one of the 8 flips/transposes of the square to each mask (only
            when ``h == w``), so e.g. RePaint's right "half" also trains the other sides.

    Returns:
        bool ``[n, 1, h, w]`` on the CPU, True = hole.
    """
    masks = mixed_masks(families, n, h, w, generator=generator).cpu()
    if random_flips and h == w:
        ops = torch.randint(8, (n,), generator=generator, device=generator.device).cpu().tolist()
        flipped = []
        for m, op in zip(masks, ops):
            if op & 1:
                m = m.flip(-1)
            if op & 2:
                m = m.flip(-2)
            if op & 4:
                m = m.transpose(-1, -2)
            flipped.append(m)
        masks = torch.stack(flipped)
    return masks


class LamaTask:
    """:class:`~inpaintbench.methods.training.loop.TrainTask` of a LaMa-FFC network.

    Loss of a batch (images ``x``, masks ``m`` drawn by :func:`draw_training_masks`, prediction
    ``y`` of the masked images)::

        l1_weight_hole * mean(m * |y - x|) + l1_weight_known * mean((1 - m) * |y - x|)
        + perceptual_weight * PerceptualLoss(composite(y, x, m), x)

    LaMa weights L1 by region the same way; its perceptual terms see the raw prediction, here
    the composite is used so the term measures exactly what the harness scores (LPIPS of the
    composite) and all its gradient goes to the hole. No adversarial term: the shared loop
    has one optimizer, and MNIST's strokes are sharp enough with the perceptual term.

    Args:
        image_channels, ngf, n_downsampling, n_blocks, ratio_global: :class:`FFCInpaintNet`.
        init_seed: seeds the initial weights (no global RNG).
        train_masks: mask-family registry names to draw from.
        random_flips: see :func:`draw_training_masks`.
        l1_weight_hole, l1_weight_known, perceptual_weight: loss weights (0 disables a term).
        perceptual_layers, perceptual_min_size, vgg16_weights: of
            :class:`~inpaintbench.methods.training.perceptual.PerceptualLoss`.
    """

    def __init__(self, *, image_channels: int = 1, ngf: int = 24, n_downsampling: int = 2,
                 n_blocks: int = 4, ratio_global: float = 0.75, init_seed: int = 0,
                 train_masks: Sequence[str] = DEFAULT_TRAIN_MASKS, random_flips: bool = True,
                 l1_weight_hole: float = 2.0, l1_weight_known: float = 1.0,
                 perceptual_weight: float = 0.5,
                 perceptual_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
                 perceptual_min_size: int | None = None, vgg16_weights: str | None = None):
        from inpaintbench.core.registry import mask_registry

        self.arch = {"image_channels": image_channels, "ngf": ngf, "n_downsampling": n_downsampling,
                     "n_blocks": n_blocks, "ratio_global": ratio_global}
        self.config = {**self.arch, "init_seed": init_seed, "train_masks": list(train_masks),
                       "random_flips": random_flips, "l1_weight_hole": l1_weight_hole,
                       "l1_weight_known": l1_weight_known, "perceptual_weight": perceptual_weight,
                       "perceptual_layers": list(perceptual_layers),
                       "perceptual_min_size": perceptual_min_size, "vgg16_weights": vgg16_weights}
        if not train_masks:
            raise InputError("train_masks must name at least one mask family")
        self.families = [mask_registry().create(name) for name in train_masks]
        self.net = FFCInpaintNet(**self.arch)
        seeded_init_(self.net, init_seed)
        self.perceptual = None
        if perceptual_weight:
            from inpaintbench.methods.training.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(perceptual_layers, vgg16_weights, perceptual_min_size)

    def modules(self) -> dict[str, torch.nn.Module]:
        """``{"generator": FFCInpaintNet}`` (the VGG16 of the perceptual term is frozen, not listed)."""
        return {"generator": self.net}

    def loss(self, images: torch.Tensor, step: int, generator: torch.Generator):
        """Scalar loss of one batch and ``{"l1", "perceptual", "hole_fraction"}`` to log.

        ``images``: float32 ``[B, C, H, W]`` in ``[0, 1]``; masks come from ``generator``.
        """
        b, _, h, w = images.shape
        mask = draw_training_masks(self.families, b, h, w, generator,
                                   random_flips=self.config["random_flips"]).to(images.device)
        prediction = self.net(apply_mask(images, mask), mask)
        hole = mask.to(images.dtype)
        error = (prediction - images).abs()
        l1 = (self.config["l1_weight_hole"] * hole * error
              + self.config["l1_weight_known"] * (1.0 - hole) * error).mean()
        total = l1
        extras = {"l1": float(l1.detach()), "hole_fraction": float(hole.mean())}
        if self.perceptual is not None:
            self.perceptual.to(images.device)
            perceptual = self.perceptual(torch.where(mask, prediction, images), images)
            total = total + self.config["perceptual_weight"] * perceptual
            extras["perceptual"] = float(perceptual.detach())
        return total, extras

    def export(self, modules: dict[str, torch.nn.Module], out_dir: Path) -> None:
        """``model.safetensors`` + ``config.json`` of the generator (see :func:`save_ffc_net`)."""
        save_ffc_net(modules["generator"], self.arch, out_dir)
