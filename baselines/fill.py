"""The floor every method must beat: constant fills."""

from __future__ import annotations

import torch

from inpaintbench.core.method import Method
from inpaintbench.core.seeding import SampleRNG


class ZeroFill(Method):
    """Leaves the holes at 0 (the masked input itself)."""

    preserves_known = True

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, rng: SampleRNG) -> torch.Tensor:
        """``[B,C,H,W]`` in [0,1] -> the same tensor with holes at 0."""
        return image.masked_fill(mask, 0.0)


class MeanFill(Method):
    """Fills each image's holes with the mean colour of its known pixels (0 if none known)."""

    preserves_known = True

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, rng: SampleRNG) -> torch.Tensor:
        """``[B,C,H,W]`` in [0,1] -> holes set to the per-image, per-channel known mean."""
        known = (~mask).to(image.dtype)
        count = known.sum(dim=(2, 3), keepdim=True)
        mean = (image * known).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1.0)
        return torch.where(mask, mean.expand_as(image), image)
