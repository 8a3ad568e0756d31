"""The tensors of a StyleGAN2-ADA network pickle (MAT's ``CelebA-HQ.pkl``, ``Places_512_FullData.pkl``,
FFHQ-512), read without running anything the file carries.

Such a pickle is ``pickle.dump({"G": ..., "D": ..., "G_ema": ..., "training_set_kwargs": ...})`` of
*persistent* classes (``torch_utils.persistence``): every network object is stored as
``_reconstruct_persistent_obj(meta)`` where ``meta["module_src"]`` is the Python source of the
module that defined the class, which the official loader ``exec``s. Anything can be in that
source. Here:

* the unpickler maps the few globals such a file needs to inert stand-ins -- the persistent
  reconstructor keeps ``meta`` as data (the source is never compiled), torch's module classes
  (``ModuleList``, ``Softmax``...) become empty placeholders that receive their state dict,
  ``EasyDict`` is a ``dict``, tensors are rebuilt from their bytes with
  ``torch.load(weights_only=True)`` -- and refuses every other global with one line naming it;
* the wanted network's parameters and buffers are collected from the placeholders' state
  (``_parameters``, ``_buffers``, ``_modules``), keyed as ``state_dict()`` would key them.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from inpaintbench.methods.checkpoint_io import CheckpointError

__all__ = ["read_stylegan_pickle"]


class _Persistent:
    """A persistent object of the pickle: ``meta`` (class name, source, state) as plain data."""

    def __init__(self, meta: Any):
        self.meta = meta

    def state(self) -> dict:
        state = self.meta.get("state") if isinstance(self.meta, dict) else None
        return state if isinstance(state, dict) else {}


class _TorchModule:
    """A ``torch.nn`` container or layer of the pickle (``NEWOBJ`` or ``copyreg._reconstructor``,
    then ``BUILD``): a subclass per pickled class name keeps only the state dict; none of the
    named class's code runs."""

    _global = "?"

    def __init__(self, *_: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state if isinstance(state, dict) else {}

    def state(self) -> dict:
        return self.__dict__.get("_state", {})


class _NumpyScalar:
    """A numpy scalar / dtype of the pickle (``training_set_kwargs``, augment settings): kept inert."""

    def __init__(self, *args: Any):
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    # copyreg._reconstructor(cls, object, None) (protocols 0-1): only for the placeholders.
    if not (isinstance(cls, type) and issubclass(cls, _TorchModule)):
        raise pickle.UnpicklingError(f"copyreg._reconstructor of {cls!r} is not allowed")
    return object.__new__(cls)


def _encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


def _load_storage(data: bytes) -> torch.Tensor:
    # A storage pickles as torch.storage._load_from_bytes(<legacy torch.save bytes>); those are
    # read with torch's restricted loader and returned as a flat tensor over the storage.
    storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError("a storage record holds something else than a storage")
    return torch.empty(0, dtype=storage.dtype).set_(storage)


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    return data


class _StyleGANUnpickler(pickle.Unpickler):
    _ALLOWED: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _Persistent,
        ("dnnlib.util", "EasyDict"): dict,
        ("collections", "OrderedDict"): dict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "object"): object,
        ("_codecs", "encode"): _encode,
        ("torch.storage", "_load_from_bytes"): _load_storage,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("numpy.core.multiarray", "scalar"): _NumpyScalar,
        ("numpy._core.multiarray", "scalar"): _NumpyScalar,
        ("numpy", "dtype"): _NumpyScalar,
    }

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles name Python 2's modules (pickle's fix_imports).
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module.startswith("torch.nn.modules.") and name[:1].isupper():
            return type(name, (_TorchModule,), {"_global": f"{module}.{name}"})
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a network pickle")


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor], depth: int = 0) -> None:
    if depth > 64:
        raise CheckpointError("network nested deeper than 64 levels")
    state = obj.state() if isinstance(obj, (_Persistent, _TorchModule)) else {}
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
    try:
        with open(path, "rb") as file:
            top = _StyleGANUnpickler(file).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, RuntimeError) as err:
        raise CheckpointError(f"{path} could not be read as a network pickle ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:160] if str(err) else ''})") from err
    if not isinstance(top, dict) or network not in top:
        keys = sorted(top) if isinstance(top, dict) else type(top).__name__
        raise CheckpointError(f"{path} has no {network!r} network (found {keys})")
    tensors: dict[str, torch.Tensor] = {}
    _collect(top[network], "", tensors)
    if not tensors:
        raise CheckpointError(f"{path}: {network!r} holds no tensors")
    return tensors
