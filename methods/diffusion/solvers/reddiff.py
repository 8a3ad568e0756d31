"""RED-diff (Mardani, Song, Kautz & Vahdat, "A Variational Perspective on Solving Inverse Problems
with Diffusion Models", ICLR 2024), as a strategy of the diffusion core's loop.

RED-diff does not sample a chain: it fits the mean ``mu`` of a variational distribution
``q(x_0 | y) = N(mu, sigma_x0^2 I)`` by Adam, one update per diffusion level walked from noisy to
clean (paper, Alg. 1; the authors' ``algos/reddiff.py``)::

    mu_0    = A^+ y
    x0      = mu + sigma_x0 n0                       # n0 drawn only when sigma_x0 > 0
    x_t     = sqrt(a_t) x0 + sqrt(1 - a_t) z          # z: the step's draw
    eps_hat = denoiser(x_t, t)                        # no gradient through the network
    loss    = w_t mean((eps_hat - z).detach() * x0) + v mean((y - A x0)^2) / 2
    mu      <- Adam(mu, grad_mu loss)                 # lr, betas (0.9, 0.99)

with ``w_t = grad_term_weight * f(sigma_t / sqrt(a_t))``, the inverse SNR shaped by
``denoise_term_weight`` (``f``: linear, sqrt, square, log(1 + .), trunc_linear = min(., 1),
power2over3, const) and ``v = obs_weight``. The result is the last ``x0`` (``mu`` before the
last update, as the authors' code returns).

How it sits on the one loop: the strategy holds ``mu`` and Adam's moments;
``before_model`` builds ``x_t`` from ``mu`` and the step's draw ``z`` (the loop's own state
is not used: the loop's start draw is spent but ignored); ``after_step`` takes the Adam step
and returns ``x0``, which becomes the loop's state (the last one is the output). The loop's
proposal is computed and discarded. No new hook was needed.

**Per-sample means.** The authors' ``mean`` runs over the whole batch, which scales the
gradient by ``1 / B``; Adam is invariant to that scale except through its ``eps = 1e-8``,
so a batch of ``B`` and ``B`` single calls differ slightly. Here the means are per image
(summed over the batch), so every image's update is that of the image alone; with one image
per batch the two coincide (``tests/reference/test_reddiff.py`` checks both).

**Measurement noise.** The paper's observation weight ``1 / (2 sigma_v^2)`` is the code's
``obs_weight`` relative to ``grad_term_weight``; there is no separate ``sigma_y`` option.
**Learned variance**: not used (only ``eps`` enters the loss). No VJP: ``vjp = 0``, ``nfe =
num_steps`` per image.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from inpaintbench.methods.diffusion.conditioning import Conditioning
from inpaintbench.methods.diffusion.measurement import InpaintingOperator
from inpaintbench.methods.diffusion.solvers.measured import MeasurementSolver, check_choice, check_number
from inpaintbench.methods.diffusion.steps import q_sample

__all__ = ["DENOISE_TERM_WEIGHTS", "REDDiff", "REDDiffStrategy", "denoiser_weight"]

#: The shapes of the inverse SNR ``s = sqrt(1 - a_t) / sqrt(a_t)`` (the authors' ``denoise_term_weight``).
DENOISE_TERM_WEIGHTS = {
    "linear": lambda s: s,
    "sqrt": lambda s: s.sqrt(),
    "square": lambda s: s.square(),
    "log": lambda s: (s + 1.0).log(),
    "trunc_linear": lambda s: s.clamp(max=1.0),
    "power2over3": lambda s: s.pow(2 / 3),
    "const": lambda s: s.pow(0.0),
}


def denoiser_weight(alpha_bar: torch.Tensor, shape: str) -> torch.Tensor:
    """``f(sqrt(1 - a_t) / sqrt(a_t))`` for ``shape`` in :data:`DENOISE_TERM_WEIGHTS` (0-dim)."""
    return DENOISE_TERM_WEIGHTS[shape]((1 - alpha_bar).sqrt() / alpha_bar.sqrt())


@dataclass(eq=False)
class REDDiffStrategy(Conditioning):
    """RED-diff's optimisation of ``mu`` (module docstring) on the loop's hooks.

    Attributes:
        y: the measurement ``A x`` in model space ``[B, C, H, W]`` (0 in the holes; ``mu_0``).
        operator: ``A``.
        lr: Adam's learning rate (> 0).
        grad_term_weight: ``lambda`` of ``w_t`` (>= 0).
        denoise_term_weight: a key of :data:`DENOISE_TERM_WEIGHTS`.
        obs_weight: ``v`` (>= 0).
        sigma_x0: std of ``q`` around ``mu`` (>= 0).
    """

    y: torch.Tensor
    operator: InpaintingOperator
    lr: float
    grad_term_weight: float
    denoise_term_weight: str = "linear"
    obs_weight: float = 1.0
    sigma_x0: float = 0.0
    vjps: int = 0
    mu: torch.Tensor = field(init=False)
    x0: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.mu = self.y.detach().clone().requires_grad_(True)
        self.x0 = self.mu.detach()
        self.optimizer = torch.optim.Adam([self.mu], lr=self.lr, betas=(0.9, 0.99), weight_decay=0.0)

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.y.shape

    def before_model(self, x_t, step):
        """``x_t = q_sample(mu + sigma_x0 n0, a_t, z)`` (``n0`` drawn after ``z`` when ``sigma_x0 > 0``)."""
        x0 = self.mu.detach().clone()  # Adam updates mu in place: keep this step's x0 apart
        if self.sigma_x0 > 0:
            x0 = x0 + self.sigma_x0 * step.rng.randn_like(x0)
        self.x0 = x0
        return q_sample(x0, step.alpha_bar, step.noise)

    def loss(self, eps: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
        """The summed per-image loss of ``x0 = mu + sigma_x0 n0`` (0-dim, on ``mu``'s graph)."""
        x0 = self.mu + (self.x0 - self.mu.detach())  # mu + sigma_x0 n0, differentiable in mu
        w_t = self.grad_term_weight * denoiser_weight(alpha_bar, self.denoise_term_weight)
        noise_term = ((eps - noise).detach() * x0).flatten(1).mean(dim=1)
        obs_term = (self.y - self.operator.forward(x0)).square().flatten(1).mean(dim=1) / 2
        return (w_t * noise_term + self.obs_weight * obs_term).sum()

    def after_step(self, x_t, pred, proposal, step):
        """One Adam step on ``mu``; returns ``(x0 of this step, None)``."""
        with torch.enable_grad():
            self.optimizer.zero_grad()
            self.loss(pred.eps, step.noise, step.alpha_bar).backward()
            self.optimizer.step()
        return self.x0, None


class REDDiff(MeasurementSolver):
    """RED-diff (``red-diff``) on the suite's diffusion priors (the MNIST prior,
    ``weights="ddpm-celeba32"``, ADM checkpoints with ``model=``/``adm=``).

    Args:
        num_steps: respaced levels walked (= Adam steps = NFE per image; the paper uses 1000).
        lr: Adam's learning rate, > 0 (the authors' config: 0.1; model-space units per step);
            default 0.25: on 8 CelebA-32 faces at 100 steps hole MSE 0.0133 vs 0.0194 with 0.1
            (MNIST: 0.047 vs 0.050; 0.05 gave 0.046 there).
        grad_term_weight: ``lambda``, >= 0 (the authors' config: 0.25).
        denoise_term_weight: the shape of ``w_t`` (:data:`DENOISE_TERM_WEIGHTS`; default linear).
        obs_weight: ``v``, the weight of the observation term, >= 0.
        sigma_x0: std of ``q(x_0 | y)`` around ``mu``, >= 0 (the authors' config: 0).
        batch_size: images per chain; None: the whole batch.
        weights, model, adm, prior: the prior (:class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`).

    Raises:
        InputError: an option out of range.
    """

    clip_denoised = False

    def __init__(self, *, num_steps: int = 100, lr: float = 0.25, grad_term_weight: float = 0.25,
                 denoise_term_weight: str = "linear", obs_weight: float = 1.0, sigma_x0: float = 0.0,
                 batch_size: int | None = None, weights: str | os.PathLike | None = None,
                 model: str | os.PathLike | None = None, adm: str | os.PathLike | None = None,
                 prior: tuple[Any, Any] | None = None):
        lr = check_number("lr", lr, low=0.0, low_open=True)
        grad_term_weight = check_number("grad_term_weight", grad_term_weight, low=0.0)
        check_choice("denoise_term_weight", denoise_term_weight, tuple(DENOISE_TERM_WEIGHTS))
        obs_weight = check_number("obs_weight", obs_weight, low=0.0)
        sigma_x0 = check_number("sigma_x0", sigma_x0, low=0.0)
        super().__init__(num_steps=num_steps, batch_size=batch_size, weights=weights, model=model, adm=adm,
                         prior=prior, lr=lr, grad_term_weight=grad_term_weight,
                         denoise_term_weight=denoise_term_weight, obs_weight=obs_weight, sigma_x0=sigma_x0)
        self.options = dict(lr=lr, grad_term_weight=grad_term_weight, denoise_term_weight=denoise_term_weight,
                            obs_weight=obs_weight, sigma_x0=sigma_x0)

    def make_strategy(self, reference, hole):
        """:class:`REDDiffStrategy` with ``y = A reference`` (``mu_0 = A^+ y``)."""
        operator = InpaintingOperator(hole)
        return REDDiffStrategy(operator.forward(reference), operator, **self.options)
