"""The shared training loop: determinism, exact resume, checkpoints, config handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from inpaintbench.api import InputError, Sample
from inpaintbench.methods.training.loop import (
    SeededBatches,
    TrainConfig,
    TrainTask,
    load_checkpoint_modules,
    train,
)



class Interrupted(Exception):
    pass


class TinyDenoiseTask:
    """A two-layer conv denoiser; optionally 'crashes' at a given step to simulate an interruption."""

    def __init__(self, crash_at: int | None = None):
        gen = torch.Generator().manual_seed(123)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(4, 1, 3, padding=1))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        self.crash_at = crash_at
        self.config = {"kind": "tiny"}

    def modules(self):
        return {"net": self.net}

    def loss(self, images, step, generator):
        if step == self.crash_at:
            raise Interrupted(f"simulated interruption at step {step}")
        noisy = images + 0.2 * torch.randn(images.shape, generator=generator)
        return F.mse_loss(self.net(noisy), images), {"noise_level": 0.2}

    def export(self, modules, out_dir: Path):
        save_file({k: v.contiguous() for k, v in modules["net"].state_dict().items()}, str(out_dir / "net.safetensors"))


def tiny_dataset(n: int = 10) -> list[Sample]:
    gen = torch.Generator().manual_seed(7)
    return [Sample(torch.rand(1, 8, 8, generator=gen), f"s{i}") for i in range(n)]


def config(**kw) -> TrainConfig:
    base = dict(steps=6, batch_size=4, lr=1e-2, seed=3, ema_decay=0.9, checkpoint_every=2, log_every=1,
                warmup_steps=2, num_threads=1)
    return TrainConfig(**{**base, **kw})


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "final" / "net.safetensors"))


def test_tiny_task_satisfies_protocol():
    assert isinstance(TinyDenoiseTask(), TrainTask)


def test_same_seed_same_weights_and_training_changes_them(tmp_path):
    a = train(TinyDenoiseTask(), tiny_dataset(), config(), tmp_path / "a")
    b = train(TinyDenoiseTask(), tiny_dataset(), config(), tmp_path / "b")
    c = train(TinyDenoiseTask(), tiny_dataset(), config(seed=4), tmp_path / "c")
    wa, wb, wc = final_weights(a.parent), final_weights(b.parent), final_weights(c.parent)
    init = TinyDenoiseTask().net.state_dict()
    for key in wa:
        assert torch.equal(wa[key], wb[key])
    assert any(not torch.equal(wa[k], wc[k]) for k in wa), "another seed must give other weights"
    assert any(not torch.equal(wa[k], init[k]) for k in wa), "training must move the weights"


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    full = train(TinyDenoiseTask(), tiny_dataset(), config(), tmp_path / "full").parent
    run = tmp_path / "interrupted"
    with pytest.raises(Interrupted):
        train(TinyDenoiseTask(crash_at=5), tiny_dataset(), config(), run)
    state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    assert state["step"] == 4  # last checkpoint before the crash
    # a fresh process would rebuild the task from its config: same init, no crash this time
    train(TinyDenoiseTask(), tiny_dataset(), config(), run)
    for key, value in final_weights(full).items():
        assert torch.equal(value, final_weights(run)[key]), key
    for name in ("modules.safetensors", "ema.safetensors"):
        ref, got = load_file(str(full / "checkpoint" / name)), load_file(str(run / "checkpoint" / name))
        assert all(torch.equal(ref[k], got[k]) for k in ref)
    steps = [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # logged lines after the checkpoint were dropped and redone
    ref_losses = [json.loads(line)["loss"] for line in (full / "losses.jsonl").read_text().splitlines()]
    losses = [json.loads(line)["loss"] for line in (run / "losses.jsonl").read_text().splitlines()]
    assert losses == ref_losses


def test_checkpoint_round_trip_and_outputs(tmp_path):
    task = TinyDenoiseTask()
    final = train(task, tiny_dataset(), config(ema_decay=None), tmp_path)
    trained = {k: v.clone() for k, v in task.net.state_dict().items()}
    fresh = TinyDenoiseTask()
    loaded = load_checkpoint_modules(fresh, tmp_path, ema=False)["net"].state_dict()
    assert all(torch.equal(trained[k], loaded[k]) for k in trained)
    assert not (tmp_path / "checkpoint" / "ema.safetensors").exists()
    # without EMA the export is the trained weights themselves
    assert all(torch.equal(trained[k], v) for k, v in final_weights(final.parent).items())
    summary = json.loads((tmp_path / "train_config.json").read_text())
    assert summary["train"]["steps"] == 6 and summary["task_config"] == {"kind": "tiny"}
    with pytest.raises(InputError, match="no checkpoint"):
        load_checkpoint_modules(TinyDenoiseTask(), tmp_path / "nowhere")


def test_ema_export_differs_from_raw_weights(tmp_path):
    task = TinyDenoiseTask()
    train(task, tiny_dataset(), config(), tmp_path)
    ema = final_weights(tmp_path)
    raw = task.net.state_dict()
    assert any(not torch.allclose(ema[k], raw[k]) for k in ema)
    assert all(torch.equal(ema[k], v) for k, v in load_checkpoint_modules(TinyDenoiseTask(), tmp_path)["net"].state_dict().items())


def test_seeded_batches_cover_each_epoch_once():
    data = tiny_dataset(10)
    batches = SeededBatches(data, batch_size=3, seed=0)
    epoch0 = torch.cat([batches.indices(s) for s in range(3)])  # 10 // 3 = 3 batches per epoch
    assert len(set(epoch0.tolist())) == 9
    again = SeededBatches(data, batch_size=3, seed=0)
    assert torch.equal(again.indices(4), batches.indices(4))
    assert not torch.equal(torch.cat([batches.indices(s) for s in range(3, 6)]), epoch0)
    with pytest.raises(InputError, match="fewer than batch_size"):
        SeededBatches(data, batch_size=11, seed=0)


def test_config_validation_and_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nsteps = 5\nbatch_size = 2\nlr = 1e-3\nema_decay = 0.99\n")
    cfg = TrainConfig.from_toml(path, steps=7, lr=None)
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.ema_decay) == (7, 2, 1e-3, 0.99)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="unknown TrainConfig keys \\['stepz'\\]"):
        TrainConfig.from_dict({"stepz": 1, "batch_size": 1, "lr": 1.0})
    with pytest.raises(InputError, match="ema_decay"):
        TrainConfig(steps=1, batch_size=1, lr=1e-3, ema_decay=1.5)
    with pytest.raises(InputError, match="lr"):
        TrainConfig(steps=1, batch_size=1, lr=0.0)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.needs_shared
@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason=f"MNIST not found under {SHARED_DATA}")
def test_train_cli_ddpm_end_to_end(tmp_path):
    from inpaintbench.methods.diffusion.ddpm import load_ddpm
    from inpaintbench.methods.training.cli import main

    config = tmp_path / "tiny.toml"
    config.write_text(
        "[task]\nimage_size = 28\nchannels = 1\nblock_out_channels = [8, 16, 16]\n"
        "attention_levels = [false, false, false]\nmid_attention = false\nnorm_num_groups = 8\n"
        "[data]\ndataset = \"mnist\"\nsplit = \"train\"\nlimit = 16\n"
        "[train]\nsteps = 3\nbatch_size = 4\nlr = 1e-3\nnum_threads = 1\n"
    )
    main(["ddpm", "--config", str(config), "--data-root", str(SHARED_DATA), "--out", str(tmp_path / "run"),
          "--steps", "2", "--seed", "5"])
    summary = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert summary["train"]["steps"] == 2 and summary["train"]["seed"] == 5  # flags override the file
    assert summary["dataset_size"] == 16
    unet, scheduler = load_ddpm(tmp_path / "run" / "final")
    assert unet.config.block_out_channels == (8, 16, 16) or list(unet.config.block_out_channels) == [8, 16, 16]
    with pytest.raises(InputError, match="unknown tables"):
        config.write_text("[trian]\nsteps = 1\n")
        main(["ddpm", "--config", str(config), "--out", str(tmp_path / "bad")])
