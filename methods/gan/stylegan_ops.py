"""The StyleGAN2 building operations the GAN family shares, in plain PyTorch.

CoModGAN's port and MAT run on StyleGAN2-ADA's ``torch_utils.ops`` (custom CUDA kernels with a
reference PyTorch path). The suite needs only the reference semantics, written here once:

* :func:`setup_filter` -- a normalised 2-D FIR filter from its taps (``[1, 3, 3, 1]`` -> 4x4);
* :func:`upfirdn2d` -- zero-insertion upsampling, padding / cropping, FIR filtering and
  decimation in one call (the semantics of ``scipy.signal.upfirdn`` in 2-D), with
  :func:`upsample2d` / :func:`downsample2d` padding so the output size is a multiple of the input;
* :func:`conv2d_resample` -- a convolution with optional up/down-sampling around it, computed
  the way StyleGAN2-ADA computes it (transposed convolution for upsampling, strided
  convolution for downsampling), so the results agree with the official networks to float
  rounding;
* :func:`modulated_conv2d` -- a per-sample style-modulated (and optionally demodulated)
  convolution as one grouped convolution;
* :func:`bias_act` -- bias, activation, gain and clamp (``lrelu`` / ``linear``), and
  :func:`normalize_2nd_moment`.

Images and feature maps are ``[B, C, H, W]``; filters float32.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

Padding = int | Sequence[int]


def setup_filter(taps: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """The 2-D FIR filter of 1-D ``taps`` (outer product), normalised to sum 1, times ``gain``.

    Args:
        taps: the 1-D filter (e.g. ``[1, 3, 3, 1]``, a binomial low-pass).
        gain: overall factor (``4`` keeps the magnitude of a 2x zero-inserted upsampling).

    Returns:
        float32 ``[len(taps), len(taps)]``.
    """
    t = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(t, t)
    return f / f.sum() * gain


def _four(padding: Padding) -> tuple[int, int, int, int]:
    """``int`` / ``(x, y)`` / ``(x0, x1, y0, y1)`` -> ``(x0, x1, y0, y1)``."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    x0, x1, y0, y1 = padding
    return x0, x1, y0, y1


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              padding: Padding = 0, gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with ``f``, keep every
    ``down``-th pixel -- per channel.

    Args:
        x: ``[B, C, H, W]``.
        f: ``[fh, fw]`` float32 filter, or ``None`` for the identity.
        up, down: integer factors.
        padding: ``(x0, x1, y0, y1)`` with respect to the upsampled image (or one int, or ``(x, y)``).
        gain: factor on the filter (``up ** 2`` keeps a constant signal's magnitude).

    Returns:
        ``[B, C, (H * up + y0 + y1 - fh + 1) // down, ...]`` (rounded up by the decimation).
    """
    b, c, h, w = x.shape
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    x0, x1, y0, y1 = _four(padding)
    if up > 1:
        # Zero insertion: each pixel followed by up - 1 zeros along both axes.
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    # A true convolution (the filter flipped; every filter used here is symmetric anyway),
    # depthwise: the same filter on every channel.
    k = (f * gain).to(x.dtype).flip([0, 1])
    k = k[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, k, groups=c)
    return x[:, :, ::down, ::down]


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, up * H, up * W]``: zero insertion and the low-pass ``f``
    (gain ``up ** 2``), padded so the output is exactly ``up`` times the input."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, H / down, W / down]``: the low-pass ``f`` then decimation."""
    fw = f.shape[-1]
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def _conv(x: torch.Tensor, w: torch.Tensor, *, stride: int = 1, padding: Sequence[int] = (0, 0),
          groups: int = 1, transpose: bool = False, flip: bool = False) -> torch.Tensor:
    # flip=True turns the correlation torch computes into a true convolution.
    if flip:
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=tuple(padding), groups=groups)
    return F.conv2d(x, w, stride=stride, padding=tuple(padding), groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: Padding = 0, groups: int = 1,
                    flip_weight: bool = True) -> torch.Tensor:
    """Convolution of ``x`` with ``w`` with ``up``-sampling before and ``down``-sampling after
    (each through the low-pass ``f``); ``padding`` refers to the upsampled image and is applied once.

    The same decomposition as StyleGAN2-ADA's ``conv2d_resample`` (so the rounding agrees):
    a 1x1 kernel is moved to the low-resolution side of the resampling; downsampling is a
    filter then a strided convolution; upsampling a transposed strided convolution then the
    filter; no resampling a plain convolution.

    Args:
        x: ``[B, C_in, H, W]``.
        w: ``[C_out, C_in / groups, kh, kw]``.
        f: the resampling filter (:func:`setup_filter`), ``None`` without resampling.
        up, down: integer factors (not both > 1 here: no network of the family needs it).
        padding: int, ``(x, y)`` or ``(x0, x1, y0, y1)``.
        groups: grouped convolution (a modulated convolution uses one group per sample).
        flip_weight: True = correlation (``F.conv2d``), False = true convolution.

    Returns:
        ``[B, C_out, H', W']``.
    """
    out_c, in_per_group, kh, kw = w.shape
    fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
    x0, x1, y0, y1 = _four(padding)
    if up > 1:
        x0, x1 = x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2
        y0, y1 = y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2
    if down > 1:
        x0, x1 = x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2
        y0, y1 = y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up- and down-sampling together is not used by the GAN family")
    flip = not flip_weight

    if kh == 1 and kw == 1 and down > 1:
        x = upfirdn2d(x, f, down=down, padding=(x0, x1, y0, y1))
        return _conv(x, w, groups=groups, flip=flip)
    if kh == 1 and kw == 1 and up > 1:
        x = _conv(x, w, groups=groups, flip=flip)
        return upfirdn2d(x, f, up=up, padding=(x0, x1, y0, y1), gain=up * up)
    if down > 1:
        x = upfirdn2d(x, f, padding=(x0, x1, y0, y1))
        return _conv(x, w, stride=down, groups=groups, flip=flip)
    if up > 1:
        # Transposed convolution: swap in/out channels within each group.
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_c // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_c // groups, kh, kw)
        x0, x1, y0, y1 = x0 - (kw - 1), x1 - (kw - up), y0 - (kh - 1), y1 - (kh - up)
        pxt, pyt = max(min(-x0, -x1), 0), max(min(-y0, -y1), 0)
        # A transposed convolution flips the kernel relative to a correlation.
        x = _conv(x, w, stride=up, padding=(pyt, pxt), groups=groups, transpose=True, flip=not flip)
        return upfirdn2d(x, f, padding=(x0 + pxt, x1 + pxt, y0 + pyt, y1 + pyt), gain=up * up)
    if x0 == x1 and y0 == y1 and x0 >= 0 and y0 >= 0:
        return _conv(x, w, padding=(y0, x0), groups=groups, flip=flip)
    x = upfirdn2d(x, None, padding=(x0, x1, y0, y1))
    return _conv(x, w, groups=groups, flip=flip)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *,
                     noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True) -> torch.Tensor:
    """StyleGAN2's modulated convolution (fused form): each sample's kernel is ``weight``
    scaled per input channel by its style, then (``demodulate``) normalised per output
    channel to unit L2 norm; computed as one grouped convolution.

    Args:
        x: ``[B, C_in, H, W]``.
        weight: ``[C_out, C_in, k, k]``.
        styles: ``[B, C_in]``.
        noise: added to the output (broadcast to ``[B, C_out, H', W']``), or ``None``.
        up, padding, resample_filter, flip_weight: as :func:`conv2d_resample`.
        demodulate: normalise each sample's output channels.

    Returns:
        ``[B, C_out, H', W']``.
    """
    b = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(b, 1, -1, 1, 1)  # [B, O, I, k, k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [B, O]
        w = w * dcoefs.reshape(b, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_c, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, padding=padding, groups=b,
                        flip_weight=flip_weight)
    x = x.reshape(b, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)
    return x


#: Activation name -> (function, default gain): StyleGAN2-ADA's ``bias_act`` conventions.
_ACTIVATIONS = {
    "linear": (lambda x, alpha: x, 1.0),
    "lrelu": (lambda x, alpha: F.leaky_relu(x, alpha), math.sqrt(2.0)),
    "relu": (lambda x, alpha: F.relu(x), math.sqrt(2.0)),
}


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", *, dim: int = 1,
             alpha: float = 0.2, gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """``clamp(act(x + b) * gain, -clamp, clamp)``: bias along ``dim``, then the activation
    (``linear``, ``lrelu`` with slope ``alpha``, ``relu``), the gain (default: the
    activation's, ``sqrt(2)`` for the rectifiers) and an optional clamp."""
    fn, default_gain = _ACTIVATIONS[act]
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = fn(x, alpha)
    gain = default_gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """``x`` divided by its root mean square along ``dim`` (a latent projected onto the sphere)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def lrelu_agc(x: torch.Tensor, gain: float = 1.0, *, alpha: float = 0.2, base_gain: float = math.sqrt(2.0),
              clamp: float | None = 256.0) -> torch.Tensor:
    """MI-GAN's and the CoModGAN port's activation: ``leaky_relu(x, alpha) * base_gain * gain``
    clamped to ``±clamp * gain`` (the clamp scales with the gain, as in their ``lrelu_agc``)."""
    x = F.leaky_relu(x, negative_slope=alpha)
    act_gain = base_gain * gain
    if act_gain != 1:
        x = x * act_gain
    if clamp is not None:
        x = x.clamp(-clamp * gain, clamp * gain)
    return x


def broadcast_truncated(w: torch.Tensor, num_ws: int, w_avg: torch.Tensor, truncation_psi: float = 1.0,
                        truncation_cutoff: int | None = None) -> torch.Tensor:
    """A mapping network's output ``w`` ``[B, w_dim]`` repeated to ``[B, num_ws, w_dim]``, then
    pulled towards ``w_avg`` by ``truncation_psi`` (all layers, or the first ``truncation_cutoff``):
    StyleGAN2's truncation trick, as the official mapping networks apply it."""
    x = w.unsqueeze(1).repeat([1, num_ws, 1])
    if truncation_psi != 1:
        if truncation_cutoff is None:
            x = w_avg.lerp(x, truncation_psi)
        else:
            x[:, :truncation_cutoff] = w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
    return x
