"""MAT's network pickles (StyleGAN2-ADA persistent classes that embed and run their source when
unpickled): the suite reads the generator's tensors without running any of it.

The pickles are made here with the official ``torch_utils.persistence`` of
``../shared/reference/mat`` (a test oracle only), around a small network whose embedded source
writes a file when executed -- as the official loader does."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from inpaintbench.methods.gan.loaders import CheckpointError
from inpaintbench.methods.gan.stylegan_pickle import read_stylegan_pickle

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mat"
_REFERENCE_TOPS = ("torch_utils", "dnnlib", "hostile_net")

HOSTILE_SOURCE = textwrap.dedent('''
    import os
    import torch
    from torch_utils import persistence

    # Runs whenever this source is executed: by the official loader, never by the suite's.
    if os.environ.get("GAN_TEST_TARGET"):
        open(os.environ["GAN_TEST_TARGET"], "w").write("ran")

    @persistence.persistent_class
    class Child(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(3, 2))
            self.register_buffer("noise_const", torch.randn(4, 4))

    @persistence.persistent_class
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Child(), torch.nn.Linear(2, 2)])
            self.softmax = torch.nn.Softmax(dim=-1)
            self.scale = torch.nn.Parameter(torch.ones([]))
''')


@pytest.fixture
def reference_path(tmp_path):
    """``../shared/reference/mat`` and a folder with the hostile module on ``sys.path`` for the
    test; their modules are removed afterwards."""
    if not (REFERENCE / "torch_utils" / "persistence.py").is_file():
        pytest.skip(f"{REFERENCE} is absent (the official MAT code lives in ../shared/reference beside the checkout)")
    (tmp_path / "hostile_net.py").write_text(HOSTILE_SOURCE)
    before = set(sys.modules)
    sys.path[:0] = [str(REFERENCE), str(tmp_path)]
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(REFERENCE))
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in _REFERENCE_TOPS:
                del sys.modules[name]


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_the_generator_tensors_are_read_and_the_embedded_source_never_runs(reference_path, monkeypatch, protocol):
    net_module = importlib.import_module("hostile_net")
    dnnlib = importlib.import_module("dnnlib")
    g_ema, d = net_module.Net(), net_module.Net()
    path = reference_path / "network.pkl"
    with open(path, "wb") as file:
        pickle.dump({"G": net_module.Net(), "D": d, "G_ema": g_ema,
                     "training_set_kwargs": dnnlib.EasyDict(resolution=512, xflip=False)}, file, protocol=protocol)

    target = reference_path / "ran.txt"
    monkeypatch.setenv("GAN_TEST_TARGET", str(target))
    tensors = read_stylegan_pickle(path)
    assert not target.exists()
    expected = g_ema.state_dict()
    assert list(tensors) == list(expected)  # blocks.0.weight, blocks.0.noise_const, blocks.1.*, scale
    assert all(torch.equal(tensors[k], expected[k]) for k in expected)
    assert torch.equal(read_stylegan_pickle(path, "D")["blocks.1.weight"], d.state_dict()["blocks.1.weight"])

    # The file is hostile indeed: in a fresh process (this one has the module cached), the
    # plain unpickler runs the embedded source.
    code = f"import pickle, sys; sys.path.insert(0, {str(REFERENCE)!r}); pickle.load(open({str(path)!r}, 'rb'))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    assert target.read_text() == "ran"


def test_other_globals_are_refused_with_one_line_and_nothing_runs(tmp_path):
    target = tmp_path / "pwned.txt"

    class Payload:
        def __reduce__(self):
            return (open, (str(target), "w"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Payload()}))
    with pytest.raises(CheckpointError, match=r"global io\.open is not allowed") as err:
        read_stylegan_pickle(path)
    assert "\n" not in str(err.value) and not target.exists()

    (tmp_path / "empty.pkl").write_bytes(pickle.dumps({"D": {}}))
    with pytest.raises(CheckpointError, match=r"no 'G_ema' network"):
        read_stylegan_pickle(tmp_path / "empty.pkl")
    (tmp_path / "garbage.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError):
        read_stylegan_pickle(tmp_path / "garbage.pkl")
