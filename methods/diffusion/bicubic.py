"""ILVR's low-pass filter as its authors run it: a bicubic down-then-up resize with
antialiasing on the way down (the MATLAB ``imresize`` convention that ILVR's ``resizer.py``
follows), written as two small resampling matrices per image side.

The core's :func:`~inpaintbench.methods.diffusion.lowpass.lowpass` is an ``N x N`` block mean
upsampled by repetition (an orthogonal projection, so ILVR's update imposes the reference's
low frequencies exactly); :func:`lowpass_bicubic` is the paper's filter, which is neither
idempotent nor a projection, for comparing with the official code.

Resampling along one side of length ``L_in`` to ``L_out = ceil(L_in * s)``:

* output pixel ``o`` (1-based, centred in the image) sits at input coordinate
  ``u = (o - (L_out - L_in s) / 2) / s + (1 - 1 / s) / 2`` (pixel centres at 1, 2, ...);
* it takes taps at the ``ceil(w) + 2`` input pixels from ``floor(u - w / 2)`` on, weighted by
  Keys' cubic kernel (``a = -0.5``, width ``w = 4``); when shrinking (``s < 1``) the kernel is
  stretched to ``s k(s x)`` and ``w / s`` (antialiasing);
* the weights of each output pixel are normalised to sum to one, and taps outside the image
  are reflected back (``... 1 0 | 0 1 ... L-1 | L-1 L-2 ...``).

Two other differences of ILVR's released loop (``ilvr_adm`` ``p_sample_loop_progressive``)
from the core's ILVR conditioning; the ILVR methods' ``chain="official"`` reproduces all three
(:func:`~inpaintbench.methods.diffusion.ilvr.ilvr_conditioning` with ``official=True``: the
bicubic ``phi_N``, ``at_current_level=True``, ``stop = range_t + 1``; ``tests/test_adm.py``
replays the official loop's draws through it):

* the reference is noised to the level the step *starts* from (``q_sample(ref, t)`` after
  sampling ``x_{t-1}``), the core noises it to the level the step lands on (``y_{t-1}``, the
  paper's Alg. 1);
* conditioning runs while ``t > range_t``, so the last step (``t = 0``) is never conditioned;
  the core conditions ``cur >= range_t`` and with ``range_t = 0`` imposes ``phi_N(y)`` on
  ``x_0`` itself.
"""

from __future__ import annotations

import math

import torch

from inpaintbench.core.errors import InputError

__all__ = ["resize_matrix", "bicubic_resize", "lowpass_bicubic"]


def _cubic(x: torch.Tensor) -> torch.Tensor:
    # Keys (1981) cubic convolution kernel with a = -0.5 (MATLAB's imresize "bicubic").
    ax = x.abs()
    near = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
    far = (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_matrix(in_length: int, scale: float) -> torch.Tensor:
    """The bicubic resampling matrix of one image side.

    Args:
        in_length: input length ``L_in`` (pixels, >= 1).
        scale: ``s > 0``; the output has ``ceil(L_in * s)`` pixels.

    Returns:
        float64 ``[L_out, L_in]`` whose rows sum to one; ``resize = M @ x`` along that side.
    """
    if in_length < 1 or not scale > 0:
        raise InputError(f"resize_matrix needs in_length >= 1 and scale > 0, got {in_length}, {scale}")
    out_length = int(math.ceil(in_length * scale))
    shrink = scale < 1
    width = 4.0 / scale if shrink else 4.0
    o = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = (o - (out_length - in_length * scale) / 2) / scale + 0.5 * (1 - 1 / scale)
    taps = torch.floor(u - width / 2)[:, None] + torch.arange(math.ceil(width) + 2, dtype=torch.float64) - 1
    distance = u[:, None] - taps - 1
    weights = scale * _cubic(scale * distance) if shrink else _cubic(distance)
    total = weights.sum(dim=1, keepdim=True)
    weights = weights / torch.where(total == 0, torch.ones_like(total), total)
    # Reflect taps that fall outside [0, L_in): period 2 L_in, mirrored second half.
    period = 2 * in_length
    idx = torch.remainder(taps.long(), period)
    idx = torch.where(idx >= in_length, period - 1 - idx, idx)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, idx, weights)
    return matrix


def bicubic_resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Resize the last two dimensions of ``x`` by ``scale`` (bicubic, antialiased when shrinking).

    Args:
        x: float ``[..., H, W]``.
        scale: ``s > 0``; output ``[..., ceil(H s), ceil(W s)]``.

    Returns:
        Same dtype as ``x`` (the matrices are built in float64 and cast to it).
    """
    mh = resize_matrix(x.shape[-2], scale).to(dtype=x.dtype, device=x.device)
    mw = resize_matrix(x.shape[-1], scale).to(dtype=x.dtype, device=x.device)
    return mh @ x @ mw.T


def lowpass_bicubic(x: torch.Tensor, down_n: int) -> torch.Tensor:
    """ILVR's ``phi_N`` as the paper's code computes it: bicubic downscaling by ``1 / N`` then
    bicubic upscaling by ``N``.

    Args:
        x: float ``[B, C, H, W]`` with ``H`` and ``W`` divisible by ``down_n``.
        down_n: ``N`` (a power of two); 1 returns ``x``.

    Returns:
        ``[B, C, H, W]``.
    """
    if isinstance(down_n, bool) or not isinstance(down_n, int) or down_n < 1:
        raise InputError(f"down_n must be a positive int, got {down_n!r}")
    if down_n == 1:
        return x
    if x.shape[-2] % down_n or x.shape[-1] % down_n:
        raise InputError(f"down_n={down_n} must divide the image size {tuple(x.shape[-2:])}")
    return bicubic_resize(bicubic_resize(x, 1 / down_n), float(down_n))
