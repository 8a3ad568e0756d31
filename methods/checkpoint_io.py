"""Reading the tensors of a checkpoint without running anything it contains.

A ``torch.save`` file or a plain pickle is a program: unpickling calls whatever globals it
names (``exec`` included). Official checkpoints of inpainting models are such files and name
many classes besides tensors: PyTorch Lightning pickles hyper-parameters, callbacks and
omegaconf objects (LaMa's ``best.ckpt``); StyleGAN-style code bases (MAT, MI-GAN's teacher)
pickle whole networks as "persistent" classes that carry their own source code. This module
reads the tensors and leaves everything else inert:

* :func:`read_checkpoint_tensors` -- ``{key: tensor}`` of a ``.safetensors`` file or a
  ``torch.save`` checkpoint (a Lightning checkpoint's ``state_dict``);
* :func:`load_pickle` -- the whole object of a ``torch.save`` zip or a plain pickle stream
  (``pickle.dump``, StyleGAN's ``network-snapshot.pkl``), with tensors rebuilt and the globals
  a caller names turned into :class:`Inert` placeholders whose arguments and state can be read;
* :func:`is_torchscript` -- whether a zip is a TorchScript archive (which runs code on load).

The unpickler's rule: plain containers, tensors and storages are rebuilt by this module's own
functions; a global matching one of the caller's ``inert`` patterns (``fnmatch`` on
``"module.name"``; :data:`ANY_GLOBAL` matches all) becomes an :class:`Inert` subclass; any
other global is refused (:class:`CheckpointError` naming it). No constructor, ``__reduce__``
callable or ``__setstate__`` of the file's classes ever runs.
"""

from __future__ import annotations

import _compat_pickle
import fnmatch
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any, ClassVar, Iterable

import torch

from inpaintbench.core.errors import InputError

#: The ``inert`` pattern matching every global: all foreign objects become placeholders
#: (what a Lightning checkpoint's hyper-parameters and callbacks need).
ANY_GLOBAL = "*"


class CheckpointError(InputError):
    """A weights file that exists but is not a readable checkpoint of the expected kind (one
    line naming the file and what is wrong). Bad input, not a missing extra: a run that names
    it stops before writing anything (exit 2); a file that does not exist is
    :class:`~inpaintbench.core.errors.MethodUnavailable` instead."""


class Inert:
    """Stands in for a pickled global the caller declared inert: calling it (``REDUCE``,
    ``NEWOBJ``), ``BUILD``, ``SETITEM`` and ``APPEND`` only record their arguments; nothing of
    the named class ever runs.

    Attributes (read them to dig tensors out of e.g. a StyleGAN persistent object, whose
    reconstructor is called with one ``meta`` dict holding ``"state"``):
        global_name: ``"module.name"`` of the global it replaces (a class attribute).
        args: the positional arguments it was called with.
        state: what ``BUILD`` gave it (``None`` when nothing).
        items: what ``SETITEM`` / ``APPEND`` / ``extend`` gave it, in order.
    """

    global_name: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "Inert":
        obj = object.__new__(cls)
        obj.__dict__.update(args=args, state=None, items=[])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__["items"].append((key, value))

    def append(self, value: Any) -> None:
        self.__dict__["items"].append(value)

    def extend(self, values: Any) -> None:
        self.__dict__["items"].extend(values)

    def __repr__(self) -> str:
        return f"<inert {self.global_name}>"


# ``torch.<Name>Storage`` -> dtype, the storage types torch.save names in persistent ids.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    # storage: the flat tensor of one record; the view is copied so the records' buffers go.
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    return data


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1"); no other codec is allowed.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


def _storage_from_bytes(data: bytes) -> torch.Tensor:
    # A storage pickled by plain pickle (TypedStorage.__reduce__) is a nested torch.save of the
    # storage alone: read with the weights-only loader, returned as the flat tensor
    # _rebuild_tensor expects.
    storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"a pickled storage holds {type(storage).__name__}, not a storage")
    dtype = storage.dtype if isinstance(storage, torch.TypedStorage) else torch.uint8
    return torch.empty(0, dtype=dtype).set_(storage)


class _TensorUnpickler(pickle.Unpickler):
    """Rebuilds plain containers and tensors with the functions above; globals matching the
    ``inert`` patterns become :class:`Inert` subclasses; every other global is refused."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): dict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
        ("_codecs", "encode"): _latin1_bytes,
    }

    def __init__(self, file: Any, inert: Iterable[str], archive: zipfile.ZipFile | None = None,
                 prefix: str = ""):
        super().__init__(file)
        self.inert = tuple(inert)
        self.archive, self.prefix = archive, prefix
        self.storages: dict[str, torch.Tensor] = {}
        self.placeholders: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles (torch.save's default) name Python 2 modules ("__builtin__"):
        # map them as pickle's own find_class does, so patterns see today's names.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        qualified = f"{module}.{name}"
        if not any(fnmatch.fnmatchcase(qualified, pattern) for pattern in self.inert):
            raise pickle.UnpicklingError(f"global {qualified} is not allowed")
        self.placeholders.add(qualified)
        return type(name, (Inert,), {"global_name": qualified})

    def persistent_load(self, pid: Any) -> torch.Tensor:
        # torch.save's persistent id: ("storage", storage type, key, location, numel).
        if self.archive is None or not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                                        and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        dtype, key = pid[1].dtype, str(pid[2])
        if key not in self.storages:
            raw = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
            self.storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]


def _read_torch_zip(path: Path, inert: Iterable[str]) -> Any:
    with zipfile.ZipFile(path) as archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointError(f"{path} is a zip file but not a torch.save checkpoint (no <name>/data.pkl)")
        prefix = pkl[0].split("/")[0]
        order = f"{prefix}/byteorder"
        if order in archive.namelist() and archive.read(order).strip() != sys.byteorder.encode():
            raise CheckpointError(f"{path} was saved {archive.read(order).decode()}-endian; this machine is {sys.byteorder}")
        with archive.open(pkl[0]) as file:
            return _TensorUnpickler(file, inert, archive, prefix).load()


def _first_line(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text.splitlines()[0][:120] if text else ''}"


def is_torchscript(path: str | os.PathLike) -> bool:
    """True when ``path`` is a TorchScript archive (``torch.jit.save``: it carries the model's
    code in ``<name>/code/``; ``torch.save`` archives do not). Reads only the zip directory."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def load_pickle(path: str | os.PathLike, *, inert: Iterable[str] = ()) -> Any:
    """The object pickled in ``path``, read without executing it.

    Args:
        path: a ``torch.save`` zip archive (its ``data.pkl``, storages from the archive) or a
            plain pickle stream (``pickle.dump``; tensors pickled this way carry their storage
            as a nested ``torch.save``, read with ``torch.load(weights_only=True)``).
        inert: ``fnmatch`` patterns of ``"module.name"`` globals to replace by :class:`Inert`
            placeholders, e.g. ``("torch_utils.persistence._reconstruct_persistent_obj",
            "numpy.*")`` for a StyleGAN pickle, or ``(ANY_GLOBAL,)``.

    Returns:
        The unpickled object: dicts (``OrderedDict`` as ``dict``), lists, tuples, sets,
        scalars, strings, CPU tensors (parameters as plain tensors) and placeholders.

    Raises:
        CheckpointError: a global outside the allow-list and ``inert`` (the message names it),
            a TorchScript or legacy-format torch file, or a damaged file.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            if is_torchscript(path):
                raise CheckpointError(f"{path} is a TorchScript archive, not a checkpoint of tensors")
            return _read_torch_zip(path, inert)
        with open(path, "rb") as file:
            return _TensorUnpickler(file, inert).load()
    except (pickle.UnpicklingError, KeyError, EOFError, ValueError, RuntimeError, TypeError,
            AttributeError, IndexError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path} could not be read as a pickle of tensors ({_first_line(err)})") from err


def read_checkpoint_tensors(path: str | os.PathLike, *, inert: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, without executing anything it contains.

    * ``.safetensors``: read as is;
    * a ``torch.save`` file (e.g. LaMa's PyTorch Lightning ``best.ckpt``): first
      ``torch.load(weights_only=True)``; when torch refuses a global outside its allow-list,
      a zip archive is read again with :func:`load_pickle` and the caller's ``inert`` patterns
      (Big LaMa passes :data:`ANY_GLOBAL`: Lightning pickles hyper-parameters, callbacks,
      omegaconf objects...); a global matching no pattern is refused.

    Returns:
        ``{key: tensor}``: the checkpoint's ``state_dict`` when it has one (Lightning), else the
        tensors of the top-level dict; nested keys are not flattened.

    Raises:
        CheckpointError: not a safetensors / torch.save file, a refused global, or no tensors.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from err
    if not zipfile.is_zipfile(path):
        # torch.save has written zip archives since torch 1.6 (LaMa's checkpoints are zips); the
        # legacy format is still tried with the restricted loader, refusals become one line.
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for garbage; all mean "not a checkpoint"
            raise CheckpointError(f"{path} is neither a .safetensors file nor a torch.save checkpoint "
                                  f"({_first_line(err)})") from err
    else:
        if is_torchscript(path):
            raise CheckpointError(f"{path} is a TorchScript archive, not a checkpoint of tensors")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # weights_only refused a global: read the tensors, the caller's inert globals inert.
            try:
                obj = _read_torch_zip(path, inert)
            except (pickle.UnpicklingError, KeyError, EOFError, ValueError, RuntimeError) as err:
                raise CheckpointError(f"{path} could not be read as a torch.save checkpoint "
                                      f"({type(err).__name__}: {str(err)[:120]})") from err
        except Exception as err:  # a damaged archive: torch raises RuntimeError and others
            raise CheckpointError(f"{path} could not be read as a torch.save checkpoint ({_first_line(err)})") from err
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors (expected a state dict or a Lightning checkpoint)")
    return tensors
