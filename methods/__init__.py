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
