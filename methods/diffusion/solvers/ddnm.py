"""DDNM and DDNM+ (Wang, Yu, Zhang, "Zero-Shot Image Restoration Using Denoising Diffusion
Null-Space Model", ICLR 2023) for inpainting, on the one loop.

Every reverse step (paper Eq. 12-13 and Alg. 1; ``functions/svd_ddnm.py`` of the released code)::

    x0_t     = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)             # not clipped
    x0_hat   = x0_t - A^+ (A x0_t - y)  =  A^+ y + (I - A^+ A) x0_t # range-null-space projection
    x_{t-1}  = sqrt(a_{t-1}) x0_hat + sqrt(1 - a_{t-1}) (eta z + sqrt(1 - eta^2) eps)

For inpainting ``A^+ = A`` (:class:`~inpaintbench.methods.diffusion.measurement.InpaintingOperator`):
``x0_hat`` is ``y`` on known pixels and the network's ``x0_t`` in the holes.

DDNM+ (Sec. 3.3, App. I; ``ddnm_plus_diffusion``) for a noisy ``y`` (``sigma_y > 0``, model-space
units: twice the standard deviation in ``[0, 1]`` units, as the released ``2 * args.sigma_y``) scales
the correction and the noise per singular value; for inpainting the singular values are 1 on
known pixels and 0 in the holes, so per known pixel, with ``a = sqrt(a_{t-1})``,
``sigma_t = sqrt(1 - a_{t-1})``::

    sigma_t <  a sigma_y:  x0_hat = x0_t - lambda (x0_t - y),  lambda = sqrt(1 - eta^2) sigma_t / (a sigma_y)
                           x_{t-1} = a x0_hat + sigma_t eta z
    sigma_t >  a sigma_y:  x0_hat = y,  x_{t-1} = a y + sqrt(sigma_t^2 - a^2 sigma_y^2) z
    (equal: the noise-free step)

and the holes take DDNM's step. (The released ``--simplified`` loop, ``Diffusion.simplified_ddnm_plus``,
uses Eq. 19's ``lambda = sigma_t / (a sigma_y)`` and multiplies the DDIM noise by
``gamma_t = sqrt((1 - a_{t-1}^2) - ...)``, a different step even at ``sigma_y = 0``; this module follows
the SVD loop the paper's tables come from, ``tests/reference/test_ddnm.py`` checks it.)

Time-travel (Sec. 3.3): the schedule of RePaint's resampling with travel length ``l`` and
repeats ``r``; it equals the released ``get_schedule_jump(T_sampling, travel_length,
travel_repeat)`` (:func:`~inpaintbench.methods.diffusion.schedules.repaint_schedule`, tested).
What a step back does differs:

* ``chain="core"`` (the paper, and the released ``hq_demo`` loop built on RePaint): the forward
  process ``q(x_{t+1} | x_t)`` from the current state;
* ``chain="official"`` (``svd_ddnm.py``): the last *unprojected* ``x0_t`` noised afresh to the
  new level, ``sqrt(a) x0_t + sqrt(1 - a) n``.

Both draw one tensor per step back. Timesteps: respaced index ``i`` is training timestep
``i * (T // t_T)`` (``skip = T // T_sampling``) on every prior, ADM checkpoints included.
Learned variance (ADM ``learn_sigma``): dropped, as the released ``et[:, :3]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.methods.diffusion.conditioning import Conditioning, Step
from inpaintbench.methods.diffusion.measurement import InpaintingOperator, check_sigma_y
from inpaintbench.methods.diffusion.schedules import plain_schedule, repaint_schedule
from inpaintbench.methods.diffusion.solvers.x0_base import X0Solver, check_unit_interval
from inpaintbench.methods.diffusion.steps import Prediction, forward_jump, q_sample, renoise_step

__all__ = ["DDNM", "DDNMPlus", "NullSpaceProjection"]


@dataclass(eq=False)
class NullSpaceProjection(Conditioning):
    """DDNM's strategy (DDNM+ when ``sigma_y > 0``).

    Attributes:
        reference: ``[B, C, H, W]`` model space; only its known pixels are read (``y = A reference``).
        hole: bool ``[B, 1, H, W]``, True = hole.
        eta: in ``[0, 1]``, the fresh-noise share of each step.
        sigma_y: the noise of ``y`` in model-space units (0: DDNM).
        official: time-travel re-noises the last ``x0_t`` (released ``svd_ddnm.py``) instead of
            the forward process.
    """

    reference: torch.Tensor
    hole: torch.Tensor
    eta: float = 0.85
    sigma_y: float = 0.0
    official: bool = False

    def __post_init__(self) -> None:
        self.operator = InpaintingOperator(self.hole)
        self.y = self.operator.forward(self.reference)
        self.known = self.operator.known.to(self.reference.dtype).expand_as(self.reference).bool()
        self.last_x0: torch.Tensor | None = None

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.reference.shape

    def _levels(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, sigma_t) = (sqrt(a_{t-1}), sqrt(1 - a_{t-1}))``, DDNM+'s names."""
        return step.alpha_bar_prev.sqrt(), (1 - step.alpha_bar_prev).sqrt()

    def update_x0(self, x_t: torch.Tensor, pred: Prediction, step: Step) -> Prediction:
        """``x0_hat = x0_t - lambda A^+ (A x0_t - y)`` (``lambda = 1`` unless DDNM+ scales it)."""
        self.last_x0 = pred.x0_hat
        correction = self.operator.pinv(self.operator.forward(pred.x0_hat) - self.y)
        if self.sigma_y > 0:
            a, sigma_t = self._levels(step)
            if bool(sigma_t < a * self.sigma_y):  # App. I: shrink the correction on singular value 1
                scale = sigma_t * (1 - self.eta**2) ** 0.5 / a / self.sigma_y
                correction = torch.where(self.known, scale * correction, correction)
        return pred._replace(x0_hat=pred.x0_hat - correction)

    def after_step(self, x_t, pred, proposal, step):
        """``(x_{t-1}, x0_hat)``: DDNM's step (DDNM+'s per-pixel noise when ``sigma_y > 0``)."""
        x = renoise_step(pred.x0_hat, pred.eps, step.alpha_bar_prev, step.noise, self.eta)
        if self.sigma_y > 0:
            a, sigma_t = self._levels(step)
            limit = a * self.sigma_y
            if bool(sigma_t < limit):  # known pixels: no eps term, fresh noise sigma_t eta
                known = a * pred.x0_hat + sigma_t * self.eta * step.noise
            elif bool(sigma_t > limit):  # known pixels: y's own noise completes the level
                known = a * pred.x0_hat + (sigma_t**2 - limit**2).sqrt() * step.noise
            else:
                known = x
            x = torch.where(self.known, known, x)
        return x, pred.x0_hat

    def jump(self, x, alpha_bar_from, alpha_bar_to, noise):
        """Time-travel: the forward process (``official=False``) or the last ``x0_t`` re-noised."""
        if self.official and self.last_x0 is not None:
            return q_sample(self.last_x0, alpha_bar_to, noise)
        return forward_jump(x, alpha_bar_from, alpha_bar_to, noise)


class DDNM(X0Solver):
    """DDNM (``ddnm``): null-space projection of ``x0_hat`` and DDIM steps with ``eta``.

    Args:
        num_steps: ``T_sampling``, reverse steps (NFE per image).
        eta: in ``[0, 1]`` (released default 0.85).
        weights, model, adm, chain, prior: those of
            :class:`~inpaintbench.methods.diffusion.base.DiffusionMethod` (``chain`` only
            matters with time-travel, :class:`DDNMPlus`).
        batch_size: images per chain (None: the whole batch).

    Raises:
        InputError: an option out of range.
    """

    input_label = "this DDNM prior"

    def __init__(self, *, num_steps: int = 100, eta: float = 0.85, **params: Any):
        check_unit_interval("eta", eta)
        super().__init__(num_steps=num_steps, eta=eta, **params)
        self.schedule = plain_schedule(num_steps)

    def conditioning(self, reference: torch.Tensor, hole: torch.Tensor | None, **options: Any) -> Conditioning:
        """:class:`NullSpaceProjection` with this method's options."""
        return NullSpaceProjection(reference, hole, eta=self.config["eta"], sigma_y=self.config.get("sigma_y", 0.0),
                                   official=self.chain == "official")


class DDNMPlus(DDNM):
    """DDNM+ (``ddnm-plus``): DDNM with the noise-aware scaling for ``sigma_y > 0`` and time-travel.

    Args:
        num_steps: ``T_sampling``.
        travel_length: ``l``, indices travelled back per time-travel (1 and ``travel_repeat=1``:
            no time-travel).
        travel_repeat: ``r``, visits of each travel point.
        sigma_y: noise of the measurement, model-space units (>= 0; 0: DDNM's projection).
        chain: ``"core"`` (time-travel by the forward process) or ``"official"`` (the last
            ``x0_t`` re-noised, ``svd_ddnm.py``).
        **params: those of :class:`DDNM`.

    NFE per image: ``num_steps + (r - 1) * l * len(range(0, num_steps - l, l))``
    (:func:`~inpaintbench.methods.diffusion.schedules.schedule_nfe`).
    """

    input_label = "this DDNM+ prior"

    def __init__(self, *, num_steps: int = 50, travel_length: int = 5, travel_repeat: int = 2,
                 sigma_y: float = 0.0, **params: Any):
        for name, value in (("travel_length", travel_length), ("travel_repeat", travel_repeat)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be an int >= 1, got {value!r}")
        sigma_y = check_sigma_y(sigma_y)
        super().__init__(num_steps=num_steps, travel_length=travel_length, travel_repeat=travel_repeat,
                         sigma_y=sigma_y, **params)
        self.schedule = repaint_schedule(num_steps, travel_length, travel_repeat)
