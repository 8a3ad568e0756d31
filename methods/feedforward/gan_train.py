"""Training of the TensorFlow GAN inpainter through the suite's one training loop.

:func:`train_gan` runs the same loop shell as every torch method
(:func:`inpaintbench.methods.training.shell.run_loop`: seeded batch order, step loop, progress
bar, loss log, checkpoint cadence, export, run summary) with :class:`GANBackend`, the
TensorFlow half (one optimisation step of both networks, the EMA, TensorFlow checkpoints, the
export). Same :class:`~inpaintbench.methods.training.shell.TrainConfig` (the ``[train]``
table), same config file layout (``[task]``, ``[data]``, ``[train]``), and this ``out_dir``::

    checkpoint/        tf.train.CheckpointManager folder: G, D, EMA G, both optimizers, step
    losses.jsonl       one JSON line per logged step
    final/             generator.safetensors + generator.json of the EMA (or plain) generator
    train_config.json  the TrainConfig, the task's config and a run summary

Where it differs, and why:

* two AdamW optimizers (generator, discriminator) instead of one; ``lr`` is the generator's,
  the discriminator's is ``lr * d_lr_ratio`` (``[task]``); Adam's betas come from ``[task]``;
* ``ema_decay`` keeps an EMA of the generator only (the discriminator is thrown away);
* ``grad_clip`` clips each network's global gradient norm separately;
* masks and the batch order are pure functions of ``(seed, step)``, so resuming needs no RNG
  state in the checkpoint.

Run: ``inpaintbench train gan --config methods/configs/gan-mnist.toml
--data-root ../shared/data --out runs/gan-mnist`` (``gan-fc`` for the fully connected one).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from inpaintbench.core.errors import InputError
from inpaintbench.methods.feedforward.gan_tf_net import GeneratorSpec, build_discriminator, build_generator, import_tensorflow
from inpaintbench.methods.feedforward.gan_tf_weights import save_generator
from inpaintbench.methods.training.shell import TrainConfig, dataclass_from_dict, run_loop
from inpaintbench.core.seeding import make_generator

DEFAULT_MASK_FAMILIES = ("box", "random-boxes", "strokes-medium", "wide", "narrow", "half")


@dataclasses.dataclass(frozen=True)
class GANTask:
    """What to train: the networks, the losses and the training masks (the ``[task]`` table).

    Attributes:
        variant, image_size, channels, base_channels, hidden_units, init_seed: the
            generator (see :class:`inpaintbench.methods.feedforward.gan_tf_net.GeneratorSpec`; square images).
        disc_channels: the PatchGAN discriminator's first-layer filters.
        hole_weight, valid_weight: weights of the mean L1 error inside / outside the holes
            (per pixel, averaged over the whole image), on the generator's unclipped output
            so the loss keeps a gradient outside ``[0, 1]``.
        adv_weight: weight of the generator's hinge adversarial loss ``-mean(D(fake))``.
        d_lr_ratio: discriminator learning rate / generator learning rate.
        beta1, beta2: Adam(W) moment decays of both optimizers.
        mask_families: mask registry names; each training image gets a fresh mask from one
            of them, chosen uniformly.
    """

    variant: str = "conv"
    image_size: int = 28
    channels: int = 1
    base_channels: int = 32
    hidden_units: int = 512
    init_seed: int = 0
    disc_channels: int = 32
    hole_weight: float = 6.0
    valid_weight: float = 1.0
    adv_weight: float = 0.01
    d_lr_ratio: float = 1.0
    beta1: float = 0.5
    beta2: float = 0.999
    mask_families: tuple[str, ...] = DEFAULT_MASK_FAMILIES

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask_families", tuple(self.mask_families))
        if not self.mask_families:
            raise InputError("GANTask needs at least one mask family")
        for name in ("hole_weight", "valid_weight", "adv_weight"):
            if getattr(self, name) < 0:
                raise InputError(f"GANTask {name} must be >= 0, got {getattr(self, name)}")
        if self.d_lr_ratio <= 0 or not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise InputError("GANTask needs d_lr_ratio > 0 and betas in [0, 1)")
        self.spec()  # validates the architecture fields

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "GANTask":
        """Build from a mapping (the ``[task]`` table); unknown keys raise :class:`InputError`
        naming them."""
        return dataclass_from_dict(cls, values)

    @property
    def config(self) -> dict[str, Any]:
        """The task's configuration (saved into ``train_config.json``)."""
        return dataclasses.asdict(self)

    def spec(self) -> GeneratorSpec:
        """The generator's architecture."""
        return GeneratorSpec(variant=self.variant, height=self.image_size, width=self.image_size,
                             channels=self.channels, base_channels=self.base_channels,
                             hidden_units=self.hidden_units, seed=self.init_seed)

    def masks(self, n: int, seed: int, step: int) -> torch.Tensor:
        """Training masks of ``step``: bool ``[n, 1, S, S]`` (True = hole), a pure function
        of ``(seed, step)``."""
        from inpaintbench.core.registry import mask_registry

        from inpaintbench.core.masks import mixed_masks

        families = [mask_registry().create(name) for name in self.mask_families]
        gen = make_generator(seed, "gan-train-masks", step)
        return mixed_masks(families, n, self.image_size, self.image_size, generator=gen)


def _tf_device(device: str) -> str:
    if device == "cpu":
        return "/CPU:0"
    if device.startswith("cuda"):
        return f"/GPU:{device.partition(':')[2] or 0}"
    raise InputError(f"device must be 'cpu' or 'cuda[:N]' for the TensorFlow GAN, got {device!r}")


def _set_num_threads(tf, num_threads: int | None) -> None:
    if num_threads is None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as err:  # TensorFlow already started its thread pools
        raise InputError(f"num_threads must be set before TensorFlow runs anything in this process ({err})") from err


def _to_nhwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


class GANBackend:
    """:class:`~inpaintbench.methods.training.shell.TrainBackend` of the TensorFlow GAN.

    Builds the generator, its EMA copy (when ``config.ema_decay`` is set), the PatchGAN
    discriminator and their two AdamW optimizers; build it, and drive it, inside the
    ``tf.device`` scope of ``config.device`` (:func:`train_gan` does). The checkpoint is one
    ``tf.train.CheckpointManager`` folder (``checkpoint/ckpt-<step>.*``, the latest kept)
    holding G, D, EMA G, both optimizers and the step; the masks and the batch order are pure
    functions of ``(seed, step)``, so an exact resume needs no RNG state.
    """

    loss_keys = ("loss", "d_loss")

    def __init__(self, task: GANTask, config: TrainConfig):
        tf, keras = import_tensorflow()
        self.tf, self.task, self.config, self.spec = tf, task, config, task.spec()
        self.gen_net = build_generator(self.spec)
        # Same weights, unclipped output: the L1 loss keeps a gradient outside [0, 1].
        raw_gen_net = keras.Model(self.gen_net.inputs, self.gen_net.get_layer("to_image").output)
        self.ema_net = build_generator(self.spec) if config.ema_decay is not None else None
        disc_net = build_discriminator(self.spec.channels, task.disc_channels, seed=task.init_seed + 1)
        if self.ema_net is not None:  # a resumed run overwrites this with the checkpoint's EMA
            for e, v in zip(self.ema_net.weights, self.gen_net.weights):
                e.assign(v)

        def adamw(lr: float):
            return keras.optimizers.AdamW(learning_rate=lr, beta_1=task.beta1, beta_2=task.beta2,
                                          weight_decay=config.weight_decay)

        g_opt, d_opt = adamw(config.lr), adamw(config.lr * task.d_lr_ratio)
        # Built now so that a checkpoint restores their slots instead of deferring.
        g_opt.build(self.gen_net.trainable_variables)
        d_opt.build(disc_net.trainable_variables)
        self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        tracked = {"generator": self.gen_net, "discriminator": disc_net, "g_optimizer": g_opt,
                   "d_optimizer": d_opt, "step": self.step_var}
        if self.ema_net is not None:
            tracked["generator_ema"] = self.ema_net
        self.checkpoint = tf.train.Checkpoint(**tracked)
        self._manager = None
        gen_net, ema_net, clip = self.gen_net, self.ema_net, config.grad_clip

        @tf.function(reduce_retracing=True)
        def train_step(images, masks, lr, ema_decay):
            g_opt.learning_rate.assign(lr)
            d_opt.learning_rate.assign(lr * task.d_lr_ratio)
            known = 1.0 - masks
            real_in = tf.concat([images, masks], axis=-1)
            with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
                raw = raw_gen_net(tf.concat([images * known, masks], axis=-1), training=True)
                fake = tf.clip_by_value(raw, 0.0, 1.0)
                composite = masks * fake + known * images
                d_real = disc_net(real_in, training=True)
                d_fake = disc_net(tf.concat([composite, masks], axis=-1), training=True)
                # Hinge loss (Lim & Ye 2017, as in SN-GAN / SAGAN).
                d_loss = tf.reduce_mean(tf.nn.relu(1.0 - d_real)) + tf.reduce_mean(tf.nn.relu(1.0 + d_fake))
                error = tf.abs(raw - images)
                hole_l1 = tf.reduce_mean(masks * error)
                valid_l1 = tf.reduce_mean(known * error)
                g_adv = -tf.reduce_mean(d_fake)
                g_loss = task.hole_weight * hole_l1 + task.valid_weight * valid_l1 + task.adv_weight * g_adv
            g_grads = g_tape.gradient(g_loss, gen_net.trainable_variables)
            d_grads = d_tape.gradient(d_loss, disc_net.trainable_variables)
            g_norm, d_norm = tf.linalg.global_norm(g_grads), tf.linalg.global_norm(d_grads)
            if clip is not None:
                g_grads, _ = tf.clip_by_global_norm(g_grads, clip, use_norm=g_norm)
                d_grads, _ = tf.clip_by_global_norm(d_grads, clip, use_norm=d_norm)
            g_opt.apply_gradients(zip(g_grads, gen_net.trainable_variables))
            d_opt.apply_gradients(zip(d_grads, disc_net.trainable_variables))
            if ema_net is not None:
                for e, v in zip(ema_net.weights, gen_net.weights):
                    e.assign(ema_decay * e + (1.0 - ema_decay) * v)
            return {"loss": g_loss, "d_loss": d_loss, "hole_l1": hole_l1, "valid_l1": valid_l1,
                    "g_adv": g_adv, "g_grad_norm": g_norm, "d_grad_norm": d_norm}

        self._train_step = train_step

    def _checkpoints(self, ckpt_dir: Path):
        # One manager per folder: it tracks which ckpt-<step> files to delete (max_to_keep=1).
        if self._manager is None:
            self._manager = self.tf.train.CheckpointManager(self.checkpoint, str(ckpt_dir), max_to_keep=1)
        return self._manager

    def load_checkpoint(self, ckpt_dir: Path) -> int | None:
        """Restore G, D, EMA G, optimizers and step from the latest ``ckpt-*``; its step, or None."""
        manager = self._checkpoints(ckpt_dir)
        if not manager.latest_checkpoint:
            return None
        self.checkpoint.restore(manager.latest_checkpoint).assert_consumed()
        return int(self.step_var.numpy())

    def step(self, step: int, images: torch.Tensor) -> dict[str, float]:
        """One update of both networks from one forward pass, then the generator's EMA.

        The generator fills ``image * (1 - mask)`` given the mask; the discriminator sees the
        real image and the composite (generator inside the holes), each with the mask (hinge
        loss for D; L1 + adversarial for G). Returns ``loss`` (G's), ``d_loss``, ``hole_l1``,
        ``valid_l1``, ``g_adv`` and both pre-clipping gradient norms.
        """
        tf, config = self.tf, self.config
        masks = self.task.masks(images.shape[0], config.seed, step).float()
        out = self._train_step(tf.constant(_to_nhwc(images)), tf.constant(_to_nhwc(masks)),
                               tf.constant(config.lr_at(step), tf.float32),
                               tf.constant(config.ema_decay_at(step), tf.float32))
        return {k: float(v) for k, v in out.items()}

    def save_checkpoint(self, ckpt_dir: Path, step: int) -> None:
        """``ckpt_dir/ckpt-<step>.*`` (the previous one is deleted)."""
        self.step_var.assign(step)
        self._checkpoints(ckpt_dir).save(checkpoint_number=step)

    def export(self, final_dir: Path) -> Path:
        """``generator.safetensors`` + ``generator.json`` of the EMA (or plain) generator."""
        return save_generator(self.ema_net if self.ema_net is not None else self.gen_net, self.spec, final_dir)

    def summary(self) -> dict[str, Any]:
        """``GANTask``, its config and the TensorFlow version."""
        return {"task": type(self.task).__name__, "task_config": self.task.config,
                "tensorflow": self.tf.__version__}


def train_gan(task: GANTask, dataset: Dataset, config: TrainConfig, out_dir: str | os.PathLike,
              *, resume: bool = True) -> Path:
    """Train the GAN of ``task`` on ``dataset``; returns ``out_dir / "final"``.

    Same signature, loop and ``out_dir`` layout as :func:`inpaintbench.methods.training.loop.train`
    (both run :func:`~inpaintbench.methods.training.shell.run_loop`); :class:`GANBackend` is
    the TensorFlow half.

    Args:
        task: networks, losses and masks (see :class:`GANTask`).
        dataset: items are :class:`inpaintbench.core.images.Sample` with float32 ``[C, S, S]``
            images in ``[0, 1]``, ``C, S`` matching the task.
        config: the shared :class:`TrainConfig` (steps, batch_size, lr, seed, ema_decay,
            grad_clip, weight_decay, warmup_steps, checkpoint_every, log_every, device,
            num_threads).
        out_dir: run folder (created).
        resume: continue from ``out_dir/checkpoint`` when it holds a checkpoint.
    """
    tf, _ = import_tensorflow()
    _set_num_threads(tf, config.num_threads)
    spec = task.spec()
    shape = tuple(dataset[0].image.shape)
    if shape != (spec.channels, spec.height, spec.width):
        raise InputError(f"dataset images are {list(shape)}, the task expects "
                         f"[{spec.channels}, {spec.height}, {spec.width}]")
    with tf.device(_tf_device(config.device)):
        return run_loop(GANBackend(task, config), dataset, config, out_dir, resume=resume)
