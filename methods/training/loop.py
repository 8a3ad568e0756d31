"""The one training loop every learned method of the suite uses.

A method describes *what* to train as a :class:`TrainTask` (its modules, its loss, how to
export the result); :func:`train` owns *how*: seeded batches, one AdamW optimizer over all
modules, learning-rate warm-up, gradient clipping, EMA copies, periodic checkpoints that a
rerun resumes from exactly, a loss log and a progress bar.

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
import dataclasses
import json
import math
import os
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from inpaintbench.api import InputError
from inpaintbench.seeding import derive_seed

CHECKPOINT_DIR = "checkpoint"
FINAL_DIR = "final"
LOSS_LOG = "losses.jsonl"
CONFIG_JSON = "train_config.json"


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`train` needs besides the task and the data.

    Attributes:
        steps: optimizer steps in total (a resumed run continues up to this number).
        batch_size: images per step.
        lr: peak learning rate of AdamW.
        seed: seeds the batch order and the task's noise/mask generator.
        ema_decay: decay of the exponential moving average of the weights (None: no EMA).
            The effective decay is warmed up as ``min(ema_decay, (1 + step) / (10 + step))``
            so early checkpoints are not dominated by the random initialisation.
        grad_clip: max global gradient L2 norm (None: no clipping).
        weight_decay: AdamW's decoupled weight decay.
        warmup_steps: learning rate ramps linearly from ``lr / warmup_steps`` to ``lr``.
        checkpoint_every: steps between checkpoints (a checkpoint is also written at the end).
        log_every: steps between lines of ``losses.jsonl``.
        device: torch device string for training.
        num_threads: ``torch.set_num_threads`` during the run, restored afterwards (None: leave
            torch's setting). 1 is much faster on a small shared CPU (no spin-waiting threads).
    """

    steps: int
    batch_size: int
    lr: float
    seed: int = 0
    ema_decay: float | None = 0.999
    grad_clip: float | None = 1.0
    weight_decay: float = 0.0
    warmup_steps: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    device: str = "cpu"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise InputError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise InputError(f"ema_decay must lie in (0, 1) or be None, got {self.ema_decay}")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.warmup_steps < 0:
            raise InputError("checkpoint_every and log_every must be >= 1, warmup_steps >= 0")

    def lr_at(self, step: int) -> float:
        """Learning rate of 0-based ``step``: linear warm-up over ``warmup_steps``, then ``lr``."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        return self.lr

    def ema_decay_at(self, step: int) -> float:
        """EMA decay after 0-based ``step``: ``min(ema_decay, (1 + step) / (10 + step))``, so
        early averages are not dominated by the random initialisation; 0.0 without EMA."""
        if self.ema_decay is None:
            return 0.0
        return min(self.ema_decay, (1 + step) / (10 + step))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], **overrides: Any) -> "TrainConfig":
        """Build from a mapping (e.g. a TOML ``[train]`` table); ``overrides`` that are not
        None win. Unknown keys raise :class:`InputError` naming them."""
        merged = {**values, **{k: v for k, v in overrides.items() if v is not None}}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise InputError(f"unknown TrainConfig keys {unknown}; known keys: {sorted(known)}")
        return cls(**merged)

    @classmethod
    def from_toml(cls, path: str | os.PathLike, table: str = "train", **overrides: Any) -> "TrainConfig":
        """Read the ``[table]`` of a TOML file (see :meth:`from_dict` for ``overrides``)."""
        with open(path, "rb") as f:
            data = tomllib.load(f)
        if table not in data:
            raise InputError(f"{path} has no [{table}] table")
        return cls.from_dict(data[table], **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@runtime_checkable
class TrainTask(Protocol):
    """What a learned method provides to :func:`train`."""

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


class SeededBatches:
    """Batch ``k`` of a run as a pure function of ``(seed, k)``.

    Epoch ``e`` visits the dataset in the order ``randperm(N)`` seeded with
    ``derive_seed(seed, e)``; the last incomplete batch of an epoch is dropped. Being a
    function of the step, the order survives an interruption without saving sampler state.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int):
        self.dataset = dataset
        self.n = len(dataset)  # type: ignore[arg-type]
        if self.n < batch_size:
            raise InputError(f"dataset has {self.n} items, fewer than batch_size={batch_size}")
        self.batch_size = batch_size
        self.seed = seed
        self.per_epoch = self.n // batch_size
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        """Dataset indices (int64 ``[batch_size]``) of the batch used at ``step``."""
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
            self._perm = torch.randperm(self.n, generator=gen)
            self._epoch = epoch
        return self._perm[k * self.batch_size : (k + 1) * self.batch_size]

    def batch(self, step: int) -> torch.Tensor:
        """float32 ``[batch_size, C, H, W]`` images of the batch used at ``step``."""
        return torch.stack([self.dataset[int(i)].image for i in self.indices(step)])


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


def _update_ema(ema: Mapping[str, torch.nn.Module], modules: Mapping[str, torch.nn.Module], decay: float) -> None:
    with torch.no_grad():
        for name, module in modules.items():
            ema_params = dict(ema[name].named_parameters())
            for key, param in module.named_parameters():
                ema_params[key].lerp_(param, 1.0 - decay)
            ema_buffers = dict(ema[name].named_buffers())
            for key, buf in module.named_buffers():
                ema_buffers[key].copy_(buf)


def _save_checkpoint(ckpt_dir: Path, modules, ema, optimizer, step: int, generator: torch.Generator) -> None:
    # Written beside and renamed into place so an interruption never leaves half a checkpoint.
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_flat_state(modules), str(tmp / "modules.safetensors"))
    if ema is not None:
        save_file(_flat_state(ema), str(tmp / "ema.safetensors"))
    torch.save(
        {"step": step, "optimizer": optimizer.state_dict(), "generator": generator.get_state()},
        tmp / "state.pt",
    )
    old = ckpt_dir.with_name(ckpt_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt_dir.exists():
        ckpt_dir.rename(old)
    tmp.rename(ckpt_dir)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint_modules(task: TrainTask, out_dir: str | os.PathLike, *, ema: bool = True) -> dict[str, torch.nn.Module]:
    """Load the latest checkpoint of a run into ``task.modules()`` and return them.

    With ``ema=True`` the EMA weights are loaded when the checkpoint has them. Useful to
    export an intermediate checkpoint (``task.export(load_checkpoint_modules(task, run), dst)``).
    """
    ckpt = Path(out_dir) / CHECKPOINT_DIR
    path = ckpt / ("ema.safetensors" if ema and (ckpt / "ema.safetensors").exists() else "modules.safetensors")
    if not path.exists():
        raise InputError(f"no checkpoint at {path}; run `train` first")
    modules = task.modules()
    _load_flat_state(modules, load_file(str(path)))
    return modules


def _truncate_log(log_path: Path, last_step: int) -> None:
    if not log_path.exists():
        return
    kept = [line for line in log_path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    log_path.write_text("".join(line + "\n" for line in kept))


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
        dataset: items are :class:`inpaintbench.api.Sample`; their ``.image`` (float32
            ``[C, H, W]`` in ``[0, 1]``, all the same size) are batched.
        config: see :class:`TrainConfig`.
        out_dir: run folder (created); see the module docstring for its layout.
        resume: continue from ``out_dir/checkpoint`` when it exists. A resumed run gives the
            same weights as an uninterrupted one (on the same device and thread count).

    Same task initialisation, data, config and seed give the same weights on CPU.
    """
    threads_before = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(task, dataset, config, Path(out_dir), resume)
    finally:
        torch.set_num_threads(threads_before)


def _train(task: TrainTask, dataset: Dataset, config: TrainConfig, out_dir: Path, resume: bool) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)

    modules = task.modules()
    for module in modules.values():
        module.to(device).train()
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    if not params:
        raise InputError("the task has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    ema = None
    if config.ema_decay is not None:
        ema = {name: copy.deepcopy(m).eval().requires_grad_(False) for name, m in modules.items()}
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(config.seed, "train-task-generator"))
    batches = SeededBatches(dataset, config.batch_size, config.seed)

    ckpt_dir = out_dir / CHECKPOINT_DIR
    log_path = out_dir / LOSS_LOG
    start = 0
    if resume and (ckpt_dir / "state.pt").exists():
        state = torch.load(ckpt_dir / "state.pt", map_location=device, weights_only=True)
        _load_flat_state(modules, load_file(str(ckpt_dir / "modules.safetensors"), device=str(device)))
        if ema is not None:
            _load_flat_state(ema, load_file(str(ckpt_dir / "ema.safetensors"), device=str(device)))
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start = int(state["step"])
        _truncate_log(log_path, start)
    elif log_path.exists():
        log_path.unlink()

    t0 = time.perf_counter()
    last: dict[str, float] = {}
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="train",
               mininterval=5.0, dynamic_ncols=True)
    with open(log_path, "a") as log:
        for step in bar:
            images = batches.batch(step).to(device)
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(step)
            loss, extras = task.loss(images, step, generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = (
                float(torch.nn.utils.clip_grad_norm_(params, config.grad_clip))
                if config.grad_clip is not None else math.nan
            )
            optimizer.step()
            if ema is not None:
                _update_ema(ema, modules, config.ema_decay_at(step))
            done = step + 1
            last = {"loss": float(loss.detach()), **{k: float(v) for k, v in extras.items()}}
            bar.set_postfix(loss=f"{last['loss']:.4f}", refresh=False)
            if done % config.log_every == 0 or done == config.steps:
                record = {"step": done, **last, "lr": config.lr_at(step), "grad_norm": grad_norm,
                          "elapsed_s": round(time.perf_counter() - t0, 3)}
                log.write(json.dumps(record) + "\n")
                log.flush()
            if done % config.checkpoint_every == 0 or done == config.steps:
                _save_checkpoint(ckpt_dir, modules, ema, optimizer, done, generator)
    bar.close()

    final_dir = out_dir / FINAL_DIR
    final_dir.mkdir(parents=True, exist_ok=True)
    task.export(ema if ema is not None else modules, final_dir)
    summary = {
        "train": config.to_dict(),
        "task": type(task).__name__,
        "task_config": getattr(task, "config", {}),
        "dataset_size": len(dataset),  # type: ignore[arg-type]
        "resumed_from_step": start,
        "wall_time_s_this_session": round(time.perf_counter() - t0, 1),
        "last_logged": last,
    }
    (out_dir / CONFIG_JSON).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return final_dir
