"""CPU (or GPU) time per image of the GAN inpainters users hold (MI-GAN, CoModGAN, MAT) beside
Big LaMa, at 256 and 512 px, one image per call (pytest-benchmark, not in the default run).

The networks carry seeded random weights written to a temporary file and loaded through each
method's own checkpoint path, so the timing is real and the outputs are meaningless (nothing
is scored). Run: ``python -m pytest benchmarks/perf/test_perf_gan.py -q --benchmark-only``.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from inpaintbench.core.images import apply_mask
from inpaintbench.core.seeding import SampleRNG, make_generator
from inpaintbench.core.tasks import Inpainting
from inpaintbench.methods.feedforward.big_lama import BigLama
from inpaintbench.methods.feedforward.big_lama_net import BigLamaGenerator
from inpaintbench.methods.gan.methods import MAT, MIGAN, CoModGAN

SIZES = (256, 512)


def _checkpoint(tmp_path, name: str, network: torch.nn.Module, prefix: str = "") -> str:
    """Seeded random weights of ``network`` as a safetensors file; its path."""
    torch.manual_seed(0)
    for tensor in network.state_dict().values():
        if tensor.is_floating_point():
            tensor.copy_(torch.randn_like(tensor) * 0.02)
    path = tmp_path / f"{name}.safetensors"
    save_file({prefix + k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    return str(path)


def _build(name: str, size: int, tmp_path):
    if name == "big-lama":
        return BigLama(checkpoint=_checkpoint(tmp_path, name, BigLamaGenerator(), "generator."))
    cls = {"mi-gan": MIGAN, "comodgan": CoModGAN, "mat": MAT}[name]
    return cls(checkpoint=_checkpoint(tmp_path, name, cls._build_network(cls, size)), resolution=size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["big-lama", "mi-gan", "comodgan", "mat"])
def test_gan_inpainter_time_per_image(benchmark, timed, tmp_path, device, name, size):
    method = _build(name, size, tmp_path).to(device)
    generator = make_generator(0, "perf-gan", size)
    image = torch.rand(1, 3, size, size, generator=generator)
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
    task = Inpainting(mask.to(device))
    observation = task.observe(apply_mask(image, mask).to(device))
    rng = SampleRNG.for_samples(0, "perf-gan", sample_ids=["0"], device=device)
    benchmark.group = f"gan inpainters, {size} px, 1 image per call"
    benchmark.extra_info.update(method=name, size=size, weights="random (timing only)")
    with torch.inference_mode():
        out = timed(method.restore, observation, rng, rounds=3, warmup_rounds=1)
    assert out.image.shape == image.shape
