"""The framework-neutral part of every training run: the loop shell.

:func:`run_loop` owns what every learned method's training shares, whatever its framework:
the seeded batch order, the step loop, the progress bar, the loss log (``losses.jsonl``) and
its truncation on resume, the checkpoint and log cadence, the final export and the run
summary (``train_config.json``, written once at the end). What depends on the framework --
one optimisation step (with its EMA update), saving and loading checkpoint state, the
export -- sits behind :class:`TrainBackend`: :class:`inpaintbench.methods.training.loop.TorchBackend`
serves every torch task, ``GANBackend`` in :mod:`inpaintbench.methods.feedforward.gan_train`
the TensorFlow GAN.

Files the shell writes in ``out_dir`` (a backend adds its checkpoint files under
``checkpoint/`` and its export under ``final/``)::

    losses.jsonl        one JSON line per logged step: step, the step's numbers, lr, elapsed_s
    train_config.json   the TrainConfig, the task's config and a run summary
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from inpaintbench.core.errors import InpaintBenchError, InputError
from inpaintbench.core.seeding import derive_seed

CHECKPOINT_DIR = "checkpoint"
FINAL_DIR = "final"
LOSS_LOG = "losses.jsonl"
CONFIG_JSON = "train_config.json"


def dataclass_from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """``cls(**values)`` for a dataclass ``cls`` built from a config table (``[train]``,
    ``[task]``); keys that are not fields of ``cls`` raise :class:`InputError` naming them and
    the known ones (a TOML typo would otherwise surface as a bare TypeError)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {cls.__name__} keys {unknown}; known keys: {sorted(known)}")
    return cls(**values)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the task and the data (the ``[train]`` table).

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
        device: device string for training (torch's, e.g. ``cpu`` or ``cuda:0``).
        num_threads: intra-op threads during the run (None: leave the framework's setting).
            1 is much faster on a small shared CPU (no spin-waiting threads).
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
        return dataclass_from_dict(cls, {**values, **{k: v for k, v in overrides.items() if v is not None}})

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
        """float32 ``[batch_size, C, H, W]`` images in ``[0, 1]`` of the batch used at ``step``."""
        return torch.stack([self.dataset[int(i)].image for i in self.indices(step)])


@runtime_checkable
class TrainBackend(Protocol):
    """The framework-specific half of a training run, driven by :func:`run_loop`.

    A backend is built with its task and :class:`TrainConfig` and holds the networks, the
    optimizer(s) and the EMA copies. The shell calls, in order: :meth:`load_checkpoint`
    (only when resuming), :meth:`step` once per remaining step, :meth:`save_checkpoint` on
    the checkpoint cadence and after the last step, :meth:`export` once, then
    :meth:`summary` once.
    """

    #: Keys of :meth:`step`'s result that must stay finite and are shown on the progress bar.
    loss_keys: Sequence[str]

    def load_checkpoint(self, ckpt_dir: Path) -> int | None:
        """Restore the state saved in ``ckpt_dir`` and return its step (the number of steps
        done); None, touching nothing, when ``ckpt_dir`` holds no checkpoint."""
        ...

    def step(self, step: int, images: torch.Tensor) -> dict[str, float]:
        """One optimisation step (learning rate ``config.lr_at(step)``, then the EMA update
        with ``config.ema_decay_at(step)``) on ``images``: float32 ``[B, C, H, W]`` in
        ``[0, 1]`` on CPU. Returns the numbers to log, ``"loss"`` among them."""
        ...

    def save_checkpoint(self, ckpt_dir: Path, step: int) -> None:
        """Write everything an exact resume needs after ``step`` steps to ``ckpt_dir``."""
        ...

    def export(self, final_dir: Path) -> Path:
        """Write the final (EMA when there is one) weights into ``final_dir``, which exists;
        return the folder to load them from."""
        ...

    def summary(self) -> dict[str, Any]:
        """Entries of ``train_config.json`` besides the shell's own: at least ``"task"`` (a
        name) and ``"task_config"`` (the task's configuration)."""
        ...


def truncate_log(log_path: Path, last_step: int) -> None:
    """Drop the lines of the loss log ``log_path`` logged after ``last_step`` (those of an
    interrupted run past its last checkpoint, which the resumed run logs again)."""
    if not log_path.exists():
        return
    kept = [line for line in log_path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    log_path.write_text("".join(line + "\n" for line in kept))


def run_loop(backend: TrainBackend, dataset: Dataset, config: TrainConfig, out_dir: str | os.PathLike,
             *, resume: bool = True) -> Path:
    """Run the steps of ``config`` through ``backend``; returns the folder of the export.

    Args:
        backend: the framework half (networks, optimizers, checkpoints, export).
        dataset: items are :class:`inpaintbench.core.images.Sample`; their ``.image`` (float32
            ``[C, H, W]`` in ``[0, 1]``, all the same size) are batched by
            :class:`SeededBatches` with ``config.batch_size`` and ``config.seed``.
        config: see :class:`TrainConfig`.
        out_dir: run folder (created); ``checkpoint/``, ``final/``, ``losses.jsonl`` and
            ``train_config.json`` go in it.
        resume: continue from ``out_dir/checkpoint`` when the backend finds a checkpoint
            there; otherwise start at step 0 and start the loss log afresh.

    Raises:
        FloatingPointError: one of ``backend.loss_keys`` became NaN or infinite (nothing
            after the last checkpoint is saved, so a rerun resumes from it).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    batches = SeededBatches(dataset, config.batch_size, config.seed)
    ckpt_dir = out_dir / CHECKPOINT_DIR
    log_path = out_dir / LOSS_LOG
    try:
        start = backend.load_checkpoint(ckpt_dir) if resume else None
    except InpaintBenchError:
        raise
    except Exception as err:  # noqa: BLE001 - any backend (torch, TensorFlow): a checkpoint that will not load
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(f"cannot resume from the checkpoint in {ckpt_dir}: it is corrupt or from another config "
                         f"({type(err).__name__}: {first}); restore it, or start over with --no-resume "
                         "(or another --out)") from err
    if start is not None:
        truncate_log(log_path, start)
    else:
        start = 0
        log_path.unlink(missing_ok=True)

    t0 = time.perf_counter()
    last: dict[str, float] = {}
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="train",
               mininterval=5.0, dynamic_ncols=True)
    with open(log_path, "a") as log:
        for step in bar:
            last = backend.step(step, batches.batch(step))
            for key in backend.loss_keys:
                if not math.isfinite(last[key]):
                    raise FloatingPointError(f"{key} became {last[key]} at step {step}")
            done = step + 1
            bar.set_postfix({key: f"{last[key]:.4f}" for key in backend.loss_keys}, refresh=False)
            if done % config.log_every == 0 or done == config.steps:
                record = {"step": done, **last, "lr": config.lr_at(step),
                          "elapsed_s": round(time.perf_counter() - t0, 3)}
                log.write(json.dumps(record) + "\n")
                log.flush()  # a crash keeps every line up to it
            if done % config.checkpoint_every == 0 or done == config.steps:
                backend.save_checkpoint(ckpt_dir, done)
    bar.close()

    final_dir = out_dir / FINAL_DIR
    final_dir.mkdir(parents=True, exist_ok=True)
    exported = backend.export(final_dir)
    extra = backend.summary()
    summary = {
        "train": config.to_dict(),
        "task": extra.pop("task"),
        "task_config": extra.pop("task_config"),
        "dataset_size": len(dataset),  # type: ignore[arg-type]
        "resumed_from_step": start,
        "wall_time_s_this_session": round(time.perf_counter() - t0, 1),
        "last_logged": last,
        **extra,
    }
    (out_dir / CONFIG_JSON).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return exported
