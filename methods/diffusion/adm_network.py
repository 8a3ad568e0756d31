"""ADM, the UNet of guided-diffusion (Dhariwal & Nichol, "Diffusion Models Beat GANs on Image
Synthesis", NeurIPS 2021), as the project's own implementation, and its denoiser adapter.

* :class:`ADMUNet`: the network. Its parameter and buffer names are those of guided-diffusion's
  ``UNetModel`` (``time_embed.0.weight``, ``input_blocks.1.0.in_layers.2.weight``, ...), so an
  official state dict loads with ``load_state_dict(strict=True)``
  (:mod:`~inpaintbench.methods.diffusion.adm_checkpoint`).
* :class:`ADMDenoiser`: the :class:`~inpaintbench.methods.diffusion.denoiser.Denoiser` adapter
  returning ``eps`` and, with ``learn_sigma``, the learned-range variance output ``v``.

Conventions: images in model space ``[-1, 1]``, float32 ``[B, 3, H, W]``; timesteps are long
``[B]`` *training* timesteps in ``[0, T)`` (``SpacedDiffusion``'s ``timestep_map``,
``rescale_timesteps=False``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.core.errors import InputError
from inpaintbench.methods.diffusion.adm_config import ADMConfig
from inpaintbench.methods.diffusion.denoiser import DenoiserOutput

__all__ = ["ADMDenoiser", "ADMUNet", "parameter_count", "timestep_embedding"]


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: ``[cos(t f_k), sin(t f_k)]``
    with ``f_k = max_period^(-k / (dim // 2))``, ``k < dim // 2`` (cosines first, as ADM does;
    a zero column is appended for odd ``dim``).

    Args:
        timesteps: ``[B]`` (any numeric dtype).
        dim: embedding width.

    Returns:
        float32 ``[B, dim]``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(timesteps.device)
    angles = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class _GroupNorm32(nn.GroupNorm):
    """GroupNorm with 32 groups computed in float32 and cast back (ADM runs its torso in fp16
    on GPUs, where the statistics would lose precision)."""

    def __init__(self, channels: int):
        super().__init__(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


def _zeroed(module: nn.Module) -> nn.Module:
    # ADM initialises the last layer of each residual branch at zero; kept so a freshly built
    # model (random weights for tests) is the same function as a freshly built official one.
    for p in module.parameters():
        p.detach().zero_()
    return module


class _EmbedSequential(nn.Sequential):
    """A sequence whose residual blocks also receive the timestep embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, _ResBlock) else layer(x)
        return x


class _Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, optionally followed by a 3x3 convolution (``conv``)."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        if use_conv:
            self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class _Downsample(nn.Module):
    """2x downsampling: a stride-2 3x3 convolution (``op``), or 2x2 average pooling."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        if use_conv:
            self.op: nn.Module = nn.Conv2d(channels, out_channels or channels, 3, stride=2, padding=1)
        else:
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _ResBlock(nn.Module):
    """ADM's residual block: GroupNorm-SiLU-conv, the timestep embedding added (or, with
    ``use_scale_shift_norm``, applied as ``norm(h) * (1 + scale) + shift``), GroupNorm-SiLU-
    dropout-conv, plus the skip path. ``up``/``down``: the block resamples both paths
    (``resblock_updown``), between the first norm-activation and the first conv."""

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int | None = None,
                 use_scale_shift_norm: bool = False, up: bool = False, down: bool = False):
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(_GroupNorm32(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd: nn.Module = _Upsample(channels, False)
            self.x_upd: nn.Module = _Upsample(channels, False)
        elif down:
            self.h_upd = _Downsample(channels, False)
            self.x_upd = _Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels))
        self.out_layers = nn.Sequential(_GroupNorm32(out_channels), nn.SiLU(), nn.Dropout(p=dropout),
                                        _zeroed(nn.Conv2d(out_channels, out_channels, 3, padding=1)))
        # 1x1 projection when the width changes (ADM's default, use_conv=False).
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class _AttentionBlock(nn.Module):
    """Self-attention over all spatial positions with ``heads`` heads, residual.

    ``qkv`` is a 1x1 ``Conv1d`` to ``3 C`` channels. ``new_order=False`` (ADM's legacy order)
    reads those channels as ``[heads, (q, k, v), C / heads]``; ``new_order=True``
    (``use_new_attention_order``) as ``[(q, k, v), heads, C / heads]``. Both scale q and k by
    ``(C / heads)^(-1/4)`` each before the product (ADM's fp16-stable form).
    """

    def __init__(self, channels: int, heads: int, new_order: bool):
        super().__init__()
        self.heads = heads
        self.new_order = new_order
        self.norm = _GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = _zeroed(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        flat = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(flat))
        n = qkv.shape[-1]
        head_ch = c // self.heads
        if self.new_order:
            q, k, v = (part.reshape(b * self.heads, head_ch, n) for part in qkv.chunk(3, dim=1))
        else:
            q, k, v = qkv.reshape(b * self.heads, 3 * head_ch, n).split(head_ch, dim=1)
        scale = head_ch ** -0.25
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        h = torch.einsum("bts,bcs->bct", weight, v).reshape(b, c, n)
        return (flat + self.proj_out(h)).reshape(b, c, *spatial)


class ADMUNet(nn.Module):
    """guided-diffusion's ``UNetModel`` (2-D, unconditional) for an :class:`ADMConfig`.

    Layout (module names as in the official state dict): ``time_embed`` (Linear-SiLU-Linear
    of the sinusoidal embedding to ``4 * num_channels``); ``input_blocks`` (a 3x3 conv, then
    per level ``num_res_blocks`` residual blocks, each followed by attention at the
    configured downsampling rates, and a downsampling block between levels);
    ``middle_block`` (res, attention, res); ``output_blocks`` (per level, coarsest first,
    ``num_res_blocks + 1`` residual blocks on the concatenated skip features, attention, and an
    upsampling block at the end of each level but the finest); ``out`` (norm, SiLU, zero conv).

    Args:
        config: the architecture (only the model fields are used).

    Call: ``unet(x, timesteps)`` with ``x`` float32 ``[B, C, H, W]`` (model space) and
    ``timesteps`` ``[B]`` training timesteps; returns ``[B, out_channels, H, W]``.
    """

    def __init__(self, config: ADMConfig):
        super().__init__()
        config.validate()
        self.config = config
        mc = config.num_channels
        mults = config.channel_multipliers()
        attn_ds = set(config.attention_downsample_rates())
        emb_dim = mc * 4
        heads_up = config.num_heads if config.num_heads_upsample == -1 else config.num_heads_upsample
        self._fp16 = False  # float32 until convert_to_fp16 (use_fp16 on CUDA, see ADMDenoiser.to)

        def heads_for(ch: int, heads: int) -> int:
            if config.num_head_channels == -1:
                return heads
            if ch % config.num_head_channels:
                raise InputError(f"{ch} attention channels are not divisible by num_head_channels={config.num_head_channels}")
            return ch // config.num_head_channels

        def res(ch_in: int, ch_out: int | None = None, **kw: bool) -> _ResBlock:
            return _ResBlock(ch_in, emb_dim, config.dropout, ch_out, config.use_scale_shift_norm, **kw)

        def attn(ch: int, heads: int) -> _AttentionBlock:
            return _AttentionBlock(ch, heads_for(ch, heads), config.use_new_attention_order)

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        ch = first = int(mults[0] * mc)
        self.input_blocks = nn.ModuleList([_EmbedSequential(nn.Conv2d(config.in_channels, ch, 3, padding=1))])
        skip_channels = [ch]
        ds = 1
        for level, mult in enumerate(mults):
            for _ in range(config.num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(mult * mc))]
                ch = int(mult * mc)
                if ds in attn_ds:
                    layers.append(attn(ch, config.num_heads))
                self.input_blocks.append(_EmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(mults) - 1:
                down = res(ch, ch, down=True) if config.resblock_updown else _Downsample(ch, True, ch)
                self.input_blocks.append(_EmbedSequential(down))
                skip_channels.append(ch)
                ds *= 2
        self.middle_block = _EmbedSequential(res(ch), attn(ch, config.num_heads), res(ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(mults))[::-1]:
            for i in range(config.num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), int(mc * mult))]
                ch = int(mc * mult)
                if ds in attn_ds:
                    layers.append(attn(ch, heads_up))
                if level and i == config.num_res_blocks:
                    layers.append(res(ch, ch, up=True) if config.resblock_updown else _Upsample(ch, True, ch))
                    ds //= 2
                self.output_blocks.append(_EmbedSequential(*layers))
        self.out = nn.Sequential(_GroupNorm32(ch), nn.SiLU(), _zeroed(nn.Conv2d(first, config.out_channels, 3, padding=1)))

    def convert_to_fp16(self) -> "ADMUNet":
        """Run the torso's convolutions in float16, as ADM's ``use_fp16`` does on GPUs (norms
        compute in float32, embeddings and the output head stay float32). Returns ``self``."""
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            for m in part.modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                    m.half()
        self._fp16 = True
        return self

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, C, H, W]``; ``timesteps``: ``[B]``. Returns ``[B, out_channels, H, W]``."""
        emb = self.time_embed(timestep_embedding(timesteps, self.config.num_channels))
        h = x.half() if self._fp16 else x.float()
        skips = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h.type(x.dtype))


class ADMDenoiser:
    """:class:`~inpaintbench.methods.diffusion.denoiser.Denoiser` adapter for :class:`ADMUNet`.

    Returns ``eps`` (the first ``C`` output channels) and, with ``learn_sigma``, ``v`` (the
    other ``C``): guided-diffusion's ``LEARNED_RANGE`` output, ``frac = (v + 1) / 2`` between
    ``log beta_t`` and ``log beta~_t`` (IDDPM Eq. 15), which
    :func:`~inpaintbench.methods.diffusion.steps.reverse_step` applies.

    Args:
        unet: the network (put in eval mode without gradients).
    """

    def __init__(self, unet: ADMUNet):
        self.unet = unet.eval().requires_grad_(False)
        self.config = unet.config
        self.learn_sigma = unet.config.learn_sigma
        self.in_channels = unet.config.in_channels
        self.sample_size = (unet.config.image_size, unet.config.image_size)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> DenoiserOutput:
        """``x``: float32 ``[B, C, H, W]`` model space; ``t``: long ``[B]`` training timesteps."""
        out = self.unet(x, t).float()
        if not self.learn_sigma:
            return DenoiserOutput(out)
        eps, v = out.split(self.in_channels, dim=1)
        return DenoiserOutput(eps, v)

    def to(self, device: torch.device | str) -> "ADMDenoiser":
        """Move to ``device``; ``use_fp16`` configs switch the torso to float16 on CUDA only
        (CPUs run float32). Returns ``self``."""
        self.unet.to(device)
        if self.config.use_fp16 and torch.device(device).type == "cuda" and not self.unet._fp16:
            self.unet.convert_to_fp16()
        return self

    @property
    def device(self) -> torch.device:
        """The device of the network's parameters."""
        return next(self.unet.parameters()).device


def parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
