"""The architecture and diffusion arguments of a guided-diffusion (ADM) checkpoint.

* :class:`ADMConfig`: guided-diffusion's ``create_model`` arguments and the diffusion arguments
  of ``create_gaussian_diffusion`` the checkpoint was trained with;
* :data:`PRESETS`: those of the public checkpoints (RePaint's CelebA-HQ and Places2 models,
  OpenAI's unconditional ImageNet model, ILVR's FFHQ model);
* :func:`load_args_file` / :func:`resolve_adm`: a preset name, a ``.toml``/``.json`` args file or
  a mapping to an :class:`ADMConfig` (the ``adm=`` option of the diffusion methods).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from inpaintbench.core.errors import InputError

__all__ = ["ADMConfig", "PRESETS", "load_args_file", "resolve_adm"]


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
