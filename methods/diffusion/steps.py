"""The three moves of every DDPM sampler, written once: forward noising (:func:`q_sample`),
the forward jump between two levels (:func:`forward_jump`) and the reverse step
(:func:`reverse_step`), the latter in two halves so a conditioning strategy can act between
them: :func:`predict_x0` (the denoiser's ``x0_hat``, a :class:`Prediction`) and
:func:`posterior_step` (``x_prev`` from a possibly corrected prediction).

Model space ``[-1, 1]``; ``alpha-bar`` values are 0-dim tensors (float32 for the core's
:class:`~inpaintbench.methods.diffusion.respacing.Respacing`, float64 for guided-diffusion's
:class:`~inpaintbench.methods.diffusion.respacing.SpacedRespacing`).

References: DDPM (Ho et al. 2020) Eq. 4, 7, 15; DDIM (Song et al. 2021) Eq. 9, 12, 16; IDDPM
(Nichol & Dhariwal 2021) Eq. 15; RePaint (Lugmayr et al. 2022) Alg. 1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from inpaintbench.methods.diffusion.denoiser import DenoiserOutput

__all__ = ["Prediction", "eps_from_x0", "forward_jump", "posterior_step", "predict_x0", "q_sample", "renoise_step",
           "reverse_step"]


def q_sample(x0: torch.Tensor, alpha_bar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Forward noising ``q(x_t | x_0) = N(sqrt(a) x_0, (1 - a) I)``, ``a = alpha-bar_t`` (DDPM Eq. 4).

    Args:
        x0: ``[B, C, H, W]`` model space.
        alpha_bar: 0-dim (or broadcastable) ``alpha-bar_t`` in ``(0, 1]``.
        noise: ``N(0, I)`` draws shaped like ``x0``.
    """
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def forward_jump(x_a: torch.Tensor, alpha_bar_a: torch.Tensor, alpha_bar_b: torch.Tensor,
                 noise: torch.Tensor) -> torch.Tensor:
    """Forward jump ``q(x_b | x_a)`` for ``b > a``: the forward process composed over the
    training steps between them, ``N(sqrt(a_b / a_a) x_a, (1 - a_b / a_a) I)`` (RePaint Alg. 1
    line 13; it is :func:`q_sample` with the ratio of the two ``alpha-bar``).

    Args:
        x_a: ``[B, C, H, W]``, the state at level ``a`` (``alpha_bar_a = 1`` for ``x_0``).
        alpha_bar_a, alpha_bar_b: 0-dim ``alpha-bar`` of the two levels (``b`` noisier).
        noise: ``N(0, I)`` draws shaped like ``x_a``.
    """
    return q_sample(x_a, alpha_bar_b / alpha_bar_a, noise)


class Prediction(NamedTuple):
    """The denoiser's prediction at ``x_t``, what :func:`posterior_step` turns into ``x_prev``.

    Attributes:
        x0_hat: ``[B, C, H, W]``, the predicted clean image (model space; clipped to
            ``[-1, 1]`` when the sampler clips).
        eps: ``[B, C, H, W]``, the noise estimate the DDIM-form step reuses as its direction.
        v: the learned-variance output (:class:`~inpaintbench.methods.diffusion.denoiser.DenoiserOutput`), or None.
    """

    x0_hat: torch.Tensor
    eps: torch.Tensor
    v: torch.Tensor | None = None


def predict_x0(x_t: torch.Tensor, out: DenoiserOutput, alpha_bar_t: torch.Tensor, *,
               clip_denoised: bool = True) -> Prediction:
    """``x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)`` (DDPM Eq. 15, DDIM Eq. 9), optionally
    clipped to ``[-1, 1]``.

    Args:
        x_t: ``[B, C, H, W]`` model space.
        out: the denoiser's output at ``x_t``.
        alpha_bar_t: 0-dim ``alpha-bar`` of ``x_t``'s level.
        clip_denoised: clip ``x0_hat`` to ``[-1, 1]``.
    """
    a_t = alpha_bar_t
    eps = out.eps
    x0_hat = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    if clip_denoised:
        x0_hat = x0_hat.clamp(-1, 1)
    return Prediction(x0_hat, eps, out.v)


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar_t: torch.Tensor) -> torch.Tensor:
    """The noise that makes ``x_t`` the forward noising of ``x0``: ``(x_t - sqrt(a_t) x0) / sqrt(1 - a_t)``
    (DDIM Eq. 12 solved for ``eps``). A strategy that corrects ``x0_hat`` uses it when its
    step should stay on the line through ``x_t`` (DiffPIR); DDNM / DDRM keep the network's ``eps``."""
    return (x_t - alpha_bar_t.sqrt() * x0) / (1 - alpha_bar_t).sqrt()


def posterior_step(x_t: torch.Tensor, pred: Prediction, alpha_bar_t: torch.Tensor,
                   alpha_bar_prev: torch.Tensor, noise: torch.Tensor | None, *, eta: float = 1.0) -> torch.Tensor:
    """``x_prev`` from ``x_t`` and a :class:`Prediction` (the second half of :func:`reverse_step`,
    which documents the arithmetic). Returns ``[B, C, H, W]``."""
    a_t, a_prev = alpha_bar_t, alpha_bar_prev
    x0_hat, eps = pred.x0_hat, pred.eps
    last = bool(a_prev >= 1)
    beta = 1 - a_t / a_prev
    posterior_var = (1 - a_prev) / (1 - a_t) * beta
    if pred.v is not None and eta == 1.0:
        # DDPM Eq. 7: mu~ = sqrt(a_prev) beta' / (1 - a_t) x0 + sqrt(1 - beta') (1 - a_prev) / (1 - a_t) x_t
        mean = (a_prev.sqrt() * beta / (1 - a_t)) * x0_hat + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)) * x_t
        if last or noise is None:  # beta~ = 0 at the last step: log would be -inf, and no noise is added
            return mean
        frac = (pred.v + 1) / 2
        log_var = frac * beta.log() + (1 - frac) * posterior_var.log()
        return mean + (0.5 * log_var).exp() * noise
    sigma = eta * posterior_var.sqrt()
    x_prev = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp_min(0).sqrt() * eps
    if not last and eta > 0 and noise is not None:
        x_prev = x_prev + sigma * noise
    return x_prev


def renoise_step(x0: torch.Tensor, eps: torch.Tensor, alpha_bar_prev: torch.Tensor, noise: torch.Tensor,
                 eta: float | torch.Tensor) -> torch.Tensor:
    """``x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) (eta z + sqrt(1 - eta^2) eps)``: DDIM's step
    (DDIM Eq. 12) with the fresh-noise share ``sigma = eta sqrt(1 - a_prev)`` instead of
    :func:`posterior_step`'s ``eta sqrt(beta~_t)``. It is the step of the x0-space solvers'
    released code: DDNM's ``c1 = sqrt(1 - a_next) eta, c2 = sqrt(1 - a_next) sqrt(1 - eta^2)``,
    DDRM's update of the unmeasured coordinates (``eta_c``), DiffPIR's with ``eta = sqrt(zeta)``.

    Args:
        x0, eps: ``[B, C, H, W]`` model space, the (corrected) clean estimate and the noise
            direction.
        alpha_bar_prev: 0-dim ``alpha-bar`` of the level stepped to (1: ``x_prev = x0``).
        noise: ``z ~ N(0, I)`` shaped like ``x0``.
        eta: in ``[0, 1]`` (a float or a tensor broadcastable to ``x0``).
    """
    a_prev = alpha_bar_prev
    rest = (1 - eta**2) ** 0.5 if not torch.is_tensor(eta) else (1 - eta**2).clamp_min(0).sqrt()
    return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * (eta * noise + rest * eps)


def reverse_step(x_t: torch.Tensor, out: DenoiserOutput, alpha_bar_t: torch.Tensor,
                 alpha_bar_prev: torch.Tensor, noise: torch.Tensor | None, *, eta: float = 1.0,
                 clip_denoised: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One reverse step ``x_t -> x_prev`` between two respaced levels.

    ``x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)`` (DDPM Eq. 15, DDIM Eq. 9), optionally
    clipped to ``[-1, 1]``. With ``beta'_t = 1 - a_t / a_prev`` and the posterior variance
    ``beta~_t = (1 - a_prev) / (1 - a_t) beta'_t`` (DDPM Eq. 7):

    * fixed variance (``out.v`` is None, or ``eta < 1``): DDIM's generalised step (DDIM
      Eq. 12 and 16) with ``sigma = eta sqrt(beta~_t)``:
      ``x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma z``.
      ``eta = 1`` is DDPM's ancestral step with the fixed-small variance; its mean equals the
      posterior mean of DDPM Eq. 7 whenever ``x0_hat`` is not clipped (it keeps the network's
      ``eps`` as diffusers' ``RePaintScheduler`` does; diffusers' ``DDPMScheduler`` uses the
      posterior mean of the clipped ``x0_hat`` instead). ``eta = 0`` is deterministic DDIM.
    * learned variance (``out.v`` given and ``eta = 1``): the posterior mean of DDPM Eq. 7
      from the clipped ``x0_hat`` and ``log Sigma = frac log beta'_t + (1 - frac) log beta~_t``
      with ``frac = (v + 1) / 2`` (IDDPM Eq. 15, guided-diffusion's convention).

    Args:
        x_t: ``[B, C, H, W]`` model space.
        out: the denoiser's output at ``x_t``.
        alpha_bar_t, alpha_bar_prev: 0-dim ``alpha-bar`` of the current and the next (less
            noisy) level; ``alpha_bar_prev = 1`` is the last step (to ``x_0``: no noise).
        noise: ``z ~ N(0, I)`` shaped like ``x_t`` (ignored on the last step); None: no noise.
        eta: DDIM's eta in ``[0, 1]``.
        clip_denoised: clip ``x0_hat`` to ``[-1, 1]``.

    Returns:
        ``(x_prev, x0_hat)``, both ``[B, C, H, W]``.
    """
    pred = predict_x0(x_t, out, alpha_bar_t, clip_denoised=clip_denoised)
    return posterior_step(x_t, pred, alpha_bar_t, alpha_bar_prev, noise, eta=eta), pred.x0_hat
