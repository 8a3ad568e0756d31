"""DiffPIR (Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool, "Denoising Diffusion Models for
Plug-and-Play Image Restoration", CVPR 2023 workshops) for inpainting, on the one loop.

Half-quadratic splitting with the diffusion model as the prior's proximal operator; every
iteration (paper Alg. 1; the released ``main_ddpir_inpainting.py``)::

    x0      = clip((x_t - sqrt(1 - a_t) eps) / sqrt(a_t))                  # the denoiser, p_sample's pred_xstart
    x0_hat  = (m * y + rho_t x0) / (m + rho_t),  rho_t = lambda sigma_n^2 / sigma_bar_t^2   # data proximal step
    eps_hat = (x_t - sqrt(a_t) x0_hat) / sqrt(1 - a_t)
    x_{t-1} = sqrt(a_{t-1}) x0_hat + sqrt(1 - zeta) (sqrt(1 - a_{t-1} - s^2) eps_hat + s n1)
              + sqrt(zeta) sqrt(1 - a_{t-1}) n2

with ``m`` the known-pixel mask, ``sigma_bar_t = sqrt(1 - a_t) / sqrt(a_t)``, and ``sigma_n`` the
script's ``sigma = max(0.001, noise_level_img)`` in ``[0, 1]`` units (``sigma_y / 2`` for this
suite's model-space ``sigma_y``). The script's ``eta`` adds DDIM noise inside the ``1 - zeta``
part: ``s = eta sqrt(1 - a_{t-1}) / sqrt(1 - a_t) sqrt(beta)``.

Timesteps (:func:`diffpir_timesteps`): the script's ``skip_type``: ``"quad"``
(``seq = int(sqrt(linspace(0, T^2, n)))``, the last minus one) or ``"uniform"``
(``i * (T // n)``, plus ``T - 1`` when the stride exceeds 1: ``n + 1`` steps); iteration ``i``
runs at training timestep ``T - 1 - seq[i]`` (its ``find_nearest`` of ``sigmas[seq[i]]``).

``chain="core"`` follows the paper's Alg. 1; ``chain="official"`` the released script:

* start: pure noise (paper) vs ``y`` (holes -1, the script's ``img_L * 2 - 1``) noised from its
  own level ``t_y`` (the timestep whose ``sigma_bar`` is nearest ``sigma_y``) to ``T - 1``;
* the last iteration: the data step and ``x_0 = x0_hat`` (paper) vs a wasted network call whose
  output is dropped, the result being the state at timestep 0 (script);
* ``beta`` in ``s``: the respaced ``1 - a_t / a_{t-1}`` (DDIM's ``eta``) vs the training
  ``beta_t`` at the current timestep (script; equal without skipping; the default ``eta = 0``
  makes both ``s = 0``);
* draws per iteration: the step's ``z`` as ``n2`` plus ``n1`` only when ``eta > 0`` and
  ``zeta < 1`` (core) vs the script's three (``p_sample``'s unused draw, ``n1``, ``n2``; one on
  the last iteration).

The model call is guided-diffusion's ``p_sample`` with ``clip_denoised=True``: ``x0`` is clipped;
learned variance (ADM ``learn_sigma``) is not read (only ``pred_xstart`` is used). ``lambda_``,
``zeta``, ``eta`` default to the inpainting script's 1, 1, 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from inpaintbench.core.errors import InputError
from inpaintbench.methods.diffusion.conditioning import Conditioning, Step
from inpaintbench.methods.diffusion.measurement import InpaintingOperator, check_sigma_y
from inpaintbench.methods.diffusion.schedules import plain_schedule
from inpaintbench.methods.diffusion.solvers.x0_base import X0Solver, check_unit_interval
from inpaintbench.methods.diffusion.steps import Prediction, eps_from_x0

__all__ = ["DiffPIR", "HalfQuadraticSplitting", "SKIP_TYPES", "diffpir_timesteps"]

#: The script's ``skip_type`` values.
SKIP_TYPES = ("quad", "uniform")

#: The script's floor of ``sigma_n`` (``sigma = max(0.001, noise_level_img)``, ``[0, 1]`` units).
SIGMA_N_FLOOR = 0.001


def diffpir_timesteps(num_train_timesteps: int, num_steps: int, skip_type: str) -> list[int]:
    """The training timesteps the script visits, ascending (``T - 1 - seq[i]`` reversed).

    Args:
        num_train_timesteps: ``T``.
        num_steps: the script's ``iter_num`` (>= 2 for ``"quad"``).
        skip_type: ``"quad"`` or ``"uniform"``.

    Raises:
        InputError: an unknown ``skip_type``, or a ``num_steps`` whose sequence repeats a
            timestep (``"quad"`` with more than about ``T / 2`` steps).
    """
    T = num_train_timesteps
    if skip_type == "uniform":
        skip = T // num_steps
        seq = [i * skip for i in range(num_steps)] + ([T - 1] if skip > 1 else [])
    elif skip_type == "quad":
        if num_steps < 2:
            raise InputError(f"skip_type='quad' needs num_steps >= 2, got {num_steps}")
        seq = [int(s) for s in np.sqrt(np.linspace(0, T**2, num_steps))]
        seq[-1] -= 1
    else:
        raise InputError(f"skip_type must be one of {', '.join(map(repr, SKIP_TYPES))}, got {skip_type!r}")
    if any(b <= a for a, b in zip(seq, seq[1:])):
        raise InputError(f"num_steps={num_steps} with skip_type={skip_type!r} repeats a timestep of the "
                         f"{T}-step schedule; take fewer steps")
    return sorted(T - 1 - s for s in seq)


@dataclass(eq=False)
class HalfQuadraticSplitting(Conditioning):
    """DiffPIR's strategy.

    Attributes:
        reference: ``[B, C, H, W]`` model space; only its known pixels are read.
        hole: bool ``[B, 1, H, W]``, True = hole.
        lambda_: ``lambda`` (> 0).
        zeta, eta: in ``[0, 1]``.
        sigma_y: noise of ``y``, model-space units (``sigma_n = max(sigma_y / 2, 0.001)``).
        official: the released script's chain (see the module docstring).
        alphas_cumprod: the prior's training ``alpha-bar`` ``[T]`` (the official start's ``t_y``).
        betas: the training ``beta`` ``[T]`` (the official ``eta`` term).
    """

    reference: torch.Tensor
    hole: torch.Tensor
    lambda_: float = 1.0
    zeta: float = 1.0
    eta: float = 0.0
    sigma_y: float = 0.0
    official: bool = False
    alphas_cumprod: torch.Tensor | None = field(default=None, repr=False)
    betas: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        operator = InpaintingOperator(self.hole)
        self.mask = operator.known.to(self.reference.dtype)
        self.y = operator.forward(self.reference)
        self.sigma_n = max(self.sigma_y / 2, SIGMA_N_FLOOR)

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.reference.shape

    def _skipped(self, step: Step) -> bool:
        """The script's last iteration: the network is called, its output dropped."""
        return self.official and step.nxt < 0

    def before_model(self, x_t: torch.Tensor, step: Step) -> torch.Tensor:
        """Official chain, first call: ``y`` (holes -1) noised from ``t_y`` to the first level."""
        if not (self.official and step.calls == 0):
            return x_t
        table = self.alphas_cumprod.to(x_t.device)
        t_y = int(((1 - table).sqrt() / table.sqrt() - self.sigma_y).abs().argmin())
        a_y, a_T = table[t_y], step.alpha_bar
        y_black = self.y + (self.mask - 1)  # the script's img_L * 2 - 1: -1 in the holes
        scale = a_T.sqrt() / a_y.sqrt()
        return scale * y_black + ((1 - a_T) - scale**2 * (1 - a_y)).sqrt() * x_t

    def update_x0(self, x_t: torch.Tensor, pred: Prediction, step: Step) -> Prediction:
        """The data proximal step ``x0_hat = (m y + rho_t x0) / (m + rho_t)``."""
        if self._skipped(step):
            return pred
        a_t = step.alpha_bar
        rho = self.lambda_ * self.sigma_n**2 * a_t / (1 - a_t)
        return pred._replace(x0_hat=(self.mask * self.y + rho * pred.x0_hat) / (self.mask + rho))

    def after_step(self, x_t, pred: Prediction, proposal, step: Step):
        """``(x_{t-1}, x0_hat)`` by the re-noising with ``zeta`` and ``eta``."""
        if self._skipped(step):
            return x_t, None
        a_t, a_prev, x0 = step.alpha_bar, step.alpha_bar_prev, pred.x0_hat
        eps_hat = eps_from_x0(x_t, x0, a_t)
        beta = self.betas[step.timestep].to(a_t) if self.official else 1 - a_t / a_prev
        s = self.eta * (1 - a_prev).sqrt() / (1 - a_t).sqrt() * beta.sqrt()
        if self.official:  # the script draws both, whatever eta and zeta
            n1, n2 = step.rng.randn_like(x_t), step.rng.randn_like(x_t)
        else:
            n2 = step.noise
            n1 = step.rng.randn_like(x_t) if self.eta > 0 and self.zeta < 1 else torch.zeros_like(x_t)
        x = a_prev.sqrt() * x0 + (1 - self.zeta) ** 0.5 * ((1 - a_prev - s**2).clamp_min(0).sqrt() * eps_hat + s * n1) \
            + self.zeta**0.5 * (1 - a_prev).sqrt() * n2
        return x, x0


class DiffPIR(X0Solver):
    """DiffPIR (``diffpir``) for inpainting.

    Args:
        num_steps: the script's ``iter_num`` (NFE per image: ``num_steps``, one more with
            ``skip_type="uniform"`` when ``T // num_steps > 1``).
        lambda_: ``lambda`` of ``rho_t`` (> 0; the inpainting script's 1).
        zeta: in ``[0, 1]``, the fresh-noise share of the re-noising (script: 1).
        eta: in ``[0, 1]``, DDIM noise inside the ``1 - zeta`` part (script: 0).
        skip_type: ``"quad"`` (script default) or ``"uniform"``.
        sigma_y: noise of the measurement, model-space units (>= 0).
        chain: ``"core"`` (paper) or ``"official"`` (the script; module docstring).
        weights, model, adm, prior, batch_size: those of
            :class:`~inpaintbench.methods.diffusion.base.DiffusionMethod`.

    Raises:
        InputError: an option out of range.
    """

    input_label = "this DiffPIR prior"
    clip_denoised = True

    def __init__(self, *, num_steps: int = 100, lambda_: float = 1.0, zeta: float = 1.0, eta: float = 0.0,
                 skip_type: str = "quad", sigma_y: float = 0.0, **params: Any):
        if isinstance(lambda_, bool) or not isinstance(lambda_, (int, float)) or not 0 < lambda_ < float("inf"):
            raise InputError(f"lambda_ must be a finite number > 0, got {lambda_!r}")
        check_unit_interval("zeta", zeta)
        check_unit_interval("eta", eta)
        sigma_y = check_sigma_y(sigma_y)
        if skip_type not in SKIP_TYPES:
            raise InputError(f"skip_type must be one of {', '.join(map(repr, SKIP_TYPES))}, got {skip_type!r}")
        super().__init__(num_steps=num_steps, lambda_=float(lambda_), zeta=zeta, eta=eta, skip_type=skip_type,
                         sigma_y=sigma_y, **params)
        self.use_timesteps(diffpir_timesteps(self.respacing.schedule.num_train_timesteps, num_steps, skip_type))
        self.schedule = plain_schedule(self.respacing.num_steps)

    def conditioning(self, reference: torch.Tensor, hole: torch.Tensor | None, **options: Any) -> Conditioning:
        """:class:`HalfQuadraticSplitting` with this method's options."""
        c = self.config
        return HalfQuadraticSplitting(reference, hole, lambda_=c["lambda_"], zeta=c["zeta"], eta=c["eta"],
                                      sigma_y=c["sigma_y"], official=self.chain == "official",
                                      alphas_cumprod=self.respacing.table, betas=self.respacing.schedule.betas)
