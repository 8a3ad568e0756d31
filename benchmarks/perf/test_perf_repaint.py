"""RePaint speed: ours vs diffusers' RePaintPipeline for the same work, and batched vs
one image at a time. A tiny random UNet keeps this about the sampler, not the network.

    python -m pytest benchmarks/perf/test_perf_repaint.py --benchmark-only \
        --benchmark-json results/perf-repaint.json

Compare by ratio (these machines are noisy); the NFE of each case is in ``extra_info``.
"""

from __future__ import annotations

import pytest
import torch

from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.ddpm import DDPMTask
from inpaintbench.methods.diffusion.repaint import RePaint

T_T, JUMP, RESAMPLE, BATCH = 20, 5, 2, 8
TINY = dict(image_size=16, channels=1, block_out_channels=(16, 32), attention_levels=(False, False),
            norm_num_groups=8, num_train_timesteps=1000)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-ddpm")
    task = DDPMTask(**TINY)
    task.export(task.modules(), folder)
    return folder


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(BATCH, 1, 16, 16, generator=gen)
    mask = torch.zeros(BATCH, 1, 16, 16, dtype=torch.bool)
    mask[:, :, 4:12, 4:12] = True
    return image.masked_fill(mask, 0.0), mask


@pytest.mark.parametrize("chunk", [None, 1], ids=["batched", "one-at-a-time"])
def test_ours(benchmark, timed, device, weights, inputs, chunk):
    method = RePaint(weights=weights, num_steps=T_T, jump_length=JUMP, jump_n_sample=RESAMPLE,
                     batch_size=chunk).to(device)
    image, mask = (t.to(device) for t in inputs)
    def run():
        rng = SampleRNG([torch.Generator(device).manual_seed(i) for i in range(BATCH)])
        return method.inpaint(image, mask, rng=rng)

    benchmark.group = "repaint vs diffusers (equal NFE, same UNet)"
    timed(run)
    nfe = run().stats["nfe"]
    benchmark.extra_info.update(nfe=nfe, images=BATCH, note=f"NFE {max(nfe) if hasattr(nfe, '__len__') else nfe}")


def test_diffusers_pipeline_batched(benchmark, timed, device, weights, inputs):
    from diffusers import RePaintPipeline, RePaintScheduler

    from inpaintbench.methods.diffusion.ddpm import load_ddpm

    unet, _ = load_ddpm(weights, device=device)
    pipe = RePaintPipeline(unet=unet, scheduler=RePaintScheduler(num_train_timesteps=1000, eta=1.0))
    pipe.set_progress_bar_config(disable=True)
    image, mask = (t.to(device) for t in inputs)
    x0, known = image * 2 - 1, (~mask).float()  # diffusers: [-1, 1], mask 1 = known

    def run():
        with torch.no_grad():
            return pipe(image=x0, mask_image=known, num_inference_steps=T_T, jump_length=JUMP,
                        jump_n_sample=RESAMPLE, eta=1.0, generator=torch.Generator(device).manual_seed(0),
                        output_type="np")

    benchmark.group = "repaint vs diffusers (equal NFE, same UNet)"
    timed(run)
    benchmark.extra_info.update(images=BATCH, baseline=True, note="diffusers RePaintPipeline")
