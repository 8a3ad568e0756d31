"""Learned methods: diffusion samplers, feed-forward networks, wrappers, and their training.

Subpackages: ``diffusion`` (the one diffusion core, DDPM prior, RePaint, ILVR, Stable
Diffusion), ``feedforward`` (LaMa-style FFC, Big LaMa, the TensorFlow GAN, the mask
predictor), ``wrappers`` (methods built around another method), ``training`` (the one
training loop and its command).
"""

from pathlib import Path

#: Committed weights of the methods this project trained (one folder per model).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Training configs (TOML) of those models.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def resolve_weights(value: "str | Path | None", default: Path) -> "str | Path":
    """Where a method's weights are: ``default`` for None, a committed model by folder name
    (``"ddpm-celeba32"`` is ``WEIGHTS_DIR / "ddpm-celeba32"``), else ``value`` as given (a
    path, or a hub id the loader resolves).

    The committed names keep suite files portable: the config records the name, not a path
    that depends on where the package is installed.
    """
    if value is None:
        return default
    text = str(value)
    if "/" not in text and "\\" not in text and (WEIGHTS_DIR / text).is_dir():
        return WEIGHTS_DIR / text
    return value
