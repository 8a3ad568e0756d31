"""What a result was measured with: code version, device, library versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

_PACKAGES = ("inpaintbench", "torch", "torchvision", "numpy", "scikit-image", "opencv-python-headless",
             "lpips", "diffusers", "tensorflow", "tensorflow-cpu")


def git_commit(start: Path | None = None) -> str | None:
    """The commit hash of the checkout holding this package (``-dirty`` if modified), or None."""
    here = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def device_name(device: torch.device | str) -> str:
    """A human-readable name of ``device``: the GPU model, or the CPU model and core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {cpu_model()} ({torch.get_num_threads()} threads)"


def timing_settings() -> dict[str, Any]:
    """What a timing depends on besides the code: torch's version, threads and CPU kernel level,
    ``$OMP_NUM_THREADS``, the GPU, and the machine's load average (1, 5, 15 min) now."""
    return {
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def library_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers (absent ones omitted)."""
    found = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; any other torch device string as given."""
    from inpaintbench.core.errors import InputError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as err:
        raise InputError(f"unknown device {name!r} ({err}); use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r} requested but CUDA is not available here; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                             "device(s); use cuda:0 or auto")
        return device
    backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
    available = getattr(backend, "is_available", None)
    if not callable(available) or not available():
        raise InputError(f"device {name!r} requested but {device.type} is not available here; "
                         "use --device cpu or auto")
    return device
