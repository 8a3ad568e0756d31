"""ADM, the UNet of guided-diffusion (Dhariwal & Nichol, "Diffusion Models Beat GANs on Image
Synthesis", NeurIPS 2021), as the project's own implementation, and the loader of its public
checkpoints (RePaint's CelebA-HQ and Places2 models, OpenAI's unconditional ImageNet model,
ILVR's FFHQ model).

What is here:

* :class:`ADMConfig`: guided-diffusion's ``create_model`` arguments and the diffusion arguments
  of ``create_gaussian_diffusion`` the checkpoint was trained with; :data:`PRESETS` for the
  public checkpoints; :func:`resolve_adm` reads a preset name, a ``.toml``/``.json`` args file
  or a mapping.
* :class:`ADMUNet`: the network. Its parameter and buffer names are those of guided-diffusion's
  ``UNetModel`` (``time_embed.0.weight``, ``input_blocks.1.0.in_layers.2.weight``, ...), so an
  official state dict loads with ``load_state_dict(strict=True)``.
* :class:`ADMDenoiser`: the :class:`~inpaintbench.methods.diffusion.core.Denoiser` adapter
  returning ``eps`` and, with ``learn_sigma``, the learned-range variance output ``v``.
* :class:`SpacedRespacing`: guided-diffusion's ``space_timesteps`` table, so the project's
  sampler calls the network with the same training timesteps as ``SpacedDiffusion`` does.
* :func:`load_adm_state_dict` / :func:`load_adm` / :func:`load_adm_prior`: safe, strict loading
  (``torch.load(..., weights_only=True)``, every key and shape checked first, one error line
  naming the file and the first mismatch).
* :func:`load_prior` / :func:`resolve_model_option`: what the diffusion methods call for their
  ``model=`` (alias of ``weights=``) and ``adm=`` options: an ADM ``.pt`` with guided-diffusion's
  spacing, or a diffusers folder / hub id with the core's.

How the official code's conventions map onto the core (each checked in ``tests/test_adm.py``):
the network sees *training* timesteps (``SpacedDiffusion``'s ``timestep_map``,
``rescale_timesteps=False``), so :class:`SpacedRespacing` returns the kept training step for a
respaced index; the learned-range variance is the core's
:func:`~inpaintbench.methods.diffusion.core.reverse_step` with ``out.v``; RePaint's and ILVR's
loops are the methods' ``chain="official"`` options.

Conventions: images in model space ``[-1, 1]``, float32 ``[B, 3, H, W]``; timesteps are long
``[B]`` *training* timesteps in ``[0, T)``.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.methods.diffusion.core import (
    DenoiserOutput,
    DiffusionPrior,
    NoiseSchedule,
    Respacing,
)

__all__ = [
    "ADMConfig",
    "ADMDenoiser",
    "ADMUNet",
    "PRESETS",
    "SpacedRespacing",
    "adm_respacing",
    "beta_schedule",
    "check_state_dict",
    "load_adm",
    "load_adm_prior",
    "load_adm_state_dict",
    "load_args_file",
    "load_prior",
    "parameter_count",
    "resolve_adm",
    "resolve_model_option",
    "space_timesteps",
    "timestep_embedding",
]

# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ADMConfig:
    """guided-diffusion's model and diffusion arguments.

    The fields and their defaults are those of guided-diffusion's
    ``model_and_diffusion_defaults()`` (the defaults the official sampling scripts apply their
    ``MODEL_FLAGS`` to), so the flags printed in a README give the right model when written
    into an args file. ``attention_resolutions`` and ``channel_mult`` are comma-separated
    strings as in the scripts (``channel_mult = ""``: the default of the image size).

    Diffusion fields: ``diffusion_steps`` (``T``), ``noise_schedule`` (``"linear"`` or
    ``"cosine"``), ``timestep_respacing`` (the paper's respacing, informational: the methods
    choose their own ``num_steps``), ``learn_sigma`` (variance ``LEARNED_RANGE``). Options the
    suite does not support are refused by :meth:`validate`: ``predict_xstart``,
    ``rescale_timesteps`` (these checkpoints use neither), ``class_cond`` (needs labels).
    """

    image_size: int = 64
    num_channels: int = 128
    num_res_blocks: int = 2
    num_heads: int = 4
    num_heads_upsample: int = -1
    num_head_channels: int = -1
    attention_resolutions: str = "16,8"
    channel_mult: str = ""
    dropout: float = 0.0
    class_cond: bool = False
    use_checkpoint: bool = False
    use_scale_shift_norm: bool = True
    resblock_updown: bool = False
    use_fp16: bool = False
    use_new_attention_order: bool = False
    in_channels: int = 3
    # diffusion
    learn_sigma: bool = False
    diffusion_steps: int = 1000
    noise_schedule: str = "linear"
    timestep_respacing: str = ""
    use_kl: bool = False
    predict_xstart: bool = False
    rescale_timesteps: bool = False
    rescale_learned_sigmas: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "ADM arguments") -> "ADMConfig":
        """Build from a mapping of guided-diffusion argument names; lists are accepted for
        ``attention_resolutions`` / ``channel_mult``. Unknown names raise :class:`InputError`
        naming ``source`` (a misspelt flag must not silently fall back to a default)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(f"{source}: unknown ADM argument(s) {unknown}; known: {sorted(known)}")
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if key in ("attention_resolutions", "channel_mult") and isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            if key == "timestep_respacing" and isinstance(value, int):
                value = str(value)
            clean[key] = value
        config = cls(**clean)
        config.validate(source)
        return config

    def validate(self, source: str = "ADM arguments") -> None:
        """Raise :class:`InputError` for values the suite cannot run."""
        if self.predict_xstart:
            raise InputError(f"{source}: predict_xstart=True models are not supported (the suite's denoisers predict eps)")
        if self.rescale_timesteps:
            raise InputError(f"{source}: rescale_timesteps=True is not supported (the public checkpoints use False)")
        if self.class_cond:
            raise InputError(f"{source}: class-conditional ADM models (class_cond=True, e.g. 256x256_diffusion.pt) "
                             "are not supported: the suite has no class labels to give them")
        if self.noise_schedule not in ("linear", "cosine"):
            raise InputError(f"{source}: noise_schedule must be 'linear' or 'cosine', got {self.noise_schedule!r}")
        self.channel_multipliers()  # raises for an unsupported size
        self.attention_downsample_rates()

    def channel_multipliers(self) -> tuple[float, ...]:
        """Channel multiplier per level (``create_model``'s size defaults when ``channel_mult`` is empty)."""
        if self.channel_mult:
            return tuple(float(v) if "." in v else int(v) for v in str(self.channel_mult).split(","))
        defaults = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}
        if self.image_size not in defaults:
            raise InputError(f"image_size={self.image_size} has no default channel_mult (64, 128, 256, 512); "
                             "give channel_mult explicitly")
        return defaults[self.image_size]

    def attention_downsample_rates(self) -> tuple[int, ...]:
        """Downsampling factors ``image_size // resolution`` at which attention blocks sit."""
        text = str(self.attention_resolutions)
        return tuple(self.image_size // int(r) for r in text.split(",") if r.strip())

    @property
    def out_channels(self) -> int:
        """``2 * in_channels`` with ``learn_sigma`` (eps then v), else ``in_channels``."""
        return self.in_channels * (2 if self.learn_sigma else 1)

    def as_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (the args-file format)."""
        return asdict(self)

    def shrunk(self, **changes: Any) -> "ADMConfig":
        """A copy with ``changes`` (tests shrink ``num_channels`` / ``image_size``)."""
        config = replace(self, **changes)
        config.validate("shrunk ADM arguments")
        return config


# The public checkpoints' arguments, from the authors' own configs:
# RePaint confs/test_c256_*.yml and test_p256_*.yml (identical model/diffusion keys),
# guided-diffusion README (256x256 unconditional MODEL_FLAGS), ILVR README (FFHQ flags).
_ADM_256 = dict(image_size=256, num_channels=256, num_res_blocks=2, num_heads=4, num_head_channels=64,
                attention_resolutions="32,16,8", channel_mult="", dropout=0.0, class_cond=False,
                use_scale_shift_norm=True, resblock_updown=True, use_new_attention_order=False,
                learn_sigma=True, diffusion_steps=1000, noise_schedule="linear")

#: Preset name -> :class:`ADMConfig` of a public checkpoint.
PRESETS: dict[str, ADMConfig] = {
    # RePaint's CelebA-HQ model celeba256_250000.pt (confs/test_c256_*.yml: use_fp16 false).
    "repaint-celeba256": ADMConfig(**_ADM_256, use_fp16=False, timestep_respacing="250"),
    # RePaint's Places2 model places256_300000.pt (confs/test_p256_*.yml).
    "repaint-places256": ADMConfig(**_ADM_256, use_fp16=False, timestep_respacing="250"),
    # OpenAI's 256x256_diffusion_uncond.pt (guided-diffusion README: --use_fp16 True; fp16 only
    # changes the torso's compute dtype on CUDA, the stored tensors are float32).
    "openai-256-uncond": ADMConfig(**_ADM_256, use_fp16=True, timestep_respacing="250"),
    # ILVR's ffhq_10m.pt (ILVR README flags; it samples with --timestep_respacing 100).
    "ilvr-ffhq256": ADMConfig(image_size=256, num_channels=128, num_res_blocks=1, num_heads=4,
                              num_head_channels=64, attention_resolutions="16", channel_mult="",
                              dropout=0.0, class_cond=False, use_scale_shift_norm=True,
                              resblock_updown=True, use_fp16=False, learn_sigma=True,
                              diffusion_steps=1000, noise_schedule="linear", timestep_respacing="100"),
}


def load_args_file(path: str | os.PathLike) -> ADMConfig:
    """Read guided-diffusion arguments from a ``.toml`` or ``.json`` file.

    The file holds argument names as keys (``num_channels = 128`` ...), either at the top
    level or under an ``[adm]`` table; absent keys take :class:`ADMConfig`'s defaults
    (``model_and_diffusion_defaults()``).

    Raises:
        InputError: the file is missing, not TOML/JSON, or has unknown keys.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"ADM args file {p} does not exist")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
        else:
            data = tomllib.loads(p.read_text())
    except (ValueError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"ADM args file {p} is not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"ADM args file {p} must hold a table of argument names")
    if "adm" in data and isinstance(data["adm"], dict):
        data = data["adm"]
    return ADMConfig.from_mapping(data, source=f"ADM args file {p}")


def resolve_adm(adm: str | os.PathLike | Mapping[str, Any] | ADMConfig) -> ADMConfig:
    """The :class:`ADMConfig` for ``adm``: a preset name of :data:`PRESETS`, a path to a
    ``.toml``/``.json`` args file, a mapping of arguments, or a config itself.

    Raises:
        InputError: an unknown preset name (with the list), a bad args file.
    """
    if isinstance(adm, ADMConfig):
        return adm
    if isinstance(adm, Mapping):
        return ADMConfig.from_mapping(adm)
    text = str(adm)
    if text in PRESETS:
        return PRESETS[text]
    if text.lower().endswith((".toml", ".json")) or os.sep in text:
        return load_args_file(text)
    raise InputError(f"adm={text!r} is neither an ADM preset ({', '.join(sorted(PRESETS))}) nor a .toml/.json args file")


# ---------------------------------------------------------------------------- the network


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
    """:class:`~inpaintbench.methods.diffusion.core.Denoiser` adapter for :class:`ADMUNet`.

    Returns ``eps`` (the first ``C`` output channels) and, with ``learn_sigma``, ``v`` (the
    other ``C``): guided-diffusion's ``LEARNED_RANGE`` output, ``frac = (v + 1) / 2`` between
    ``log beta_t`` and ``log beta~_t`` (IDDPM Eq. 15), which
    :func:`~inpaintbench.methods.diffusion.core.reverse_step` applies.

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


# ---------------------------------------------------------------------------- diffusion


def beta_schedule(name: str, steps: int) -> torch.Tensor:
    """guided-diffusion's named beta schedules, float64 ``[steps]``.

    ``"linear"``: DDPM's ``beta`` from ``1e-4`` to ``0.02`` (both scaled by ``1000 / steps`` so
    any ``T`` spans the same range); ``"cosine"``: IDDPM Eq. 17 with ``s = 0.008``, each beta
    clipped at 0.999.
    """
    if name == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
    if name == "cosine":
        def f(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - f((i + 1) / steps) / f(i / steps), 0.999) for i in range(steps)],
                            dtype=torch.float64)
    raise InputError(f"unknown noise_schedule {name!r} (linear, cosine)")


def space_timesteps(num_timesteps: int, section_counts: str | int | Sequence[int]) -> list[int]:
    """The training timesteps a respaced guided-diffusion model keeps, ascending.

    ``section_counts`` ``"250"`` (or ``[250]``): the ``T`` steps split into one section of
    which ``250`` evenly spaced steps are kept, ``round(i * (T - 1) / 249)`` (both ends
    included: ``0, 4, 8, ..., 999`` for ``T = 1000``; Python rounds halves to even, as the
    official code does). A list ``"10,15,20"`` splits ``T`` into equal sections (the first
    ``T % n`` one step longer) with that many steps each; ``"ddimN"``: the integer stride giving
    exactly ``N`` steps from 0.

    Raises:
        InputError: a section asks for more steps than it has, or no stride gives ``ddimN``.
    """
    if isinstance(section_counts, int):
        counts = [section_counts]
    elif isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            wanted = int(section_counts[4:])
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == wanted:
                    return list(range(0, num_timesteps, stride))
            raise InputError(f"no integer stride gives {wanted} of {num_timesteps} steps")
        counts = [int(c) for c in section_counts.split(",")]
    else:
        counts = [int(c) for c in section_counts]
    per, extra = divmod(num_timesteps, len(counts))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(counts):
        size = per + (1 if i < extra else 0)
        if size < count:
            raise InputError(f"cannot take {count} steps from a section of {size}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        kept.extend(start + round(j * stride) for j in range(count))
        start += size
    return sorted(set(kept))


class SpacedRespacing(Respacing):
    """guided-diffusion's respacing (``SpacedDiffusion``): respaced index ``i`` is the ``i``-th
    kept training timestep of :func:`space_timesteps`, and the network is called with that
    *training* timestep (``rescale_timesteps=False``: the official ``_WrappedModel`` maps the
    index through ``timestep_map``).

    The core's :class:`~inpaintbench.methods.diffusion.core.Respacing` keeps ``i * (T // t_T)``
    instead (diffusers' ``"leading"`` spacing, ``0, 4, ..., 996`` for ``t_T = 250``; this one
    gives ``0, 4, ..., 999``). ``alpha_bar`` is returned as a float64 0-dim tensor computed
    from float64 betas, as guided-diffusion computes its coefficients in float64 numpy: the
    core's steps then form their coefficients in float64 and multiply them into float32
    images, like ``_extract_into_tensor`` (CPU and CUDA; not MPS, which has no float64).

    Args:
        betas: float64 ``[T]`` training betas (:func:`beta_schedule`).
        section_counts: ``t_T`` as an int, or guided-diffusion's ``timestep_respacing`` string.
    """

    def __init__(self, betas: torch.Tensor, section_counts: int | str):
        betas = betas.to(torch.float64)
        self.alphas_cumprod64 = torch.cumprod(1 - betas, dim=0)
        schedule = NoiseSchedule(betas.float(), self.alphas_cumprod64.float())
        kept = space_timesteps(len(betas), section_counts)
        super().__init__(schedule, len(kept))
        self.kept = kept
        self.section_counts = section_counts

    def timestep(self, index: int) -> int:
        """The training timestep of respaced ``index`` (``>= 0``)."""
        return self.kept[index]

    def alpha_bar(self, index: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """0-dim float64 ``alpha-bar`` of respaced ``index``; 1 for ``index = -1`` (``x_0``)."""
        if index < 0:
            return torch.ones((), dtype=torch.float64, device=device)
        return self.alphas_cumprod64[self.kept[index]].to(device)


# ---------------------------------------------------------------------------- safe loading


def check_state_dict(model: nn.Module, state: Mapping[str, Any], source: str) -> None:
    """Compare ``state`` with ``model``'s parameters and buffers before anything is loaded.

    Raises:
        InputError: one line naming ``source`` and the first mismatch in the model's order: a
            key missing from the file, a shape that differs, a value that is not a floating
            tensor; then the first key the file has that the model does not.
    """
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise InputError(f"{source}: key {key!r} of the ADM architecture is missing from the file "
                             f"(first mismatch; wrong adm= preset or not an ADM checkpoint?)")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{source}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(tensor.shape):
            raise InputError(f"{source}: {key!r} has shape {list(value.shape)} in the file but "
                             f"{list(tensor.shape)} in the ADM architecture (first mismatch; wrong adm= preset?)")
        if not value.is_floating_point():
            raise InputError(f"{source}: {key!r} has dtype {value.dtype}, expected a floating tensor")
    for key in state:
        if key not in expected:
            raise InputError(f"{source}: key {key!r} in the file is not part of the ADM architecture "
                             f"(first mismatch; wrong adm= preset, e.g. class_cond or a different model?)")


def load_adm_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a guided-diffusion ``.pt`` state dict without executing anything from it.

    ``torch.load(path, map_location="cpu", weights_only=True)``: the restricted unpickler
    only builds tensors and plain containers; a pickle asking for any other callable (a
    ``__reduce__`` that would run code) is refused before it runs.

    Raises:
        MethodUnavailable: the file does not exist.
        InputError: the file is not a readable tensor checkpoint (truncated, random bytes, a
            pickle with code, a non-dict), one line naming the file.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise MethodUnavailable(f"ADM checkpoint {p} not found (download it: `inpaintbench weights` lists the URLs)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    # Any failure of the restricted unpickler or the zip reader means "not a safe checkpoint";
    # it is re-raised as one line naming the file (the cause stays chained).
    except Exception as err:  # noqa: BLE001
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{p}: not a loadable ADM checkpoint ({type(err).__name__}: {reason[:300]})") from err
    if not isinstance(state, Mapping):
        raise InputError(f"{p}: expected a state dict (a mapping of names to tensors), got {type(state).__name__}")
    return dict(state)


def load_adm(path: str | os.PathLike, adm: str | os.PathLike | Mapping[str, Any] | ADMConfig) -> ADMUNet:
    """Build :class:`ADMUNet` for ``adm`` (:func:`resolve_adm`) and load the checkpoint at
    ``path`` into it strictly (:func:`load_adm_state_dict`, :func:`check_state_dict`, then
    ``load_state_dict(strict=True)``). Returns the network in eval mode on the CPU."""
    config = resolve_adm(adm)
    state = load_adm_state_dict(path)
    model = ADMUNet(config)
    check_state_dict(model, state, str(Path(path).expanduser()))
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


def load_adm_prior(path: str | os.PathLike, adm: str | os.PathLike | Mapping[str, Any] | ADMConfig) -> DiffusionPrior:
    """A :class:`~inpaintbench.methods.diffusion.core.DiffusionPrior` of an ADM checkpoint:
    its :class:`ADMDenoiser`, the training schedule of ``adm``'s ``noise_schedule`` and
    ``diffusion_steps``, and ``files = [path]``. Use :func:`adm_respacing` for guided-diffusion's
    timestep spacing."""
    model = load_adm(path, adm)
    config = model.config
    betas = beta_schedule(config.noise_schedule, config.diffusion_steps)
    schedule = NoiseSchedule(betas.float(), torch.cumprod(1 - betas, 0).float())
    prior = DiffusionPrior(ADMDenoiser(model), schedule, [str(Path(path).expanduser())])  # type: ignore[arg-type]
    prior.adm_config = config  # type: ignore[attr-defined]
    prior.betas64 = betas  # type: ignore[attr-defined]
    return prior


def adm_respacing(config: ADMConfig, num_steps: int | str) -> SpacedRespacing:
    """guided-diffusion's respacing of ``config``'s schedule with ``num_steps`` kept steps."""
    return SpacedRespacing(beta_schedule(config.noise_schedule, config.diffusion_steps), num_steps)


def parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def resolve_model_option(weights: str | os.PathLike | None, model: str | os.PathLike | None) -> str | None:
    """The one weight source of a method given ``weights=`` and its alias ``model=``.

    Returns:
        The path / hub id as a string, or None (the method's default prior).

    Raises:
        InputError: both are given and differ.
    """
    if model is not None and weights is not None and str(model) != str(weights):
        raise InputError(f"model={str(model)!r} and weights={str(weights)!r} disagree; give one of them")
    source = model if model is not None else weights
    return None if source is None else str(source)


def load_prior(source: str | os.PathLike | None, adm: str | os.PathLike | Mapping[str, Any] | None,
               num_steps: int) -> tuple[DiffusionPrior, Respacing]:
    """The prior and respacing table a diffusion method samples with.

    * ``adm`` given: ``source`` is a guided-diffusion ``.pt`` (:func:`load_adm_prior`), and
      the table is guided-diffusion's (:class:`SpacedRespacing`, ``num_steps`` kept steps),
      so the network sees the training timesteps the official samplers give it;
    * ``adm`` None: ``source`` is a diffusers folder / hub id / None (the committed MNIST
      prior) and the table is the core's :class:`Respacing`.

    Args:
        source: the weights (``model=`` / ``weights=`` of the method).
        adm: an ADM preset name, a ``.toml``/``.json`` args file, or None.
        num_steps: ``t_T``, respaced steps.

    Raises:
        InputError: a ``.pt`` without ``adm``, ``adm`` without a file, or a bad ``num_steps``.
        MethodUnavailable: the weights are missing.
    """
    if adm is None:
        if source is not None and str(source).endswith((".pt", ".pth")):
            raise InputError(f"model={str(source)!r} is a guided-diffusion checkpoint: give adm= its architecture "
                             f"(a preset: {', '.join(sorted(PRESETS))}, or a .toml/.json args file)")
        prior = DiffusionPrior.load(source)
        return prior, Respacing(prior.schedule, num_steps)
    if source is None:
        raise InputError("adm= describes an ADM checkpoint: give model= the .pt file as well")
    config = resolve_adm(adm)
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= config.diffusion_steps:
        raise InputError(f"num_steps must be an int in [1, {config.diffusion_steps}], got {num_steps!r}")
    prior = load_adm_prior(source, config)
    return prior, adm_respacing(config, num_steps)
