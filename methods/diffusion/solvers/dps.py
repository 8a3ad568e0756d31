"""DPS: Diffusion Posterior Sampling (Chung et al., "Diffusion Posterior Sampling for General
Noisy Inverse Problems", ICLR 2023), as a strategy of the diffusion core's one loop.

Each reverse step takes the unconditional proposal and corrects it with the gradient of the
measurement residual of the denoiser's ``x0_hat`` through the network (paper, Alg. 1)::

    x'_{t-1} = posterior_step(x_t, x0_hat(x_t))                  # DDPM ancestral (eta = 1)
    x_{t-1}  = x'_{t-1} - zeta * grad_{x_t} ||y - A x0_hat(x_t)||_2

The norm (not its square) is differentiated, as the official code's ``PosteriorSampling``
does: that is the paper's step size ``zeta'_i = zeta / ||y - A x0_hat||`` on the squared
norm, up to the factor 2 (``grad ||r|| = grad ||r||^2 / (2 ||r||)``).

**Per-sample norms.** DPS's released code takes ``torch.linalg.norm`` of the whole batch's
residual, so an image's step depends on the other images of its batch
(``grad_i ||r|| = ||r_i|| / ||r|| grad_i ||r_i||``). Here the norm is per image (as
RED-diff's ``algos/dps.py`` and deepinv's ``DPSDataFidelity`` do), so a batch of ``B`` equals
``B`` single calls; with one image per batch the two coincide (``tests/reference/test_dps.py``
checks both).

**Measurement noise.** DPS's step is the same for noisy measurements (the Gaussian-noise case
of the paper: ``sigma_y`` is absorbed in ``zeta``), so there is no ``sigma_y`` option.

**Learned variance** (ADM checkpoints with ``learn_sigma``): used, as DPS's code samples with
guided-diffusion's ``p_sample`` (``learned_range``) at ``eta = 1``; ``eta < 1`` takes DDIM's
fixed-variance step instead. ``x0_hat`` is clipped to ``[-1, 1]`` (DPS's ``clip_denoised``);
the gradient flows through the clip (zero where it saturates), as in DPS's code.

**Memory.** The VJP back-propagates through the denoiser, so every step keeps the network's
activations for the chunk: roughly the memory of a training step at that batch size (for the
256x256 ADM about 3-4 GiB per image on top of the weights; the 28x28 MNIST and 32x32 faces
priors need a few MiB). ``batch_size`` bounds it.

Counters: ``nfe`` = ``vjp`` = ``num_steps`` per image (one network call and one VJP per step).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from inpaintbench.methods.diffusion.conditioning import Conditioning
from inpaintbench.methods.diffusion.measurement import InpaintingOperator
from inpaintbench.methods.diffusion.solvers.measured import (INITS, MeasurementSolver, check_choice, check_flag,
                                                              check_number)

__all__ = ["DPS", "DPSGuidance", "residual_norm"]


def residual_norm(y: torch.Tensor, operator: InpaintingOperator, x0: torch.Tensor) -> torch.Tensor:
    """``||y - A x0||_2`` per image: float ``[B]`` (``y``, ``x0`` ``[B, C, H, W]`` model space)."""
    return (y - operator.forward(x0)).flatten(1).norm(dim=1)


@dataclass(eq=False)
class DPSGuidance(Conditioning):
    """DPS's correction of each reverse step (module docstring).

    Attributes:
        y: the measurement ``A x`` in model space ``[B, C, H, W]`` (0 in the holes).
        operator: ``A`` (:class:`~inpaintbench.methods.diffusion.measurement.InpaintingOperator`).
        zeta: the step size on ``grad ||y - A x0_hat||`` (>= 0).
        vjps: VJPs taken so far (one per reverse step).
    """

    y: torch.Tensor
    operator: InpaintingOperator
    zeta: float
    vjps: int = 0

    needs_grad: ClassVar[bool] = True

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.y.shape

    def after_step(self, x_t, pred, proposal, step):
        """``(x'_{t-1} - zeta * grad_{x_t} ||y - A x0_hat(x_t)||, None)``, per image."""
        norm = residual_norm(self.y, self.operator, pred.x0_hat)
        (grad,) = torch.autograd.grad(norm.sum(), x_t)  # per image: the images' graphs are disjoint
        self.vjps += 1
        return (proposal - self.zeta * grad).detach(), None


class DPS(MeasurementSolver):
    """DPS (``dps``) on the suite's diffusion priors (the MNIST prior, ``weights="ddpm-celeba32"``,
    ADM checkpoints with ``model=``/``adm=``).

    Args:
        num_steps: respaced reverse steps (NFE per image; the paper uses 1000).
        zeta: step size on ``grad ||y - A x0_hat||`` in model space, > 0 (the official code's
            ``scale``; 0.5 in its inpainting config at 1000 steps). Fewer steps need a larger
            one, about ``20 / sqrt(num_steps)``: default 2, the best of 1, 2, 4 at 100 steps on
            16 MNIST digits and 8 CelebA-32 faces (medium strokes, hole MSE); 4 was best at 25.
        eta: DDIM eta of the proposal, in ``[0, 1]``; 1 (the paper) is DDPM's ancestral step.
        init: ``"noise"`` (the paper) or ``"pinv"`` (``A^+ y`` noised to the first level, as
            RED-diff's re-implementation).
        clip_denoised: clip ``x0_hat`` to ``[-1, 1]`` (DPS's code; RED-diff's does not).
        batch_size: images per chain (bounds the VJP's memory); None: the whole batch.
        weights, model, adm, prior: the prior (:class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`).

    Raises:
        InputError: an option out of range.
    """

    def __init__(self, *, num_steps: int = 100, zeta: float = 2.0, eta: float = 1.0, init: str = "noise",
                 clip_denoised: bool = True, batch_size: int | None = None,
                 weights: str | os.PathLike | None = None, model: str | os.PathLike | None = None,
                 adm: str | os.PathLike | None = None, prior: tuple[Any, Any] | None = None):
        zeta = check_number("zeta", zeta, low=0.0, low_open=True)
        eta = check_number("eta", eta, low=0.0, high=1.0)
        check_choice("init", init, INITS)
        check_flag("clip_denoised", clip_denoised)
        super().__init__(num_steps=num_steps, batch_size=batch_size, weights=weights, model=model, adm=adm,
                         prior=prior, zeta=zeta, eta=eta, init=init, clip_denoised=clip_denoised)
        self.zeta, self.eta, self.clip_denoised = zeta, eta, clip_denoised
        self.sdedit_start = init == "pinv"

    def make_strategy(self, reference, hole):
        """:class:`DPSGuidance` with ``y = A reference``."""
        operator = InpaintingOperator(hole)
        return DPSGuidance(operator.forward(reference), operator, self.zeta)
