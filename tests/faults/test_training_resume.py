"""Fault battery (issue 14), training checkpoints that do not load (item 12): resuming from a
corrupt state is one line naming the file and the way out, and changes nothing."""

from __future__ import annotations

import pytest
import torch

from inpaintbench.core.errors import InputError


def test_12_corrupt_training_state_is_one_line(ctx):
    import torch.nn.functional as F

    from inpaintbench.core.images import Sample
    from inpaintbench.methods.training.loop import TrainConfig, train

    class Tiny:
        def __init__(self):
            self.net = torch.nn.Conv2d(1, 1, 3, padding=1)
            self.config = {"kind": "tiny"}

        def modules(self):
            return {"net": self.net}

        def loss(self, images, step, generator):
            return F.mse_loss(self.net(images), images), {}

        def export(self, modules, out_dir):
            (out_dir / "done").write_text("ok")

    data = [Sample(torch.rand(1, 8, 8), f"s{i}") for i in range(4)]
    config = TrainConfig(steps=2, batch_size=2, lr=1e-2, seed=0, checkpoint_every=1, log_every=1, num_threads=1)
    train(Tiny(), data, config, ctx.tmp / "run")
    state = ctx.tmp / "run" / "checkpoint" / "state.pt"
    state.write_bytes(b"PK\x03\x04 truncated by a crash")
    before = ctx.file_bytes(ctx.tmp / "run")
    with pytest.raises(InputError, match=r"state\.pt.*(--no-resume|resume)") as info:
        train(Tiny(), data, TrainConfig(**{**config.to_dict(), "steps": 4}), ctx.tmp / "run")
    assert "\n" not in str(info.value)
    assert ctx.file_bytes(ctx.tmp / "run") == before


def test_12_any_training_backend_with_an_unreadable_checkpoint_is_one_line(ctx):
    from inpaintbench.core.images import Sample
    from inpaintbench.methods.training.shell import TrainConfig, run_loop

    class TFLikeBackend:  # e.g. the TensorFlow GAN's: its own checkpoint format
        loss_keys = ("loss",)

        def load_checkpoint(self, ckpt_dir):
            raise ValueError("Unable to open table file: data corrupted")

    config = TrainConfig(steps=2, batch_size=2, lr=1e-2, seed=0, checkpoint_every=1, log_every=1, num_threads=1)
    with pytest.raises(InputError, match=r"cannot resume.*corrupt.*--no-resume") as info:
        run_loop(TFLikeBackend(), [Sample(torch.rand(1, 8, 8), "a")] * 2, config, ctx.tmp / "run")
    assert "\n" not in str(info.value)
