"""pde-heat: the exact sparse direct solve of the discrete Laplace equation and the iterative
Jacobi cascade it replaced as the default, checked against each other and against the
equation itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask
from inpaintbench.baselines.heat import ITERATIVE_DEFAULTS, HeatDiffusion, heat_inpaint, heat_inpaint_direct
from inpaintbench.core.registry import method_registry


def _rng(n: int) -> SampleRNG:
    """Per-sample generators for a batch of ``n`` images (pde-heat draws none)."""
    return SampleRNG.for_samples(0, "heat", sample_ids=[str(i) for i in range(n)])


def _images(n: int = 4, c: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    """A smooth colour gradient plus noise, float32 ``[n, c, size, size]`` in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 3, size), torch.linspace(0, 3, size), indexing="ij")
    return (0.5 + 0.3 * torch.sin(xx + 2 * yy) + 0.15 * torch.rand(n, c, size, size, generator=gen)).clamp(0, 1)


def _masks(n: int = 4, size: int = 32, seed: int = 1) -> torch.Tensor:
    """Random boxes per image, some touching the image border; bool ``[n, 1, size, size]``."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        for _ in range(3):
            top, left = torch.randint(0, size - 4, (2,), generator=gen).tolist()
            height, width = torch.randint(3, size // 2, (2,), generator=gen).tolist()
            mask[i, :, top:top + height, left:left + width] = True
    mask[0, :, :5, 10:20] = True     # touches the top edge
    mask[1, :, 20:, 25:] = True      # covers a corner
    return mask


def laplace_residual(out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``deg(p) x_p - sum of in-image 4-neighbours`` at every pixel, float64 ``[B, C, H, W]``,
    zeroed on known pixels: the discrete Laplacian with a reflecting border, written
    independently of the solver (neighbour sums over shifted copies)."""
    x = out.double()
    b, c, h, w = x.shape
    residual = torch.zeros_like(x)
    for dim, size in ((2, h), (3, w)):
        for forward in (True, False):
            keep = slice(0, size - 1) if forward else slice(1, size)
            take = slice(1, size) if forward else slice(0, size - 1)
            index = [slice(None)] * 4
            target, source = list(index), list(index)
            target[dim], source[dim] = keep, take
            # Each in-image neighbour adds (x_p - x_q): deg(p) x_p - sum_q x_q in total.
            residual[tuple(target)] += x[tuple(target)] - x[tuple(source)]
    return torch.where(mask, residual, torch.zeros_like(residual))


def test_direct_solution_satisfies_the_discrete_laplace_equation_and_keeps_known_pixels():
    image, mask = _images(), _masks()
    masked = apply_mask(image, mask)
    out = heat_inpaint_direct(masked, mask)
    assert out.dtype == torch.float32 and out.shape == image.shape
    assert laplace_residual(out, mask.expand_as(out)).abs().max() < 1e-6
    known = ~mask.expand_as(image)
    assert torch.equal(out[known], image[known])
    # Maximum principle: the hole takes values between the known extremes.
    assert out.min() >= image[known].min() - 1e-6 and out.max() <= image[known].max() + 1e-6


def test_hole_touching_the_border_has_the_exact_reflecting_solution():
    """Known pixels varying by column only, holes spanning the full height: the solution is
    the 1-D one, constant beyond the last known column where the hole reaches the left
    border (no flux) and linear between two known columns. Zero-value (Dirichlet) or
    periodic borders would give something else."""
    size = 20
    columns = torch.rand(size, generator=torch.Generator().manual_seed(3))
    image = columns.expand(1, 3, size, size).clone()
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    mask[..., :4] = True       # touches left, top and bottom borders
    mask[..., 10:16] = True    # touches top and bottom
    out = HeatDiffusion().inpaint(apply_mask(image, mask), mask, rng=_rng(1))
    expected = columns.clone()
    expected[:4] = columns[4]
    expected[10:16] = columns[9] + (columns[16] - columns[9]) * torch.arange(1, 7) / 7
    torch.testing.assert_close(out, expected.expand(1, 3, size, size), atol=1e-6, rtol=0)


def test_iterative_solver_converges_to_the_direct_solution():
    image, mask = _images(2), _masks(2)
    masked = apply_mask(image, mask)
    exact = heat_inpaint_direct(masked, mask)
    default = (heat_inpaint(masked, mask, **ITERATIVE_DEFAULTS) - exact).abs().max()
    converged = (heat_inpaint(masked, mask, iterations=20_000, tolerance=0.0) - exact).abs().max()
    assert converged < 1e-4
    assert converged < default  # more sweeps approach it: they solve the same discrete problem


def test_batch_invariance():
    image, mask = _images(), _masks()
    masked = apply_mask(image, mask)
    method = HeatDiffusion()
    batch = method.inpaint(masked, mask, rng=_rng(4))
    alone = torch.cat([method.inpaint(masked[i:i + 1], mask[i:i + 1], rng=_rng(1)) for i in range(4)])
    assert torch.equal(batch, alone)
    # The image a sample shares its batch with does not matter either.
    shuffled = method.inpaint(masked.flip(0), mask.flip(0), rng=_rng(4)).flip(0)
    assert torch.equal(batch, shuffled)


def test_all_known_image_returns_the_input_and_all_hole_image_gets_zero():
    image, mask = _images(3), _masks(3)
    mask[1] = False
    mask[2] = True
    masked = apply_mask(image, mask)
    out = heat_inpaint_direct(masked, mask)
    assert torch.equal(out[1], image[1])
    assert torch.equal(out[2], torch.zeros_like(out[2]))  # as the iterative solver: no boundary value
    assert torch.equal(heat_inpaint(masked, mask, **ITERATIVE_DEFAULTS)[2], out[2])
    nothing = torch.zeros_like(mask)
    assert heat_inpaint_direct(image, nothing) is image


def test_config_records_the_solver_and_refuses_knobs_it_does_not_use():
    assert method_registry().create("pde-heat").effective_config() == {"solver": "direct"}
    iterative = method_registry().create("pde-heat", solver="iterative", iterations=50)
    assert iterative.effective_config() == {**ITERATIVE_DEFAULTS, "iterations": 50, "solver": "iterative"}
    image, mask = _images(2), _masks(2)
    masked = apply_mask(image, mask)
    reproduced = heat_inpaint(masked, mask, 50, ITERATIVE_DEFAULTS["tolerance"]).clamp(0, 1)
    assert torch.equal(iterative.inpaint(masked, mask, rng=_rng(2)), reproduced)
    with pytest.raises(InputError, match="solver='iterative'"):
        method_registry().create("pde-heat", iterations=1)
    with pytest.raises(InputError, match="solver"):
        method_registry().create("pde-heat", solver="multigrid")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_direct_solver_returns_on_the_input_device(device):
    image, mask = _images(2).to(device), _masks(2).to(device)
    out = HeatDiffusion().inpaint(apply_mask(image, mask), mask, rng=_rng(2))
    assert out.device.type == device
    masked = apply_mask(image, mask).cpu()
    np.testing.assert_array_equal(out.cpu().numpy(), heat_inpaint_direct(masked, mask.cpu()).clamp(0, 1).numpy())
