"""DDRM (Kawar, Elad, Ermon, Song, "Denoising Diffusion Restoration Models", NeurIPS 2022) for
inpainting, on the one loop.

DDRM works in the spectral space of ``H = U Sigma V^T`` with the variance-exploding state
``x_mod = x_t / sqrt(a_t)`` (noise level ``sigma_t = sqrt(1 - a_t) / sqrt(a_t)``). **For
inpainting the SVD of the degradation is the mask itself**: ``U = I``, ``V`` a permutation
(kept pixels first, then the missing ones), singular values 1 on known pixels and 0 in the
holes (:class:`~inpaintbench.methods.diffusion.measurement.InpaintingOperator`; the released
``functions/svd_replacement.py`` ``Inpainting``). The spectral space is pixel space, so every
update below is per pixel, with ``x0 = x0_t`` (not clipped), ``eps`` the network's,
``s = sigma_{t-1}`` and ``z`` the step's draw (paper Eq. 7-8; ``efficient_generalized_steps``):

* holes (singular value 0): ``x0 + s sqrt(1 - eta^2) eps + s eta z``;
* known, noisier than ``y`` (``s > sigma_y``): ``eta_b y + (1 - eta_b) x0 + sqrt(s^2 - sigma_y^2 eta_b^2) z``;
* known, less noisy (``s < sigma_y``): ``x0 + s sqrt(1 - eta^2) (y - x0) / sigma_y + s eta z``;
* (``s = sigma_y`` exactly, e.g. the last step when ``sigma_y = 0``: the holes' rule)

and ``x_{t-1} = sqrt(a_{t-1}) x_mod``. The released code's three draws per step cover disjoint
pixel sets, so one draw ``z`` per step is the same distribution (the oracle replays them so).

The start ``x_T`` (paper Eq. 7 at ``t = T``): ``x_mod = y + sqrt(sigma_T^2 - sigma_y^2) n`` on
known pixels with ``sigma_T > sigma_y``, ``sigma_T n`` elsewhere, ``n`` the loop's start draw;

* ``chain="core"``: ``x_T = sqrt(a_T) x_mod`` (the VE-to-VP map every other step uses);
* ``chain="official"``: ``x_T = x_mod / sigma_T`` (the released ``init_y / largest_sigmas``),
  which differs by the factor ``1 / sqrt(1 - a_T)`` (``1 + 2e-5`` for DDPM's linear
  1000-step schedule).

``eta`` is the released ``--eta`` (``etaA = etaC``), ``eta_b`` ``--etaB``; ``sigma_y`` the
released ``sigma_0`` (model-space units, ``2 * args.sigma_0``). Timesteps: ``i * (T // t_T)``
(the released ``range(0, T, skip)``, equal when ``t_T`` divides ``T``; otherwise that range
holds one step more) on every prior. Learned variance (ADM ``learn_sigma``): dropped, as the
released ``et[:, :3]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from inpaintbench.methods.diffusion.conditioning import Conditioning, Step
from inpaintbench.methods.diffusion.measurement import InpaintingOperator, check_sigma_y
from inpaintbench.methods.diffusion.schedules import plain_schedule
from inpaintbench.methods.diffusion.solvers.x0_base import X0Solver, check_unit_interval
from inpaintbench.methods.diffusion.steps import Prediction

__all__ = ["DDRM", "SpectralUpdate"]


def ve_sigma(alpha_bar: torch.Tensor) -> torch.Tensor:
    """``sqrt(1 - a) / sqrt(a)``: the variance-exploding noise level of ``alpha-bar`` ``a``."""
    return (1 - alpha_bar).sqrt() / alpha_bar.sqrt()


@dataclass(eq=False)
class SpectralUpdate(Conditioning):
    """DDRM's strategy for inpainting (spectral space = pixel space).

    Attributes:
        reference: ``[B, C, H, W]`` model space; only its known pixels are read.
        hole: bool ``[B, 1, H, W]``, True = hole.
        eta: ``eta`` (= released ``etaA = etaC``), in ``[0, 1]``.
        eta_b: ``eta_b``, in ``[0, 1]``.
        sigma_y: noise of ``y``, model-space units.
        official: the released start ``x_mod / sigma_T`` instead of ``sqrt(a_T) x_mod``.
    """

    reference: torch.Tensor
    hole: torch.Tensor
    eta: float = 0.85
    eta_b: float = 1.0
    sigma_y: float = 0.0
    official: bool = False

    def __post_init__(self) -> None:
        operator = InpaintingOperator(self.hole)
        self.y = operator.forward(self.reference)
        self.known = operator.known.to(self.reference.dtype).expand_as(self.reference).bool()

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.reference.shape

    def before_model(self, x_t: torch.Tensor, step: Step) -> torch.Tensor:
        """On the chain's first call: ``x_T`` of ``p(x_T | y)`` from the start draw ``x_t``."""
        if step.calls != 0:
            return x_t
        sigma_T = ve_sigma(step.alpha_bar)
        measured = self.known & bool(sigma_T > self.sigma_y)
        x_mod = torch.where(measured, self.y + (sigma_T**2 - self.sigma_y**2).clamp_min(0).sqrt() * x_t, sigma_T * x_t)
        return x_mod / sigma_T if self.official else step.alpha_bar.sqrt() * x_mod

    def after_step(self, x_t, pred: Prediction, proposal, step: Step):
        """``(x_{t-1}, x_mod_{t-1})`` by the three per-pixel rules of the module docstring."""
        x0, z = pred.x0_hat, step.noise
        s = ve_sigma(step.alpha_bar_prev)
        std = s * self.eta
        tilde = (s**2 - std**2).sqrt()
        x_mod = x0 + tilde * pred.eps + std * z
        if bool(s > self.sigma_y):
            before = self.eta_b * self.y + (1 - self.eta_b) * x0 \
                + (s**2 - self.sigma_y**2 * self.eta_b**2).sqrt() * z
            x_mod = torch.where(self.known, before, x_mod)
        elif bool(s < self.sigma_y):
            after = x0 + tilde * ((self.y - x0) / self.sigma_y) + std * z
            x_mod = torch.where(self.known, after, x_mod)
        return step.alpha_bar_prev.sqrt() * x_mod, x_mod


class DDRM(X0Solver):
    """DDRM (``ddrm``) for inpainting.

    Args:
        num_steps: reverse steps (NFE per image; the released ``--timesteps``, default 20 there).
        eta: ``eta`` in ``[0, 1]`` (released default 0.85).
        eta_b: ``eta_b`` in ``[0, 1]`` (released default 1).
        sigma_y: noise of the measurement, model-space units (>= 0).
        chain: ``"core"`` or ``"official"`` (the released start, see the module docstring).
        weights, model, adm, prior, batch_size: those of
            :class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`.

    Raises:
        InputError: an option out of range.
    """

    input_label = "this DDRM prior"

    def __init__(self, *, num_steps: int = 100, eta: float = 0.85, eta_b: float = 1.0, sigma_y: float = 0.0,
                 **params: Any):
        check_unit_interval("eta", eta)
        check_unit_interval("eta_b", eta_b)
        sigma_y = check_sigma_y(sigma_y)
        super().__init__(num_steps=num_steps, eta=eta, eta_b=eta_b, sigma_y=sigma_y, **params)
        self.schedule = plain_schedule(num_steps)

    def conditioning(self, reference: torch.Tensor, hole: torch.Tensor | None, **options: Any) -> Conditioning:
        """:class:`SpectralUpdate` with this method's options."""
        return SpectralUpdate(reference, hole, eta=self.config["eta"], eta_b=self.config["eta_b"],
                              sigma_y=self.config["sigma_y"], official=self.chain == "official")
