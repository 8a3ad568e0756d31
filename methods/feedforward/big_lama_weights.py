"""Reading Big LaMa's weights: the official PyTorch Lightning ``best.ckpt`` (its ``generator.*``
tensors, read without running its pickles) or a ``.safetensors`` file of the generator, loaded
strictly into :class:`~inpaintbench.methods.feedforward.big_lama_net.BigLamaGenerator`.
The safe reading itself is :mod:`inpaintbench.methods.checkpoint_io`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from inpaintbench.methods.checkpoint_io import ANY_GLOBAL, CheckpointError, read_checkpoint_tensors
from inpaintbench.methods.feedforward.big_lama_net import BIG_LAMA_ARCH, BigLamaGenerator


def read_lama_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a LaMa weights file (:func:`~inpaintbench.methods.checkpoint_io.read_checkpoint_tensors`
    with every foreign global inert: a Lightning ``best.ckpt`` pickles hyper-parameters,
    callbacks and omegaconf objects of arbitrary classes beside the state dict)."""
    return read_checkpoint_tensors(path, inert=(ANY_GLOBAL,))


def generator_state(tensors: dict[str, torch.Tensor], path: str | os.PathLike = "<memory>") -> dict[str, torch.Tensor]:
    """The generator's tensors of a LaMa checkpoint, keys relative to :class:`BigLamaGenerator`:
    a Lightning ``state_dict`` (``generator.model.*``, the discriminator and losses dropped)
    or a bare generator state dict (``model.*``).

    Raises:
        CheckpointError: neither kind of key is present.
    """
    if any(k.startswith("generator.") for k in tensors):
        return {k.removeprefix("generator."): v for k, v in tensors.items() if k.startswith("generator.")}
    if any(k.startswith("model.") for k in tensors):
        return dict(tensors)
    first = next(iter(tensors))
    raise CheckpointError(f"{path} holds no LaMa generator weights: no 'generator.model.*' or 'model.*' keys "
                          f"(first key {first!r})")


def load_big_lama_generator(path: str | os.PathLike, arch: dict[str, Any] | None = None) -> BigLamaGenerator:
    """A :class:`BigLamaGenerator` (``arch``, default :data:`BIG_LAMA_ARCH`) with the weights of
    ``path`` loaded strictly, in eval mode, on the CPU.

    Raises:
        CheckpointError: the file is unreadable, or its keys / shapes differ from the
            architecture's; the message names the file and the first mismatched key.
    """
    net = BigLamaGenerator(**(arch or BIG_LAMA_ARCH))
    state = generator_state(read_lama_checkpoint(path), path)
    expected = net.state_dict()
    for key, value in expected.items():  # in module order: the first difference is the telling one
        if key not in state:
            raise CheckpointError(f"{path} does not match the Big LaMa generator: key {key!r} is missing")
        if state[key].shape != value.shape:
            raise CheckpointError(f"{path} does not match the Big LaMa generator: {key!r} has shape "
                                  f"{list(state[key].shape)}, expected {list(value.shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"{path} does not match the Big LaMa generator: unexpected key {extra[0]!r}")
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)
