"""The GPU path (:mod:`inpaintbench.harness.acceleration`), proven on the CPU.

Measured here (2 shared cores, torch 2.14, 4 CelebA val faces at 32x32, a 16x16 box hole),
composites scored against the original:

* ``lama-ffc`` (``lama-ffc-celeba32``), bf16 vs fp32: max abs pixel difference 0.0041,
  per-image |PSNR difference| <= 0.044 dB. Tolerances: 0.02 and 0.2 dB.
* ``repaint`` / ``ddpm-paste`` (``ddpm-celeba32``, t_T = 10, same per-sample noise), bf16 vs
  fp32: max abs 0.042 / 0.020, per-image |PSNR difference| <= 0.42 / 0.36 dB (mean 0.27 / 0.22):
  a sampling chain feeds every rounding difference back into the next step, so the bound is
  wider. Tolerances: max abs 0.1, per-image 1.0 dB, mean 0.5 dB.
* channels_last vs contiguous, fp32: <= 3.4e-6 (tolerance 1e-5).
* the shrunk Big LaMa generator (random weights, 2 images at 32x32), bf16 vs fp32: max abs
  0.0027 (tolerance 0.05). The Fourier units run in float32 under autocast by themselves
  (``FourierUnit.forward`` of ``ffc_blocks``, shared by lama-ffc and Big LaMa); the tests check it with a hook.

Without ``../shared/data/celeba`` the same checks run on smooth synthetic images.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from inpaintbench.harness.acceleration import (
    Acceleration,
    AppliedAcceleration,
    auto_batch_size,
    find_modules,
    measure_peak_bytes,
)
from inpaintbench.core.errors import InputError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.registry import dataset_registry, method_registry
from inpaintbench.core.tasks import Inpainting

CELEBA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "celeba"
N, SIZE = 4, 32
LAMA = ("lama-ffc", {"weights": "lama-ffc-celeba32"})
REPAINT = ("repaint", {"weights": "ddpm-celeba32", "num_steps": 10, "jump_length": 2, "jump_n_sample": 2})
PASTE = ("ddpm-paste", {"weights": "ddpm-celeba32", "num_steps": 10})

#: (max abs pixel difference, per-image |PSNR difference| dB, mean |PSNR difference| dB) of bf16 vs fp32.
FEEDFORWARD_TOL = (0.02, 0.2, 0.2)
CHAIN_TOL = (0.1, 1.0, 0.5)
CHANNELS_LAST_TOL = 1e-5


@pytest.fixture(scope="module")
def faces() -> tuple[torch.Tensor, list[str]]:
    """``[N, 3, 32, 32]`` in ``[0, 1]`` and their ids: CelebA val faces, or smooth synthetic images."""
    if (CELEBA / "val").is_dir():
        ds = dataset_registry().create("celeba", root=str(CELEBA), size=SIZE)
        samples = [ds[i] for i in range(N)]
        return torch.stack([s.image for s in samples]), [s.sample_id for s in samples]
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(N, 3, 4, 4, generator=gen)
    images = torch.nn.functional.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=False)
    return images.clamp(0, 1), [f"synthetic-{i}" for i in range(N)]


@pytest.fixture(scope="module")
def task() -> Inpainting:
    mask = torch.zeros(N, 1, SIZE, SIZE, dtype=torch.bool)
    mask[:, :, 8:24, 6:22] = True
    return Inpainting(mask)


def run(name: str, config: dict, acceleration: Acceleration, faces, task) -> torch.Tensor:
    """The scored composite ``[N, 3, 32, 32]`` of a fresh method under ``acceleration``."""
    images, ids = faces
    method = method_registry().create(name, **config)
    applied = acceleration.apply(method)
    rng = SampleRNG.for_samples(0, name, sample_ids=ids)  # the same per-sample noise for every variant
    with applied.autocast():
        raw = method.restore(task.observe(images), rng).image
    assert raw.dtype == torch.float32  # autocast never leaks into what the harness scores
    return task.composite(raw, images)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of ``[B, C, H, W]`` images in ``[0, 1]``."""
    return 10 * torch.log10(1.0 / ((a - b) ** 2).flatten(1).mean(1))


@pytest.mark.parametrize("case, tol", [(LAMA, FEEDFORWARD_TOL), (REPAINT, CHAIN_TOL), (PASTE, CHAIN_TOL)],
                         ids=["lama-ffc", "repaint", "ddpm-paste"])
def test_bf16_autocast_stays_close_to_fp32(case, tol, faces, task):
    name, config = case
    fp32 = run(name, config, Acceleration(), faces, task)
    bf16 = run(name, config, Acceleration(precision="bf16"), faces, task)
    max_abs, per_image, mean = tol
    assert not torch.equal(fp32, bf16), "bf16 changed nothing: autocast was not applied"
    assert float((fp32 - bf16).abs().max()) <= max_abs
    delta = (psnr(fp32, faces[0]) - psnr(bf16, faces[0])).abs()
    assert float(delta.max()) <= per_image
    assert float(delta.mean()) <= mean


@pytest.mark.parametrize("case", [LAMA, REPAINT], ids=["lama-ffc", "repaint"])
def test_channels_last_gives_the_contiguous_output(case, faces, task):
    name, config = case
    plain = run(name, config, Acceleration(), faces, task)
    nhwc = run(name, config, Acceleration(channels_last=True), faces, task)
    torch.testing.assert_close(nhwc, plain, atol=CHANNELS_LAST_TOL, rtol=0)


def test_channels_last_converts_weights_and_inputs():
    method = method_registry().create(LAMA[0], **LAMA[1])
    Acceleration(channels_last=True).apply(method)
    convs = [m for m in method.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    seen_in, seen_out = [], []
    method.net.register_forward_pre_hook(lambda _, args: seen_in.append(args[0]))  # after apply()'s hook
    convs[-1].register_forward_hook(lambda _, args, out: seen_out.append(out))
    x = torch.rand(1, 3, SIZE, SIZE)
    method.net(x, torch.zeros(1, 1, SIZE, SIZE, dtype=torch.bool))
    assert seen_in[0].is_contiguous(memory_format=torch.channels_last)  # the input converted on entry
    assert seen_out[0].is_contiguous(memory_format=torch.channels_last)  # and NHWC runs through the convs


def fourier_dtypes(net: torch.nn.Module) -> list[tuple[torch.dtype, torch.dtype]]:
    """Hook every ``FourierUnit`` (``ffc_blocks``) of ``net``: the returned list fills,
    per call, with ``(input dtype, output dtype)`` of the unit's 1x1 ``conv_layer``, which sits
    between the unit's ``rfft2`` and ``irfft2``: float32 in means the FFT ran in float32, float32
    out means the conv ran with autocast disabled, so the inverse FFT gets float32 too."""
    seen: list[tuple[torch.dtype, torch.dtype]] = []
    units = [m for m in net.modules() if type(m).__name__ == "FourierUnit"]
    assert units, "no FourierUnit in this network"
    for unit in units:
        unit.conv_layer.register_forward_hook(lambda _, args, out: seen.append((args[0].dtype, out.dtype)))
    return seen


def assert_fourier_units_ran_in_fp32(seen: list[tuple[torch.dtype, torch.dtype]], calls: int) -> None:
    assert len(seen) == calls
    assert all(pair == (torch.float32, torch.float32) for pair in seen), seen


def big_lama(seed: int = 0) -> torch.nn.Module:
    """A shrunk Big LaMa generator (2 residual blocks: 4 Fourier units) with random weights."""
    from inpaintbench.methods.feedforward.big_lama_net import BigLamaGenerator

    gen = torch.Generator().manual_seed(seed)
    net = BigLamaGenerator(ngf=8, n_blocks=2, max_features=64).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return net


def test_big_lama_bf16_autocast_runs_the_fourier_units_in_fp32():
    """bf16 autocast on the CPU simply works on the Big LaMa generator (its FourierUnit runs
    its FFTs in float32 with autocast disabled), the rest of the network runs in bf16, and
    the output stays close to fp32's."""
    net = big_lama()
    x = torch.rand(2, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = net(x)
        applied = Acceleration(precision="bf16").apply(net)
        assert applied.describe() == {"precision": "bf16", "channels_last": False, "compile": False}
        seen = fourier_dtypes(net)
        with applied.autocast():
            out = net(x)
    assert_fourier_units_ran_in_fp32(seen, calls=4)  # 2 per residual block
    assert out.dtype == torch.bfloat16  # the rest of the network did run in bf16
    assert float((out.float() - reference).abs().max()) <= 0.05


def test_lama_ffc_bf16_runs_the_fourier_units_in_fp32(faces, task):
    """bf16 autocast on ``lama-ffc``: every FourierUnit call sees float32, and the composite
    stays within the feed-forward tolerances of fp32."""
    images, ids = faces
    fp32 = run(*LAMA, Acceleration(), faces, task)
    method = method_registry().create(LAMA[0], **LAMA[1])
    applied = Acceleration(precision="bf16").apply(method)
    assert applied.modules == ("method.net",)
    seen = fourier_dtypes(method.net)
    with applied.autocast():
        raw = method.restore(task.observe(images), SampleRNG.for_samples(0, LAMA[0], sample_ids=ids)).image
    units = sum(type(m).__name__ == "FourierUnit" for m in method.net.modules())
    assert units > 0 and len(seen) % units == 0  # every unit, once per network call
    assert_fourier_units_ran_in_fp32(seen, calls=len(seen))
    bf16 = task.composite(raw, images)
    max_abs, per_image, mean = FEEDFORWARD_TOL
    assert not torch.equal(fp32, bf16), "bf16 changed nothing: autocast was not applied"
    assert float((fp32 - bf16).abs().max()) <= max_abs
    delta = (psnr(fp32, images) - psnr(bf16, images)).abs()
    assert float(delta.max()) <= per_image and float(delta.mean()) <= mean


def test_the_fourier_hook_catches_a_unit_left_under_autocast(monkeypatch):
    """Negative control of :func:`fourier_dtypes`: with the units' ``autocast(enabled=False)``
    made a no-op, the hook sees the 1x1 conv return bf16, and the check fails (lama-ffc and Big
    LaMa share one FourierUnit, ``ffc_blocks``)."""
    real_autocast = torch.autocast

    def autocast_without_disable(device_type, dtype=None, enabled=True, cache_enabled=None):
        if not enabled:
            return contextlib.nullcontext()
        return real_autocast(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    monkeypatch.setattr(torch, "autocast", autocast_without_disable)
    method = method_registry().create(LAMA[0], **LAMA[1])
    seen = fourier_dtypes(method.net)
    with torch.no_grad(), Acceleration(precision="bf16").autocast("cpu"):
        method.net(torch.rand(1, 3, SIZE, SIZE), torch.zeros(1, 1, SIZE, SIZE, dtype=torch.bool))
    assert seen and all(out == torch.bfloat16 for _, out in seen), seen
    with pytest.raises(AssertionError):
        assert_fourier_units_ran_in_fp32(seen, calls=len(seen))
    net = big_lama()  # the same FourierUnit (ffc_blocks), so the same symptom
    seen = fourier_dtypes(net)
    with torch.no_grad(), Acceleration(precision="bf16").autocast("cpu"):
        net(torch.rand(1, 4, 32, 32))
    assert seen and all(out == torch.bfloat16 for _, out in seen), seen
    with pytest.raises(AssertionError):
        assert_fourier_units_ran_in_fp32(seen, calls=len(seen))


def test_compile_path_gives_the_same_output(faces, task):
    """``compile=True`` compiles the networks in place; the ``eager`` backend traces them
    with dynamo without generating code (the inductor path is the GPU check's)."""
    plain = run(*LAMA, Acceleration(), faces, task)
    method = method_registry().create(LAMA[0], **LAMA[1])
    applied = Acceleration(compile=True, compile_backend="eager").apply(method)
    assert applied.compiled and applied.describe()["compile_backend"] == "eager"
    assert method.net._compiled_call_impl is not None  # nn.Module.compile() happened in place
    images, ids = faces
    out = method.restore(task.observe(images), SampleRNG.for_samples(0, "lama-ffc", sample_ids=ids)).image
    torch.testing.assert_close(task.composite(out, images), plain, atol=1e-6, rtol=0)
    again = Acceleration(compile=True, compile_backend="eager").apply(method)  # no double compile
    assert again.compiled


def test_wrappers_and_priors_are_found():
    erode = method_registry().create("lama-ffc-erode", inner_config={"weights": "lama-ffc-celeba32"})
    assert [p for p, _ in find_modules(erode)] == ["method.inner.net"]
    paste = method_registry().create(PASTE[0], **PASTE[1])
    assert [p for p, _ in find_modules(paste)] == ["method.prior.denoiser.unet"]
    predicted = method_registry().create("ilvr-predicted-mask", num_steps=2)
    assert [p for p, _ in find_modules(predicted)] == ["method.prior.denoiser.unet", "method.predictor.net"]
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))
    assert find_modules({"a": net, "b": [net[0]]}) == [("method['a']", net)]  # a submodule is not listed again


@pytest.mark.parametrize("name", ["telea", "pde-heat", "mean-fill"])
def test_non_torch_methods_are_untouched_and_recorded_fp32(name, faces, task):
    images, ids = faces
    method = method_registry().create(name)
    applied = Acceleration(precision="bf16", channels_last=True).apply(method)
    described = applied.describe()
    assert applied.precision == "fp32" and not applied.channels_last and applied.modules == ()
    assert described["precision"] == "fp32" and described["channels_last"] is False
    assert described["requested"] == {"precision": "bf16", "channels_last": True, "compile": False}
    assert "no torch.nn.Module" in described["note"]
    rng = lambda: SampleRNG.for_samples(0, name, sample_ids=ids)  # noqa: E731
    with applied.autocast():
        out = method.restore(task.observe(images), rng()).image
    torch.testing.assert_close(out, method_registry().create(name).restore(task.observe(images), rng()).image,
                               atol=0, rtol=0)


def test_describe_is_plain_and_minimal():
    assert Acceleration().describe() == {"precision": "fp32", "channels_last": False, "compile": False}
    assert Acceleration("bf16", compile=True, compile_mode="reduce-overhead").describe() == {
        "precision": "bf16", "channels_last": False, "compile": True,
        "compile_mode": "reduce-overhead", "compile_backend": "inductor"}
    applied = Acceleration("bf16").apply(method_registry().create(LAMA[0], **LAMA[1]))
    assert isinstance(applied, AppliedAcceleration)
    assert applied.describe() == {"precision": "bf16", "channels_last": False, "compile": False}
    assert Acceleration.from_config({"precision": "bf16", "seed": 3, "channels_last": True}) == \
        Acceleration("bf16", channels_last=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "fp64"}, "precision must be one of"),
    ({"precision": "BF16"}, "precision must be one of"),
    ({"channels_last": "yes"}, "channels_last must be true or false"),
    ({"compile": 1}, "compile must be true or false"),
    ({"compile_mode": "fast", "compile": True}, "compile_mode must be one of"),
    ({"compile_mode": "reduce-overhead"}, "options of compile=true"),
    ({"compile": True, "compile_backend": ""}, "compile_backend must be"),
])
def test_bad_values_are_refused_in_one_line(kwargs, message):
    with pytest.raises(InputError, match=message) as info:
        Acceleration(**kwargs)
    assert "\n" not in str(info.value)


def test_device_limits_are_refused():
    method = method_registry().create(LAMA[0], **LAMA[1])
    with pytest.raises(InputError, match="use precision='bf16'"):
        Acceleration(precision="fp16").apply(method)
    with pytest.raises(InputError, match="use precision='bf16'"):
        Acceleration(precision="fp16").autocast("cpu")
    with pytest.raises(InputError, match="CUDA graphs: CUDA only"):
        Acceleration(compile=True, compile_mode="reduce-overhead").apply(method)
    assert not getattr(method.net, "_inpaintbench_compiled", False)  # refused before anything changed


def test_compile_needs_torch_2(monkeypatch):
    import inpaintbench.harness.acceleration as acceleration

    monkeypatch.setattr(acceleration, "_torch_version", lambda: (1, 13))
    with pytest.raises(InputError, match="torch >= 2.0"):
        Acceleration(compile=True)
    Acceleration(precision="bf16")  # everything else still works on an old torch


def test_fp32_autocast_is_a_no_op():
    x = torch.rand(2, 4)
    w = torch.rand(4, 4)
    with Acceleration().autocast("cpu"):
        assert (x @ w).dtype == torch.float32
    with Acceleration("bf16").autocast("cpu"):
        assert (x @ w).dtype == torch.bfloat16


def test_auto_batch_size_scales_linearly_with_a_margin():
    gib = 1 << 30
    # 1 GiB of weights, 3 GiB peak at batch 1 -> 2 GiB per image; 0.8 * 40 GiB - 1 GiB = 31 GiB -> 15.
    assert auto_batch_size(3 * gib, 40 * gib, 64, resident_bytes=gib) == 15
    assert auto_batch_size(3 * gib, 40 * gib, 8, resident_bytes=gib) == 8       # capped
    assert auto_batch_size(3 * gib, 40 * gib, 64) == 10                         # all counted per image
    assert auto_batch_size(50 * gib, 40 * gib, 64) == 1                         # never below 1
    assert auto_batch_size(lambda: 3 * gib, 40 * gib, 64, safety=1.0) == 13      # a callable measurement
    assert auto_batch_size(None, 40 * gib, 12) == 12                            # the CPU: no statistics
    for bad in ({"budget_bytes": 0}, {"max_batch": 0}, {"safety": 1.5}):
        args = {"measure_peak_bytes_at_batch_1": gib, "budget_bytes": gib, "max_batch": 4, **bad}
        with pytest.raises(InputError):
            auto_batch_size(**args)


def test_measure_peak_bytes_on_the_cpu():
    assert measure_peak_bytes(lambda: torch.ones(3), "cpu") == (None, 0)
