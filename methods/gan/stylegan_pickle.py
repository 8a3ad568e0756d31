"""The tensors of a StyleGAN2-ADA network pickle (MAT's ``CelebA-HQ.pkl``, ``Places_512_FullData.pkl``,
FFHQ-512), read without running anything the file carries.

Such a pickle is ``pickle.dump({"G": ..., "D": ..., "G_ema": ..., "training_set_kwargs": ...})`` of
*persistent* classes (``torch_utils.persistence``): every network object is stored as
``_reconstruct_persistent_obj(meta)`` where ``meta["module_src"]`` is the Python source of the
module that defined the class, which the official loader ``exec``s. Anything can be in that
source. Here the project's one safe unpickler (:func:`inpaintbench.methods.checkpoint_io.load_pickle`)
reads it with the few globals such a file needs declared inert (:data:`INERT_GLOBALS`): the
persistent reconstructor only records ``meta`` (the source is never compiled), torch's module
classes and numpy scalars only record their state, tensors are rebuilt from their bytes; every
other global is refused with one line naming it. The wanted network's parameters and buffers
are then collected from the recorded states (``_parameters``, ``_buffers``, ``_modules``), keyed
as ``state_dict()`` would key them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from inpaintbench.methods.checkpoint_io import CheckpointError, Inert, load_pickle

__all__ = ["INERT_GLOBALS", "read_stylegan_pickle"]

#: The globals of a StyleGAN2-ADA pickle besides tensors and plain containers (``fnmatch``
#: patterns of ``"module.name"``): all become :class:`~inpaintbench.methods.checkpoint_io.Inert`.
INERT_GLOBALS = (
    "torch_utils.persistence._reconstruct_persistent_obj",  # called with meta: kept as data
    "dnnlib.util.EasyDict",  # training_set_kwargs
    "torch.nn.modules.*.[A-Z]*",  # ModuleList, Softmax...: only their state dicts are read
    "copyreg._reconstructor", "builtins.object",  # how protocols 0 and 1 rebuild those modules
    "numpy.*",  # scalars and dtypes of the augment settings
)
_PERSISTENT = INERT_GLOBALS[0]


def _state(obj: Any) -> dict:
    """The ``__dict__`` a placeholder was given: by ``BUILD``, or (a persistent object) in its
    reconstructor's ``meta["state"]``."""
    if not isinstance(obj, Inert):
        return {}
    if obj.global_name == _PERSISTENT:
        meta = obj.args[0] if obj.args else None
        state = meta.get("state") if isinstance(meta, dict) else None
    else:
        state = obj.state
    return state if isinstance(state, dict) else {}


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor], depth: int = 0) -> None:
    if depth > 64:
        raise CheckpointError("network nested deeper than 64 levels")
    state = _state(obj)
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if isinstance(value, torch.Tensor):
                out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _collect(child, f"{prefix}{name}.", out, depth + 1)


def read_stylegan_pickle(path: str | os.PathLike, network: str = "G_ema") -> dict[str, torch.Tensor]:
    """The parameters and buffers of ``network`` (default the generator's moving average
    ``G_ema``, which the authors' ``generate_image.py`` runs) in a StyleGAN2-ADA pickle, keyed as
    the network's ``state_dict()``; no code of the file is compiled or run.

    Raises:
        CheckpointError: one line: a global outside the allow-list (named), not a pickle,
            no ``network`` entry, or no tensors in it.
    """
    path = Path(path)
    top = load_pickle(path, inert=INERT_GLOBALS)
    if not isinstance(top, dict) or network not in top:
        keys = sorted(top) if isinstance(top, dict) else type(top).__name__
        raise CheckpointError(f"{path} has no {network!r} network (found {keys})")
    tensors: dict[str, torch.Tensor] = {}
    _collect(top[network], "", tensors)
    if not tensors:
        raise CheckpointError(f"{path}: {network!r} holds no tensors")
    return tensors
