"""The torch side of the suite's one training loop: every torch learned method trains here.

A method describes *what* to train as a :class:`TrainTask` (its modules, its loss, how to
export the result); :func:`train` runs it: :class:`TorchBackend` does one AdamW optimizer over
all modules, learning-rate warm-up, gradient clipping, EMA copies and checkpoints that a rerun
resumes from exactly; the loop shell (:func:`inpaintbench.methods.training.shell.run_loop`,
shared with the TensorFlow GAN) does the seeded batches, the step loop, the loss log, the
progress bar, the cadence and the run summary.

Layout of ``out_dir`` after a run::

    checkpoint/modules.safetensors   latest trained weights ("<module>.<param>" keys)
    checkpoint/ema.safetensors       latest EMA weights (when ema_decay is set)
    checkpoint/state.pt              optimizer + step + RNG state (torch.save, plain tensors)
    losses.jsonl                     one JSON line per logged step
    final/                           task.export(...) of the EMA (or plain) modules
    train_config.json                the TrainConfig, the task's config and a run summary
"""

from __future__ import annotations

import copy
import math
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError
# TrainConfig and SeededBatches are imported from here too (tests, configs' comments).
from inpaintbench.methods.training.shell import CHECKPOINT_DIR, SeededBatches, TrainConfig, run_loop  # noqa: F401
from inpaintbench.core.seeding import derive_seed

MODULES_FILE = "modules.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"


@runtime_checkable
class TrainTask(Protocol):
    """What a torch learned method provides to :func:`train`."""

    def modules(self) -> dict[str, torch.nn.Module]:
        """The trained modules, by name (the same objects on every call)."""
        ...

    def loss(
        self, images: torch.Tensor, step: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of one batch and extra numbers to log.

        ``images``: float32 ``[B, C, H, W]`` in ``[0, 1]`` on the training device; every
        random draw (masks, noise, timesteps) comes from ``generator`` (on that device).
        """
        ...

    def export(self, modules: dict[str, torch.nn.Module], out_dir: Path) -> None:
        """Write the final weights (safetensors / save_pretrained) of ``modules`` to ``out_dir``."""
        ...


def _flat_state(modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value.detach().to("cpu").contiguous().clone()
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }


def _load_flat_state(modules: Mapping[str, torch.nn.Module], flat: Mapping[str, torch.Tensor]) -> None:
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)})


class TorchBackend:
    """:class:`~inpaintbench.methods.training.shell.TrainBackend` of a torch :class:`TrainTask`.

    Moves ``task.modules()`` to ``config.device``, builds one AdamW over all their trainable
    parameters, EMA copies (when ``config.ema_decay`` is set) and the task's generator, seeded
    from ``config.seed``; the checkpoint holds the weights, the EMA weights, the optimizer
    state, the step and that generator's state, so a resumed run equals an uninterrupted one
    (on the same device and thread count).
    """

    loss_keys = ("loss",)

    def __init__(self, task: TrainTask, config: TrainConfig):
        self.task, self.config = task, config
        self.device = torch.device(config.device)
        self.modules = task.modules()
        for module in self.modules.values():
            module.to(self.device).train()
        self.params = [p for m in self.modules.values() for p in m.parameters() if p.requires_grad]
        if not self.params:
            raise InputError("the task has no trainable parameters")
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.ema = None
        if config.ema_decay is not None:
            self.ema = {name: copy.deepcopy(m).eval().requires_grad_(False) for name, m in self.modules.items()}
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(derive_seed(config.seed, "train-task-generator"))

    def load_checkpoint(self, ckpt_dir: Path) -> int | None:
        """Restore weights, EMA, optimizer and generator from ``ckpt_dir``; its step, or None."""
        if not (ckpt_dir / STATE_FILE).exists():
            return None
        device = str(self.device)
        try:
            state = torch.load(ckpt_dir / STATE_FILE, map_location=self.device, weights_only=True)
            _load_flat_state(self.modules, load_file(str(ckpt_dir / MODULES_FILE), device=device))
            if self.ema is not None:
                _load_flat_state(self.ema, load_file(str(ckpt_dir / EMA_FILE), device=device))
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            return int(state["step"])
        except Exception as err:  # noqa: BLE001 - unpickling, zip, safetensors, key and shape errors alike
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise InputError(
                f"cannot resume from {ckpt_dir / STATE_FILE}: the checkpoint is corrupt or from another "
                f"config ({type(err).__name__}: {first}); restore it, or start over with --no-resume "
                "(or another --out)") from err

    def step(self, step: int, images: torch.Tensor) -> dict[str, float]:
        """One AdamW step on ``task.loss`` (clipped to ``grad_clip``), then the EMA update.
        Returns ``loss``, the task's extras and ``grad_norm`` (the pre-clipping global L2
        norm; NaN without clipping)."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        loss, extras = self.task.loss(images.to(self.device), step, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = (
            float(torch.nn.utils.clip_grad_norm_(self.params, config.grad_clip))
            if config.grad_clip is not None else math.nan
        )
        self.optimizer.step()
        if self.ema is not None:
            self._update_ema(config.ema_decay_at(step))
        return {"loss": float(loss.detach()), **{k: float(v) for k, v in extras.items()}, "grad_norm": grad_norm}

    def _update_ema(self, decay: float) -> None:
        with torch.no_grad():
            for name, module in self.modules.items():
                ema_params = dict(self.ema[name].named_parameters())
                for key, param in module.named_parameters():
                    ema_params[key].lerp_(param, 1.0 - decay)
                # Buffers (e.g. norm statistics) are not averaged: the EMA takes the latest ones.
                ema_buffers = dict(self.ema[name].named_buffers())
                for key, buf in module.named_buffers():
                    ema_buffers[key].copy_(buf)

    def save_checkpoint(self, ckpt_dir: Path, step: int) -> None:
        """Write ``modules.safetensors``, ``ema.safetensors`` and ``state.pt`` to ``ckpt_dir``."""
        # Written beside and renamed into place so an interruption never leaves half a checkpoint.
        tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(_flat_state(self.modules), str(tmp / MODULES_FILE))
        if self.ema is not None:
            save_file(_flat_state(self.ema), str(tmp / EMA_FILE))
        torch.save(
            {"step": step, "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()},
            tmp / STATE_FILE,
        )
        old = ckpt_dir.with_name(ckpt_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if ckpt_dir.exists():
            ckpt_dir.rename(old)
        tmp.rename(ckpt_dir)
        shutil.rmtree(old, ignore_errors=True)

    def export(self, final_dir: Path) -> Path:
        """``task.export`` of the EMA (or, without EMA, the trained) modules into ``final_dir``."""
        self.task.export(self.ema if self.ema is not None else self.modules, final_dir)
        return final_dir

    def summary(self) -> dict[str, Any]:
        """The task's class name and its ``config`` attribute (``{}`` when it has none)."""
        return {"task": type(self.task).__name__, "task_config": getattr(self.task, "config", {})}


def load_checkpoint_modules(task: TrainTask, out_dir: str | os.PathLike, *, ema: bool = True) -> dict[str, torch.nn.Module]:
    """Load the latest checkpoint of a run into ``task.modules()`` and return them.

    With ``ema=True`` the EMA weights are loaded when the checkpoint has them. Useful to
    export an intermediate checkpoint (``task.export(load_checkpoint_modules(task, run), dst)``).
    """
    ckpt = Path(out_dir) / CHECKPOINT_DIR
    path = ckpt / (EMA_FILE if ema and (ckpt / EMA_FILE).exists() else MODULES_FILE)
    if not path.exists():
        raise InputError(f"no checkpoint at {path}; run `inpaintbench train` first")
    modules = task.modules()
    _load_flat_state(modules, load_file(str(path)))
    return modules


def train(
    task: TrainTask,
    dataset: Dataset,
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
) -> Path:
    """Train ``task`` on ``dataset`` and export the result; returns ``out_dir / "final"``.

    Args:
        task: the modules, loss and export of one learned method.
        dataset: items are :class:`inpaintbench.core.images.Sample`; their ``.image`` (float32
            ``[C, H, W]`` in ``[0, 1]``, all the same size) are batched.
        config: see :class:`TrainConfig`; ``num_threads`` is set for the run and restored.
        out_dir: run folder (created); see the module docstring for its layout.
        resume: continue from ``out_dir/checkpoint`` when it exists. A resumed run gives the
            same weights as an uninterrupted one (on the same device and thread count).

    Same task initialisation, data, config and seed give the same weights on CPU.
    """
    threads_before = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        return run_loop(TorchBackend(task, config), dataset, config, out_dir, resume=resume)
    finally:
        torch.set_num_threads(threads_before)
