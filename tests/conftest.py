"""Shared test fixtures: where ../shared is, and small deterministic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests never download model weights (Stable Diffusion alone is ~4 GB): hub ids resolve from
# the local cache or the method reports itself unavailable.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_WEIGHTS = SHARED / "weights"


def require_shared(path: Path) -> Path:
    """Skip the calling test, with the reason, when a ../shared path is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent (real data/weights live in ../shared beside the checkout)")
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tests run torch on one thread: tiny tensors gain nothing from two, and on a busy
    2-core machine thread barriers made tiny UNet calls up to 80x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (the test is skipped with the reason when it is absent)."""
    return require_shared(SHARED_DATA)


@pytest.fixture
def lpips_weights_env(monkeypatch) -> None:
    """Point LPIPS at ``../shared/weights/lpips`` when present; otherwise LPIPS is unavailable."""
    if SHARED_WEIGHTS.exists():
        monkeypatch.setenv("INPAINTBENCH_LPIPS_WEIGHTS", str(SHARED_WEIGHTS / "lpips"))


@pytest.fixture
def digits() -> torch.Tensor:
    """Four real MNIST test digits from the embedded sample: float32 [4, 1, 28, 28] in [0, 1]."""
    from inpaintbench.datasets.sample import EmbeddedMNIST

    data = EmbeddedMNIST()
    return torch.stack([data[i].image for i in range(4)])


@pytest.fixture
def box_mask() -> torch.Tensor:
    """A centred 12x12 hole in 28x28 images: bool [4, 1, 28, 28]."""
    mask = torch.zeros(4, 1, 28, 28, dtype=torch.bool)
    mask[:, :, 8:20, 8:20] = True
    return mask
