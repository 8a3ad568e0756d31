"""PiGDM: pseudoinverse-guided diffusion (Song, Vahdat, Mardani & Kautz, "Pseudoinverse-Guided
Diffusion Models for Inverse Problems", ICLR 2023), as a strategy of the diffusion core's loop.

PiGDM approximates ``p(x_0 | x_t)`` by ``N(x0_hat, r_t^2 I)`` with ``r_t^2 = 1 - alpha-bar_t``
(the VP form of the paper's ``sigma_t^2 / (1 + sigma_t^2)``) and guides each DDIM step with the
vector-Jacobian product of the pseudo-inverse residual (paper, Eq. 7, 8 and Alg. 1)::

    g       = ((A^+ y - A^+ A x0_hat)^T  d x0_hat / d x_t)^T                 # sigma_y = 0
    g       = r_t^2 ((y - A x0_hat)^T (r_t^2 A A^T + sigma_y^2 I)^{-1} A  d x0_hat / d x_t)^T
    x0'     = x0_hat + w sqrt(a_t) g
    x_{t-1} = sqrt(a_{t-1}) x0' + c1 z + c2 eps                               # DDIM, eta

The second line is Eq. 8 times ``r_t^2``, so it reduces to the first at ``sigma_y = 0``; for
inpainting ``A A^T = I`` on the measured pixels and ``A^+ = A^T``, so the noisy residual is
the noiseless one scaled by ``r_t^2 / (r_t^2 + sigma_y^2)``.

The scaling ``w sqrt(a_t) g`` on ``x0_hat`` and the ``awd`` option follow the authors' code
(RED-diff's ``algos/pgdm.py``, whose step ``coeff * g`` is this update written on ``x_{t-1}``):

* ``awd=True`` (its default): ``eps`` stays the network's, only ``x0_hat`` moves
  (``coeff = sqrt(a_{t-1}) sqrt(a_t) w``);
* ``awd=False``: ``eps`` is re-derived from the guided ``x0'`` so the step stays on the line
  through ``x_t`` (``coeff = (sqrt(a_{t-1}) - c2 sqrt(a_t) / sqrt(1 - a_t)) sqrt(a_t) w``);
* ``known_x0=True``: the known pixels of ``x0_hat`` are replaced by ``y`` and the guidance is
  kept only in the holes, as the code does for its ``in2`` inpainting operator (off by
  default: the paper's algorithm).

``x0_hat`` is not clipped (as the authors' code) and the learned variance of ADM checkpoints is
not used: the step is DDIM's with ``eta`` (the code keeps the first ``C`` output channels, ``eps``).
``tests/reference/test_pigdm.py`` checks one step and whole chains against ``algos/pgdm.py``.

Memory: one VJP through the denoiser per step, as DPS (see :mod:`.dps`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from inpaintbench.methods.diffusion.conditioning import Conditioning
from inpaintbench.methods.diffusion.measurement import InpaintingOperator, check_sigma_y
from inpaintbench.methods.diffusion.solvers.measured import (INITS, MeasurementSolver, check_choice, check_flag,
                                                              check_number)
from inpaintbench.methods.diffusion.steps import Prediction, eps_from_x0

__all__ = ["PiGDM", "PiGDMGuidance"]


@dataclass(eq=False)
class PiGDMGuidance(Conditioning):
    """PiGDM's guidance of ``x0_hat`` (module docstring), in ``update_x0``.

    Attributes:
        y: the measurement ``A x`` in model space ``[B, C, H, W]`` (0 in the holes; ``= A^+ y``).
        operator: ``A``.
        weight: ``w``, the guidance weight (the code's ``grad_term_weight``), >= 0.
        sigma_y: measurement noise (model space), >= 0.
        awd: keep the network's ``eps`` (True) or re-derive it from the guided ``x0'``.
        known_x0: replace ``x0_hat``'s known pixels by ``y`` and guide only the holes.
        vjps: VJPs taken so far.
    """

    y: torch.Tensor
    operator: InpaintingOperator
    weight: float
    sigma_y: float = 0.0
    awd: bool = True
    known_x0: bool = False
    vjps: int = 0

    needs_grad: ClassVar[bool] = True

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.y.shape

    def guidance(self, x_t: torch.Tensor, x0_hat: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
        """``g``: the VJP of the (noise-weighted) pseudo-inverse residual, ``[B, C, H, W]``."""
        residual = self.operator.pinv(self.y - self.operator.forward(x0_hat)).detach()
        if self.sigma_y > 0:
            r2 = 1 - alpha_bar
            residual = residual * (r2 / (r2 + self.sigma_y ** 2))
        (grad,) = torch.autograd.grad((residual * x0_hat).sum(), x_t)  # per image: disjoint graphs
        self.vjps += 1
        return grad

    def update_x0(self, x_t, pred, step):
        """``x0' = x0_hat + w sqrt(a_t) g`` (``known_x0``: on ``x0_hat`` with ``y`` pasted, ``g`` in the
        holes only); ``eps`` kept (``awd``) or re-derived; no learned variance."""
        a_t = step.alpha_bar
        g = self.guidance(x_t, pred.x0_hat, a_t)
        x0_hat = pred.x0_hat.detach()
        if self.known_x0:
            hole = self.operator.hole
            x0_hat, g = torch.where(hole, x0_hat, self.y), g.masked_fill(~hole, 0.0)
        guided = x0_hat + (self.weight * a_t.sqrt()) * g
        eps = pred.eps.detach() if self.awd else eps_from_x0(x_t.detach(), guided, a_t)
        return Prediction(guided, eps, None)


class PiGDM(MeasurementSolver):
    """PiGDM (``pigdm``) on the suite's diffusion priors (the MNIST prior,
    ``weights="ddpm-celeba32"``, ADM checkpoints with ``model=``/``adm=``).

    Args:
        num_steps: respaced DDIM steps (NFE per image; the paper uses 100).
        grad_term_weight: ``w``, the guidance weight, >= 0 (the authors' config: 1); default 2,
            better than 0.5 and 1 at 100 and 25 steps on 16 MNIST digits and 8 CelebA-32 faces
            (medium strokes, hole MSE).
        eta: DDIM eta in ``[0, 1]``; default 1 (better than 0 on the same MNIST study).
        sigma_y: measurement noise std in model space (``[-1, 1]`` units), >= 0.
        awd: the authors' ``awd`` (see the module docstring).
        known_x0: the authors' ``in2`` variant (see the module docstring).
        init: ``"pinv"`` (the authors' code: ``A^+ y`` noised to the first level) or ``"noise"``.
        batch_size: images per chain (bounds the VJP's memory); None: the whole batch.
        weights, model, adm, prior: the prior (:class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`).

    Raises:
        InputError: an option out of range.
    """

    clip_denoised = False

    def __init__(self, *, num_steps: int = 100, grad_term_weight: float = 2.0, eta: float = 1.0,
                 sigma_y: float = 0.0, awd: bool = True, known_x0: bool = False, init: str = "pinv",
                 batch_size: int | None = None,
                 weights: str | os.PathLike | None = None, model: str | os.PathLike | None = None,
                 adm: str | os.PathLike | None = None, prior: tuple[Any, Any] | None = None):
        grad_term_weight = check_number("grad_term_weight", grad_term_weight, low=0.0)
        eta = check_number("eta", eta, low=0.0, high=1.0)
        sigma_y = check_sigma_y(sigma_y)
        check_flag("awd", awd)
        check_flag("known_x0", known_x0)
        check_choice("init", init, INITS)
        super().__init__(num_steps=num_steps, batch_size=batch_size, weights=weights, model=model, adm=adm,
                         prior=prior, grad_term_weight=grad_term_weight, eta=eta, sigma_y=sigma_y, awd=awd,
                         known_x0=known_x0, init=init)
        self.weight, self.eta, self.sigma_y, self.awd, self.known_x0 = grad_term_weight, eta, sigma_y, awd, known_x0
        self.sdedit_start = init == "pinv"

    def make_strategy(self, reference, hole):
        """:class:`PiGDMGuidance` with ``y = A reference``."""
        operator = InpaintingOperator(hole)
        return PiGDMGuidance(operator.forward(reference), operator, self.weight, self.sigma_y, self.awd,
                             self.known_x0)
