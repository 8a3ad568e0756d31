"""Naive PDE inpainting: the heat equation with the known pixels as boundary condition."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inpaintbench.api import Method, SampleRNG

# The 4-neighbour average: one explicit heat-equation step at the largest stable time step.
_STENCIL = torch.tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]])


def heat_inpaint(image: torch.Tensor, mask: torch.Tensor, iterations: int = 200,
                 tolerance: float = 1e-5, min_size: int = 8, multiscale: bool = True) -> torch.Tensor:
    """Fill holes with the steady state of the heat equation (harmonic interpolation).

    Jacobi iterations of the 4-neighbour average inside the holes, known pixels held fixed,
    replicate padding at the image border (no-flux). Plain Jacobi needs O(hole width^2)
    iterations, so the solve starts from the solution on a 2x coarser grid (a multigrid-style
    cascade): each level then only needs a few hundred iterations.

    Args:
        image: float ``[B, C, H, W]`` in ``[0, 1]``, any device.
        mask: bool ``[B, 1, H, W]``, True = hole.
        iterations: Jacobi sweeps per pyramid level (upper bound).
        tolerance: stop a level early once no pixel moves more than this in one sweep.
        min_size: the coarsest level's short side, in pixels.
        multiscale: start from the coarser level's solution; False gives the textbook
            single-grid iteration started from the known pixels' mean (slow to converge).

    Returns:
        ``[B, C, H, W]`` equal to ``image`` on known pixels.
    """
    b, c, h, w = image.shape
    if not mask.any():
        return image
    known = (~mask).to(image.dtype)
    if multiscale and min(h, w) >= 2 * min_size:
        # Coarse level: known-weighted average pooling keeps colours unbiased by the zeros in holes.
        num = F.avg_pool2d(image * known, 2, ceil_mode=True)
        den = F.avg_pool2d(known, 2, ceil_mode=True)
        coarse_known = den > 0
        coarse = num / den.clamp_min(1e-8)
        coarse = heat_inpaint(coarse, ~coarse_known, iterations, tolerance, min_size, multiscale)
        start = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    else:
        mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        start = mean.expand_as(image)
    x = torch.where(mask, start, image)
    kernel = _STENCIL.to(image).expand(c, 1, 3, 3)
    hole = mask.expand_as(image)
    # Convergence is decided per image, so an image stops at the same sweep whatever else
    # shares its batch (a batch-wide test made every image iterate as long as the slowest).
    active = torch.ones(b, 1, 1, 1, dtype=torch.bool, device=image.device)
    for sweep in range(iterations):
        smoothed = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)
        update = hole & active
        # Checking convergence costs a reduction; every 16 sweeps is plenty.
        if sweep % 16 == 15:
            change = ((smoothed - x) * update).abs().amax(dim=(1, 2, 3), keepdim=True)
            x = torch.where(update, smoothed, x)
            active &= change >= tolerance
            if not active.any():
                break
        else:
            x = torch.where(update, smoothed, x)
    return x


class HeatDiffusion(Method):
    """Heat-equation inpainting, batched in torch so it runs on a GPU as well as the CPU.

    Config: ``iterations`` (Jacobi sweeps per pyramid level), ``tolerance``, ``multiscale``
    (coarse-to-fine start; False = plain single-grid Jacobi from the mean colour).
    """

    preserves_known = True

    def __init__(self, iterations: int = 300, tolerance: float = 1e-5, multiscale: bool = True):
        super().__init__(iterations=iterations, tolerance=tolerance, multiscale=multiscale)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, rng: SampleRNG) -> torch.Tensor:
        """``[B,C,H,W]`` in [0,1], bool mask ``[B,1,H,W]`` -> ``[B,C,H,W]`` in [0,1]."""
        out = heat_inpaint(image, mask, self.config["iterations"], self.config["tolerance"],
                           multiscale=self.config["multiscale"])
        return out.clamp(0.0, 1.0)
