"""inpaintbench.methods.checkpoint_io: checkpoints are read, never run.

Each hostile file below carries a trap (unpickling it with the standard loader writes a
file); every test checks both that the safe reader did not spring it and that the trap is
real (an unrestricted load does spring it), so the assertions could fail.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import pytest
import torch

from inpaintbench.methods.checkpoint_io import (
    ANY_GLOBAL,
    CheckpointError,
    Inert,
    is_torchscript,
    load_pickle,
    read_checkpoint_tensors,
)


class _WritesAFile:
    """Unpickling this runs ``exec``, which writes ``target``: what a hostile checkpoint does."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('pwned')",))


def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is pickled
    raise AssertionError("never called by the safe reader")


class _Persistent:
    """Pickles like StyleGAN's ``torch_utils.persistence`` classes: a reconstructor global
    called with a ``meta`` dict holding the class's source code and its state."""

    def __init__(self, state: dict):
        self.state = state

    def __reduce__(self):
        meta = {"type": "class", "version": 6, "module_src": "import os\nos.system('echo pwned')",
                "class_name": "Generator", "state": self.state}
        return (_reconstruct_persistent_obj, (meta,))


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
_PERSISTENT = "torch_utils.persistence._reconstruct_persistent_obj"


def test_a_torch_zip_with_a_hostile_global_is_refused_unless_declared_inert(tmp_path):
    target = tmp_path / "pwned.txt"
    weights = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3, dtype=torch.float16)}
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": weights, "hyper_parameters": _WritesAFile(target)}, path)

    with pytest.raises(CheckpointError, match=r"best\.ckpt.*builtins\.exec is not allowed") as err:
        read_checkpoint_tensors(path)
    assert "\n" not in str(err.value)
    tensors = read_checkpoint_tensors(path, inert=(ANY_GLOBAL,))
    assert not target.exists()
    assert set(tensors) == {"w", "b"} and all(torch.equal(tensors[k], v) for k, v in weights.items())
    assert tensors["b"].dtype == torch.float16

    obj = load_pickle(path, inert=("builtins.exec",))
    assert isinstance(obj["hyper_parameters"], Inert) and obj["hyper_parameters"].global_name == "builtins.exec"
    assert not target.exists()
    torch.load(path, weights_only=False)  # the trap is real
    assert target.read_text() == "pwned"


def test_a_stylegan_style_pickle_gives_its_tensors_through_inert_persistent_objects(tmp_path, monkeypatch):
    weights = {"synthesis.b4.conv1.weight": torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0)),
               "mapping.fc0.bias": torch.arange(5, dtype=torch.float64)[1::2]}  # a strided view
    target = tmp_path / "pwned.txt"
    path = tmp_path / "network-snapshot.pkl"
    # Pickling needs the reconstructor importable under StyleGAN's name; reading must not.
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    with open(path, "wb") as f:
        pickle.dump({"G_ema": _Persistent(weights), "augment_pipe": _WritesAFile(target)}, f)

    with pytest.raises(CheckpointError, match=r"network-snapshot\.pkl.*torch_utils\.persistence\._reconstruct_persistent_obj is not allowed"):
        load_pickle(path)
    with pytest.raises(CheckpointError, match=r"builtins\.exec is not allowed"):
        load_pickle(path, inert=("torch_utils.persistence.*",))  # exec stays refused
    obj = load_pickle(path, inert=(_PERSISTENT, "builtins.exec"))
    assert not target.exists()
    g = obj["G_ema"]
    assert isinstance(g, Inert) and g.global_name == _PERSISTENT
    state = g.args[0]["state"]
    assert set(state) == set(weights)
    for key, value in weights.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key
    # The trap is real: the standard unpickler runs exec.
    pickle.loads(pickle.dumps(_WritesAFile(target)))
    assert target.read_text() == "pwned"


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_garbage_and_torchscript_give_one_line(tmp_path):
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(CheckpointError, match="junk.pkl") as err:
        load_pickle(junk)
    assert "\n" not in str(err.value)

    class Scripted(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1

    path = tmp_path / "model.pt"
    torch.jit.script(Scripted()).save(str(path))
    assert is_torchscript(path)
    with pytest.raises(CheckpointError, match="TorchScript archive"):
        load_pickle(path, inert=(ANY_GLOBAL,))
    with pytest.raises(CheckpointError, match="TorchScript archive"):
        read_checkpoint_tensors(path, inert=(ANY_GLOBAL,))

