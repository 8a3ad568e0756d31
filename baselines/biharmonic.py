"""scikit-image's biharmonic inpainting."""

from __future__ import annotations

import numpy as np
import torch

from inpaintbench.core.availability import require_package
from inpaintbench.core.method import Method
from inpaintbench.core.seeding import SampleRNG


class Biharmonic(Method):
    """``skimage.restoration.inpaint_biharmonic`` image by image on the CPU (float64 inside).

    Config: ``split_into_regions`` (solve each connected hole separately: faster on many
    small holes, same result).
    """

    preserves_known = True

    def __init__(self, split_into_regions: bool = False):
        super().__init__(split_into_regions=split_into_regions)
        self.check_available()

    @classmethod
    def check_available(cls, **_: object) -> None:
        """:class:`~inpaintbench.core.errors.MethodUnavailable` unless scikit-image is installed
        (not imported: it is imported at the first call)."""
        require_package("skimage", "biharmonic", "pip install scikit-image")

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, rng: SampleRNG) -> torch.Tensor:
        """``[B,C,H,W]`` in [0,1], bool mask ``[B,1,H,W]`` -> ``[B,C,H,W]`` in [0,1]."""
        from skimage.restoration import inpaint_biharmonic  # ~0.3 s: not paid by listing methods

        images = image.detach().cpu().permute(0, 2, 3, 1).numpy().astype(np.float64)
        holes = mask.detach().cpu()[:, 0].numpy()
        filled = [
            inpaint_biharmonic(img, hole, channel_axis=-1, split_into_regions=self.config["split_into_regions"])
            if hole.any() else img
            for img, hole in zip(images, holes)
        ]
        result = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).to(image.device, torch.float32)
        return torch.where(mask, result.clamp(0.0, 1.0), image)
