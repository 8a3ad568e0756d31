#!/usr/bin/env python
"""GPU checks of the acceleration path (issue #15, item 5); see reports/gpu/README.md.

    bash benchmarks/gpu/check.sh                      # on a machine with a GPU (~8 min budget)
    bash benchmarks/gpu/check.sh --smoke --out /tmp/GPU-smoke.md   # anywhere, < 2 min

Sections (each row of the report says what it measured and whether it met its tolerance):

(a) **CUDA vs CPU**: every learned method registered (a method that holds a torch network),
    built with its registry ``tiny`` options, plus the RGB configurations of the committed
    weights, run on the CPU and on the GPU with the *same noise* (:class:`CPUNoiseRNG`: the
    per-sample generators draw on the CPU, the draws are moved to the GPU, because CUDA
    generators give other numbers for the same seed). Strict fp32 (TF32 off). Tolerances:
    one-pass networks max abs pixel difference <= 1e-3; sampling chains <= 1e-2 and
    |PSNR(cuda) - PSNR(cpu)| <= 0.1 dB (a chain feeds rounding differences forward). The
    bf16 column is the GPU's bf16 composite against its fp32 one (information, no tolerance).
(b) **RePaint throughput** at 256x256 on a DDPM-sized network with random weights (a
    diffusers ``UNet2DModel`` with the published config of ``google/ddpm-celebahq-256``,
    ~114 M parameters): ours (``RePaint``, the core's loop) against diffusers'
    ``RePaintPipeline`` on the same weights, at equal NFE, with RePaint's jump structure
    (j = 10, r = 10) on a shortened ``t_T`` (the paper's t_T = 250 is 2410 NFE; the seconds
    per image of the paper schedule are extrapolated linearly in NFE, the cost of a step does
    not depend on its index). *Equal output* is checked where the two chains coincide
    (``t_T = T``, the replay of ``tests/test_repaint.py``: same draws -> same image).
(c) **Big LaMa** at 512x512 (the ``lama-official`` method on a random-weights checkpoint of
    the Big LaMa generator, 27 M parameters): fp32 vs bf16, batch 1 and the batch
    :func:`~inpaintbench.harness.acceleration.auto_batch_size` picks; images/s, peak memory.
(d) the report (``--out``, default ``reports/gpu/GPU.md``): the tables, the machine, the
    command. Written after every section, so a run cut short keeps what it measured.

``--smoke``: tiny networks, a few steps, on whatever device there is (on a CPU "cuda" is
the CPU too, so (a) compares the CPU with itself): every code path, in under 2 minutes.
``--budget-s``: the wall-clock budget; each step is skipped (and said so) when what is left
cannot cover its estimate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the network: nothing here downloads

import torch

REPO = Path(__file__).resolve().parents[2]


def _bootstrap_package() -> None:
    """Import ``inpaintbench`` from this checkout when it is not installed (a lent GPU machine
    has torch and diffusers but not necessarily ``pip install -e .``): the same folder
    mapping as ``pyproject.toml``'s ``package-dir``."""
    import importlib
    import importlib.util

    try:
        importlib.import_module("inpaintbench")
        return
    except ImportError:
        pass

    specs = []
    for name, folder in (("inpaintbench", "benchmarks"), ("inpaintbench.methods", "methods"),
                         ("inpaintbench.datasets", "datasets"), ("inpaintbench.baselines", "baselines")):
        spec = importlib.util.spec_from_file_location(name, REPO / folder / "__init__.py",
                                                      submodule_search_locations=[str(REPO / folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # all registered before any runs: they import each other
        specs.append((spec, module))
    for spec, module in specs:
        spec.loader.exec_module(module)


_bootstrap_package()

from inpaintbench.harness.acceleration import Acceleration, auto_batch_size, find_modules, measure_peak_bytes
from inpaintbench.core.errors import InpaintBenchError
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.registry import method_registry
from inpaintbench.core.tasks import Inpainting, SuperResolution
from inpaintbench.harness.timing import timed_call

SHARED_DATA = REPO.parent / "shared" / "data"
PAPER = dict(t_T=250, jump_length=10, jump_n_sample=10)  # RePaint's schedule: 2410 NFE

#: The published config of google/ddpm-celebahq-256 (UNet2DModel, 3x256x256, ~114 M parameters).
DDPM_CELEBAHQ_256 = dict(
    sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
    block_out_channels=(128, 128, 256, 256, 512, 512),
    down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
    act_fn="silu", attention_head_dim=None, center_input_sample=False, downsample_padding=0,
    flip_sin_to_cos=False, freq_shift=1, mid_block_scale_factor=1, norm_eps=1e-6, norm_num_groups=32,
    time_embedding_type="positional",
)
TINY_UNET = dict(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(16, 32),
                 down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                 norm_num_groups=8)

# Tolerances of (a), stated in the module docstring.
TOL_ONE_PASS = 1e-3
TOL_CHAIN, TOL_CHAIN_PSNR = 1e-2, 0.1


@dataclass(frozen=True)
class Sizes:
    """What a run does: the full GPU check or the CPU smoke run."""

    smoke: bool
    images: int                      # images per method in (a)
    unet: dict                       # the network of (b)
    t_T: int                         # shortened schedule of (b), jump structure j, r below
    jump_length: int
    jump_n_sample: int
    max_batch_b: int                 # cap of the batch in (b)
    equal_T: tuple[int, int, int]    # (T = t_T, j, r) of the equal-output replay
    lama_arch: dict                  # Big LaMa generator of (c)
    lama_size: int
    max_batch_c: int
    repeats: int                     # timed repeats (median reported) in (c)
    compile_backend: str


FULL = Sizes(False, 2, DDPM_CELEBAHQ_256, 20, 10, 10, 16, (10, 3, 2), {}, 512, 16, 3, "inductor")
SMOKE = Sizes(True, 2, TINY_UNET, 6, 2, 2, 2, (6, 2, 2), {"ngf": 8, "n_blocks": 2, "max_features": 64}, 64, 2, 1, "eager")


class Budget:
    """The wall-clock budget: ``left()`` seconds, ``allows(estimate)``; skipped steps are listed."""

    def __init__(self, seconds: float):
        self.start, self.seconds = time.perf_counter(), seconds
        self.skipped: list[str] = []

    def left(self) -> float:
        """Seconds left (may be negative)."""
        return self.seconds - (time.perf_counter() - self.start)

    def allows(self, estimate_s: float, what: str) -> bool:
        """True when ``estimate_s`` seconds fit in what is left; else records ``what`` as skipped."""
        if self.left() >= estimate_s:
            return True
        self.skipped.append(f"{what} (needs ~{estimate_s:.0f} s, {max(self.left(), 0):.0f} s left)")
        return False


class CPUNoiseRNG(SampleRNG):
    """Per-sample generators on the CPU whose draws are moved to ``device``: the same noise on
    every device (a CUDA generator seeded alike draws other numbers)."""

    def __init__(self, generators, device: torch.device | str):
        super().__init__(generators)
        self.target = torch.device(device)
        self.device = self.target

    @classmethod
    def make(cls, *parts: object, n: int, device: torch.device | str) -> "CPUNoiseRNG":
        """``n`` generators seeded from ``(*parts, i)`` on the CPU, drawing onto ``device``."""
        base = SampleRNG.for_samples(*parts, sample_ids=[str(i) for i in range(n)], device="cpu")
        return cls(base.generators, device)

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g, dtype=dtype) for g in self.generators]).to(self.target)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.stack([torch.rand(shape, generator=g) for g in self.generators]).to(self.target)

    def __getitem__(self, index: slice) -> "CPUNoiseRNG":
        return CPUNoiseRNG(self.generators[index], self.target)

    def select(self, indices) -> "CPUNoiseRNG":
        return CPUNoiseRNG([self.generators[int(i)] for i in indices], self.target)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over the batch of the PSNR (dB) of ``[B, C, H, W]`` images in ``[0, 1]``; 99 dB if equal."""
    mse = ((a.float() - b.float()) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean().clamp_max(99.0))


def images_for(channels: int, size: int, n: int) -> torch.Tensor:
    """``[n, channels, size, size]`` in ``[0, 1]``: MNIST test digits (shipped) for 1 x 28,
    CelebA val faces when ``../shared/data/celeba`` exists for 3 channels, else smooth
    synthetic images (the comparisons are device against device, any content will do)."""
    from inpaintbench.core.registry import dataset_registry

    try:
        if channels == 1 and size == 28:
            ds = dataset_registry().create("mnist-sample")
            return torch.stack([ds[i].image for i in range(n)])
        if channels == 3 and (SHARED_DATA / "celeba" / "val").is_dir():
            ds = dataset_registry().create("celeba", root=str(SHARED_DATA / "celeba"), size=size)
            return torch.stack([ds[i].image for i in range(n)])
    except (InpaintBenchError, OSError):
        pass
    gen = torch.Generator().manual_seed(channels * 1000 + size)
    coarse = torch.rand(n, channels, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def box_mask(n: int, size: int) -> torch.Tensor:
    """bool ``[n, 1, size, size]``, a centred box of half the side (True = hole)."""
    mask = torch.zeros(n, 1, size, size, dtype=torch.bool)
    lo, hi = size // 4, size // 4 + size // 2
    mask[:, :, lo:hi, lo:hi] = True
    return mask


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------- (a) CUDA vs CPU


def random_big_lama_checkpoint(folder: Path, arch: dict) -> Path:
    """A ``.safetensors`` file of a Big LaMa generator with random (seeded) weights."""
    from safetensors.torch import save_file

    from inpaintbench.methods.feedforward.big_lama_net import BIG_LAMA_ARCH, BigLamaGenerator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = BigLamaGenerator(**{**BIG_LAMA_ARCH, **arch}).eval()
        # BatchNorm running statistics of a fresh net are (0, 1); random ones exercise them too.
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = folder / f"big-lama-random-{abs(hash(tuple(sorted(arch.items())))) % 10**6}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def correctness_cases(sizes: Sizes, tmp: Path) -> list[tuple[str, str, dict]]:
    """``(label, registry name, options)``: every registered method with its ``tiny`` options,
    plus the RGB configurations of the committed weights and Big LaMa on random weights."""
    registry = method_registry()
    cases = []
    for name in registry.names():
        options = dict(registry.entry(name).tiny)
        if name == "lama-official":
            options = {"checkpoint": str(random_big_lama_checkpoint(tmp, sizes.lama_arch)), "arch": sizes.lama_arch or None}
        cases.append((name, name, options))
    cases += [
        ("lama-ffc (celeba32)", "lama-ffc", {"weights": "lama-ffc-celeba32"}),
        ("repaint (celeba32)", "repaint", {"weights": "ddpm-celeba32", "num_steps": 10, "jump_length": 2}),
        ("ddpm-paste (celeba32)", "ddpm-paste", {"weights": "ddpm-celeba32", "num_steps": 10}),
        ("ilvr (celeba32)", "ilvr", {"weights": "ddpm-celeba32", "num_steps": 10}),
    ]
    return cases


def run_method(method: Any, images: torch.Tensor, label: str, device: torch.device,
               applied=None) -> torch.Tensor:
    """The scored composite (CPU, float32) of ``method`` on ``images`` (inpainting with a box,
    or 2x super-resolution), the noise from :class:`CPUNoiseRNG`."""
    n, c, h, w = images.shape
    task = Inpainting(box_mask(n, h)) if "inpainting" in method.tasks else SuperResolution(2, (n, c, h, w))
    x = images.to(device)
    rng = CPUNoiseRNG.make("gpu-check", label, n=n, device=device)
    with applied.autocast() if applied is not None else contextlib.nullcontext():
        raw = method.restore(task.observe(x), rng).image
    return task.composite(raw.float(), x).cpu()


def section_a(sizes: Sizes, device: torch.device, budget: Budget, tmp: Path, log) -> tuple[list[dict], list[str]]:
    """(a): rows ``{method, input, kind, max_abs, psnr_cpu, psnr_dev, d_psnr, bf16_d_psnr, ok, note}``
    and the names of the methods without a network (not compared)."""
    rows, no_network = [], []
    registry = method_registry()
    for label, name, options in correctness_cases(sizes, tmp):
        if not budget.allows(20, f"(a) {label}"):
            continue
        try:
            method = registry.create(name, **options)
        except InpaintBenchError as err:  # MethodUnavailable (no weights, no extra), bad options
            rows.append({"method": label, "note": f"not built: {str(err).splitlines()[0][:140]}"})
            continue
        if not find_modules(method):
            no_network.append(label)
            continue
        started = time.perf_counter()
        row: dict[str, Any] = {"method": label}
        try:
            reference = images = None
            for channels, size in ((1, 28), (3, 32), (3, 64)):  # the first input the method accepts
                try:
                    images = images_for(channels, size, sizes.images)
                    reference = run_method(method.to("cpu"), images, label, torch.device("cpu"))
                    break
                except InpaintBenchError:
                    continue
            if reference is None:
                row["note"] = "no input of 1x28x28, 3x32x32 or 3x64x64 accepted"
                rows.append(row)
                continue
            method.to(device)
            on_device = run_method(method, images, label, device)
            chain = not method.deterministic
            max_abs = float((on_device - reference).abs().max())
            p_cpu, p_dev = psnr(reference, images), psnr(on_device, images)
            row.update(input="x".join(map(str, images.shape[1:])), kind="chain" if chain else "one pass",
                       max_abs=max_abs, psnr_cpu=p_cpu, psnr_dev=p_dev, d_psnr=p_dev - p_cpu)
            row["ok"] = (max_abs <= TOL_CHAIN and abs(p_dev - p_cpu) <= TOL_CHAIN_PSNR) if chain else max_abs <= TOL_ONE_PASS
            precision = "bf16"
            try:
                Acceleration(precision).check_device(device)
            except InpaintBenchError:
                precision = None
            if precision:
                applied = Acceleration(precision).apply(method)
                low = run_method(method, images, label, device, applied)
                row["bf16_d_psnr"] = psnr(low, images) - p_dev
                row["bf16_max_abs"] = float((low - on_device).abs().max())
        except Exception as err:  # one method's failure is a row, not the end of the check
            row["note"] = f"error: {type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
            row["ok"] = False
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        log(f"(a) {label}: {row.get('max_abs', row.get('note'))}")
        del method
        free(device)
    return rows, no_network


# ---------------------------------------------------------------------------- (b) RePaint throughput


def build_unet_folder(config: dict, folder: Path) -> Path:
    """A diffusers folder (UNet2DModel with random seeded weights + a 1000-step linear
    DDPMScheduler) that ``RePaint(weights=...)`` and ``load_ddpm`` read."""
    from diffusers import DDPMScheduler, UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DModel(**config)
    unet.save_pretrained(folder, safe_serialization=True)
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder)
    return folder


@contextlib.contextmanager
def recorded_diffusers_draws(draws: list[torch.Tensor]) -> Iterator[None]:
    """Record every ``randn_tensor`` draw of diffusers' RePaint pipeline and scheduler."""
    import diffusers.pipelines.deprecated.repaint.pipeline_repaint as pipe_mod
    import diffusers.schedulers.scheduling_repaint as sched_mod

    originals = (pipe_mod.randn_tensor, sched_mod.randn_tensor)

    def recorder(original: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def randn(*args: Any, **kwargs: Any) -> torch.Tensor:
            out = original(*args, **kwargs)
            draws.append(out.clone())
            return out
        return randn

    pipe_mod.randn_tensor, sched_mod.randn_tensor = recorder(originals[0]), recorder(originals[1])
    try:
        yield
    finally:
        pipe_mod.randn_tensor, sched_mod.randn_tensor = originals


class ReplayRNG:
    """Hands out recorded draws in order (in place of a SampleRNG in the core's loop)."""

    def __init__(self, draws: list[torch.Tensor]):
        self.draws = iter(draws)

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return next(self.draws)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        out = next(self.draws)
        if out.shape != x.shape:
            raise RuntimeError(f"replayed draw {list(out.shape)} for a state {list(x.shape)}")
        return out


def equal_output_check(unet: torch.nn.Module, T: int, j: int, r: int, device: torch.device) -> dict:
    """Same network, ``t_T = T`` (no respacing), the same draws: diffusers' RePaintPipeline and
    the core's loop on diffusers' chain of states give the same image. Returns
    ``{max_abs, nfe, ok}`` (tolerance 1e-3 on a GPU: the chain repeats the same kernels)."""
    from diffusers import RePaintPipeline, RePaintScheduler

    from inpaintbench.methods.diffusion import core
    from inpaintbench.methods.diffusion.conditioning import Replacement

    size = unet.config.sample_size
    images = images_for(3, size, 1).to(device)
    mask = box_mask(1, size).to(device)
    x0, known = images * 2 - 1, (~mask).float()
    scheduler = RePaintScheduler(num_train_timesteps=T, eta=1.0)
    pipe = RePaintPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    draws: list[torch.Tensor] = []
    with recorded_diffusers_draws(draws), torch.no_grad():
        ref = pipe(image=x0, mask_image=known, num_inference_steps=T, jump_length=j, jump_n_sample=r, eta=1.0,
                   generator=torch.Generator(device).manual_seed(0), output_type="np").images
    ref = torch.from_numpy(ref).permute(0, 3, 1, 2)  # diffusers returns NHWC numpy in [0, 1]
    states = [scheduler.timesteps.tolist()[0]] + [t - 1 for t in scheduler.timesteps.tolist()]
    respacing = core.Respacing(core.NoiseSchedule.from_scheduler(scheduler), T)
    out, nfe = core.sample(core.UNet2DDenoiser(unet), respacing, states, ReplayRNG(draws), shape=x0.shape,
                           guidance=Replacement(x0, mask), eta=1.0)
    max_abs = float(((out / 2 + 0.5).clamp(0, 1) - ref.to(device)).abs().max())
    return {"max_abs": max_abs, "nfe": nfe, "ok": max_abs <= 1e-3}


def section_b(sizes: Sizes, device: torch.device, budget: Budget, tmp: Path, log) -> dict:
    """(b): ``{"network", "nfe", "schedule", "equal_output", "rows": [...]}``; each row
    ``{who, precision, channels_last, compile, batch, seconds, images_per_s, ms_per_nfe_image,
    paper_s_per_image, peak_gib, speedup}`` (speedup: images/s over diffusers fp32 at the same batch)."""
    from diffusers import RePaintPipeline, RePaintScheduler

    from inpaintbench.methods.diffusion.core import repaint_schedule, schedule_nfe
    from inpaintbench.methods.diffusion.ddpm import load_ddpm
    from inpaintbench.methods.diffusion.repaint import RePaint

    folder = build_unet_folder(sizes.unet, tmp / "unet")
    t_T, j, r = sizes.t_T, sizes.jump_length, sizes.jump_n_sample
    nfe = schedule_nfe(repaint_schedule(t_T, j, r))
    paper_nfe = schedule_nfe(repaint_schedule(PAPER["t_T"], PAPER["jump_length"], PAPER["jump_n_sample"]))
    size = sizes.unet["sample_size"]
    out: dict[str, Any] = {"network": f"UNet2DModel {sizes.unet['block_out_channels']} at {size}x{size}",
                           "schedule": f"t_T={t_T} j={j} r={r} over T=1000", "nfe": nfe, "paper_nfe": paper_nfe,
                           "rows": []}
    unet_d, _ = load_ddpm(folder, device=device)  # diffusers' own copy of the same weights
    out["parameters_m"] = sum(p.numel() for p in unet_d.parameters()) / 1e6
    if budget.allows(30, "(b) equal-output replay"):
        out["equal_output"] = equal_output_check(unet_d, *sizes.equal_T, device)
        log(f"(b) equal output: {out['equal_output']}")
    pipe = RePaintPipeline(unet=unet_d, scheduler=RePaintScheduler(num_train_timesteps=1000, eta=1.0))
    pipe.set_progress_bar_config(disable=True)

    def inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = images_for(3, size, batch)
        return images.to(device), box_mask(batch, size).to(device)

    def diffusers_call(batch: int, precision: str, steps: tuple[int, int, int]) -> Callable[[], Any]:
        images, mask = inputs(batch)
        x0, known = images * 2 - 1, (~mask).float()
        acc = Acceleration(precision)

        def call() -> Any:
            with torch.no_grad(), acc.autocast(device):
                return pipe(image=x0, mask_image=known, num_inference_steps=steps[0], jump_length=steps[1],
                            jump_n_sample=steps[2], eta=1.0, generator=torch.Generator(device).manual_seed(0),
                            output_type="np")  # its only tensor-free output; the copy to the host is its cost
        return call

    ours_cache: dict[tuple, Any] = {}

    def ours_call(batch: int, acc: Acceleration) -> tuple[Callable[[], Any], Callable[[], Any]]:
        key = (acc.channels_last, acc.compile)
        if key not in ours_cache:  # a fresh copy per layout / compile: apply() changes the network in place
            ours_cache.clear()
            free(device)
            ours_cache[key] = RePaint(weights=folder, num_steps=t_T, jump_length=j, jump_n_sample=r).to(device)
        method = ours_cache[key]
        applied = acc.apply(method)  # layout / compile happen once per copy; the precision is this row's
        images, mask = inputs(batch)
        task = Inpainting(mask)
        observation = task.observe(images)
        full_schedule = method.schedule

        def call(schedule: list[int] = full_schedule) -> Any:
            method.schedule = schedule
            rng = SampleRNG.for_samples(0, "gpu-check-b", sample_ids=[str(i) for i in range(batch)], device=device)
            with applied.autocast():
                return method.restore(observation, rng)

        warm = [2, 1, 0, -1]  # 3 network calls at the same shapes: cuDNN autotuning, compilation, CUDA graphs
        return (lambda: call(warm)), (lambda: call(full_schedule))

    def timed_row(who: str, acc: Acceleration, batch: int, warm: Callable[[], Any], run: Callable[[], Any]) -> dict:
        warm()
        sync(device)
        timed = timed_call(run, device)
        row = {"who": who, **acc.describe(), "batch": batch, "seconds": timed.seconds,
               "images_per_s": batch / timed.seconds, "ms_per_nfe_image": 1000 * timed.seconds / (nfe * batch),
               "paper_s_per_image": timed.seconds / batch * paper_nfe / nfe,
               "peak_gib": None if timed.peak_memory_bytes is None else timed.peak_memory_bytes / 2**30}
        log(f"(b) {who} {acc.describe()} batch {batch}: {timed.seconds:.2f} s, {row['images_per_s']:.3f} img/s")
        return row

    # The batch: from the peak memory of a one-image call of ours in bf16 (fp32 on the CPU), half the GPU.
    probe_acc = Acceleration("bf16" if device.type == "cuda" else "fp32")
    warm, _ = ours_call(1, probe_acc)
    peak, resident = measure_peak_bytes(warm, device)
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    batch = auto_batch_size(peak, total // 2, sizes.max_batch_b, resident_bytes=resident) if total else sizes.max_batch_b
    out["batch"] = batch
    out["batch_rule"] = (f"auto_batch_size(peak of one image {peak / 2**30:.2f} GiB, resident {resident / 2**30:.2f} GiB, "
                         f"budget = half of {total / 2**30:.0f} GiB, max {sizes.max_batch_b})" if total else
                         f"CPU: no allocator statistics, max_batch = {sizes.max_batch_b}")

    fp32 = Acceleration()
    warm_steps = (2, 1, 1)
    # Estimates (s) of each row on an H200 at the full sizes, so that a short budget skips, not overruns.
    plan = [
        ("diffusers", fp32, 1, 10), ("ours", fp32, 1, 10),
        ("diffusers", fp32, batch, 40), ("ours", fp32, batch, 40),
        ("diffusers", Acceleration("bf16"), batch, 15), ("ours", Acceleration("bf16"), batch, 15),
        ("ours", Acceleration("bf16", channels_last=True), batch, 15),
        ("ours", Acceleration("bf16", channels_last=True, compile=True,
                              compile_mode="reduce-overhead" if device.type == "cuda" else None,
                              compile_backend=sizes.compile_backend), batch, 180),
    ]
    for who, acc, b, estimate in plan:
        if not budget.allows(2 if sizes.smoke else estimate, f"(b) {who} {acc.describe()} batch {b}"):
            continue
        try:
            if who == "diffusers":
                row = timed_row(who, acc, b, diffusers_call(b, acc.precision, warm_steps),
                                diffusers_call(b, acc.precision, (t_T, j, r)))
            else:
                warm, run = ours_call(b, acc)
                row = timed_row(who, acc, b, warm, run)
        except Exception as err:
            row = {"who": who, **acc.describe(), "batch": b, "note": f"error: {type(err).__name__}: {str(err)[:160]}"}
            traceback.print_exc()
        out["rows"].append(row)
    base = {(row["batch"]): row["images_per_s"] for row in out["rows"]
            if row["who"] == "diffusers" and row.get("precision") == "fp32" and "images_per_s" in row}
    for row in out["rows"]:
        if "images_per_s" in row and row["batch"] in base:
            row["speedup"] = row["images_per_s"] / base[row["batch"]]
    ours = [row for row in out["rows"] if row["who"] == "ours" and "speedup" in row]
    if ours:
        best = max(ours, key=lambda row: row["images_per_s"])
        out["best"] = best
        out["target_met"] = best["speedup"] >= 1.5
    # Drop the networks before the allocator's cache is emptied (the closures above keep these
    # names, so they are rebound rather than deleted).
    ours_cache.clear()
    pipe = unet_d = None
    free(device)
    return out


# ---------------------------------------------------------------------------- (c) Big LaMa


def section_c(sizes: Sizes, device: torch.device, budget: Budget, tmp: Path, log) -> dict:
    """(c): ``{"network", "size", "rows": [{precision, channels_last, batch, seconds_median,
    images_per_s, peak_gib, max_abs_vs_fp32}]}`` of ``lama-official`` on random weights."""
    arch = sizes.lama_arch
    checkpoint = random_big_lama_checkpoint(tmp, arch)
    size = sizes.lama_size
    out: dict[str, Any] = {"size": size, "rows": []}

    def build(acc: Acceleration):
        method = method_registry().create("lama-official", checkpoint=str(checkpoint), arch=arch or None).to(device)
        return method, acc.apply(method)

    def call(method, applied, batch: int) -> Callable[[], Any]:
        images = images_for(3, size, batch).to(device)
        task = Inpainting(box_mask(batch, size).to(device))
        observation = task.observe(images)
        rng = SampleRNG.for_samples(0, "gpu-check-c", sample_ids=[str(i) for i in range(batch)], device=device)

        def run() -> torch.Tensor:
            with applied.autocast():
                return method.restore(observation, rng).image
        return run

    method, applied = build(Acceleration())
    out["parameters_m"] = sum(p.numel() for p in method.model.parameters()) / 1e6
    shown = {k: method.model.arch[k] for k in ("ngf", "n_downsampling", "n_blocks", "max_features")}
    out["network"] = f"BigLamaGenerator {shown}" + ("" if arch else " (Big LaMa's own configuration)")
    peak, resident = measure_peak_bytes(call(method, Acceleration("bf16" if device.type == "cuda" else "fp32").apply(method), 1), device)
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    batch = auto_batch_size(peak, total // 2, sizes.max_batch_c, resident_bytes=resident) if total else sizes.max_batch_c
    out["batch_rule"] = (f"auto_batch_size(bf16 peak of one image {peak / 2**30:.2f} GiB, resident {resident / 2**30:.2f} "
                         f"GiB, budget = half of {total / 2**30:.0f} GiB, max {sizes.max_batch_c})" if total else
                         f"CPU: max_batch = {sizes.max_batch_c}")
    del method
    free(device)
    references: dict[int, torch.Tensor] = {}
    for acc, b in [(Acceleration(), 1), (Acceleration("bf16"), 1), (Acceleration(), batch), (Acceleration("bf16"), batch),
                   (Acceleration("bf16", channels_last=True), batch)]:
        if not budget.allows(2 if sizes.smoke else 20, f"(c) {acc.describe()} batch {b}"):
            continue
        try:
            method, applied = build(acc)
            run = call(method, applied, b)
            first = run()  # warm-up (cuDNN autotuning), and the output compared with fp32's
            times, peaks = [], []
            for _ in range(sizes.repeats):
                timed = timed_call(run, device)
                times.append(timed.seconds)
                peaks.append(timed.peak_memory_bytes)
            seconds = statistics.median(times)
            if acc.precision == "fp32" and not acc.channels_last:
                references[b] = first.float().cpu()
            row = {**applied.describe(), "batch": b, "seconds_median": seconds, "images_per_s": b / seconds,
                   "peak_gib": None if peaks[0] is None else max(peaks) / 2**30}
            if b in references:
                row["max_abs_vs_fp32"] = float((first.float().cpu() - references[b]).abs().max())
            log(f"(c) {acc.describe()} batch {b}: {row['images_per_s']:.2f} img/s")
        except Exception as err:
            row = {**acc.describe(), "batch": b, "note": f"error: {type(err).__name__}: {str(err)[:160]}"}
            traceback.print_exc()
        out["rows"].append(row)
        method = None
        free(device)
    return out


# ---------------------------------------------------------------------------- (d) the report


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 10**6):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        # A failed tolerance is bold, so it stands out in a long table.
        lines.append("| " + " | ".join("**no**" if key == "ok" and row.get(key) is False else fmt(row.get(key))
                                       for key, _ in columns) + " |")
    return lines


def machine(device: torch.device) -> list[str]:
    import diffusers

    lines = [f"- device: `{device}`" + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else
                                         f" (no GPU: {platform.processor() or platform.machine()}, "
                                         f"{torch.get_num_threads()} torch threads)")]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.append(f"- GPU memory {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}, "
                     f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    lines.append(f"- torch {torch.__version__}, diffusers {diffusers.__version__}, Python {platform.python_version()}, "
                 f"{platform.platform()}")
    lines.append("- fp32 is strict fp32: TF32 off for matmuls and cuDNN convolutions (`allow_tf32 = False`)")
    return lines


def write_report(path: Path, args: argparse.Namespace, device: torch.device, results: dict, budget: Budget,
                 elapsed: float) -> None:
    """(d): the Markdown report of everything measured so far."""
    title = "GPU check (smoke run: tiny sizes, NOT a GPU result)" if args.smoke else "GPU check"
    lines = [f"# {title}", "", f"Written by `benchmarks/gpu/check.py` on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
             f"{elapsed:.0f} s of a {args.budget_s:.0f} s budget.", "", "## Machine", "", *machine(device), "",
             "## Command", "", "```", "bash benchmarks/gpu/check.sh " + " ".join(sys.argv[1:]), "```", ""]
    if "a" in results:
        rows, classical = results["a"]
        lines += ["## (a) CUDA vs CPU, same noise, strict fp32", "",
                  f"Tolerances: one pass max abs <= {TOL_ONE_PASS:g}; chains max abs <= {TOL_CHAIN:g} and "
                  f"|PSNR difference| <= {TOL_CHAIN_PSNR:g} dB. PSNR of the composite against the original "
                  "(box hole; 2x super-resolution for upscalers). bf16 columns: the device's bf16 run against its fp32 run.", "",
                  *table(rows, [("method", "method"), ("input", "input"), ("kind", "kind"), ("max_abs", "max abs diff"),
                                ("psnr_cpu", "PSNR cpu"), ("psnr_dev", "PSNR device"), ("d_psnr", "PSNR diff"),
                                ("ok", "within tol."), ("bf16_max_abs", "bf16 max abs"), ("bf16_d_psnr", "bf16 PSNR diff"),
                                ("seconds", "s"), ("note", "note")]), "",
                  f"Not compared (no torch network): {', '.join(classical) or '-'}. A method that thresholds a "
                  "network's output (ilvr-predicted-mask's hole predictor) can flip pixels of its mask in bf16, "
                  "so its bf16 difference is large by construction.", ""]
    if "b" in results:
        b = results["b"]
        lines += ["## (b) RePaint throughput: ours vs diffusers' RePaintPipeline, same network", "",
                  f"Network: {b['network']}, {b.get('parameters_m', 0):.1f} M parameters, random weights. "
                  f"Schedule: {b['schedule']} = **{b['nfe']} NFE** per image for both (RePaint's jump structure on a "
                  f"shortened t_T; the paper's t_T=250 j=10 r=10 is {b['paper_nfe']} NFE: `paper s/img` extrapolates "
                  f"linearly). Batch: {b.get('batch')} ({b.get('batch_rule', '')}). Speed-up: images/s over diffusers fp32 "
                  "at the same batch; target >= 1.5x.", ""]
        if "equal_output" in b:
            e = b["equal_output"]
            lines += [f"Equal output (t_T = T = {results['sizes'].equal_T[0]}, j={results['sizes'].equal_T[1]}, "
                      f"r={results['sizes'].equal_T[2]}: the chains coincide; diffusers' draws replayed into the core on "
                      f"diffusers' chain): max abs {fmt(e['max_abs'])} over {e['nfe']} NFE, within 1e-3: {fmt(e['ok'])}.", ""]
        lines += table(b["rows"], [("who", "sampler"), ("precision", "precision"), ("channels_last", "channels_last"),
                                   ("compile", "compile"), ("compile_mode", "mode"), ("batch", "batch"),
                                   ("seconds", "s"), ("images_per_s", "img/s"), ("ms_per_nfe_image", "ms/NFE/img"),
                                   ("paper_s_per_image", "paper s/img"), ("peak_gib", "peak GiB"), ("speedup", "speed-up"),
                                   ("note", "note")])
        if "best" in b:
            best = b["best"]
            lines += ["", f"Best of ours: {best['precision']}, channels_last={best['channels_last']}, compile={best['compile']}, "
                      f"batch {best['batch']}: **{best['speedup']:.2f}x** diffusers fp32; target >= 1.5x met: {fmt(b['target_met'])}."]
        lines.append("")
    if "c" in results:
        c = results["c"]
        lines += [f"## (c) Big LaMa inference at {c['size']}x{c['size']}", "",
                  f"{c.get('network', '')}, {c.get('parameters_m', 0):.1f} M parameters, random weights, the "
                  f"`lama-official` method (box hole). Batch: {c.get('batch_rule', '')}. Median of the timed repeats "
                  "after one warm-up call.", "",
                  *table(c["rows"], [("precision", "precision"), ("channels_last", "channels_last"),
                                     ("batch", "batch"), ("seconds_median", "s/call"),
                                     ("images_per_s", "img/s"), ("peak_gib", "peak GiB"),
                                     ("max_abs_vs_fp32", "max abs vs fp32"), ("note", "note")]), ""]
    for key, err in results.get("errors", {}).items():
        lines += [f"Section ({key}) failed: `{err}`", ""]
    if budget.skipped:
        lines += ["## Skipped for the budget", "", *[f"- {s}" for s in budget.skipped], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, few steps, any device (< 2 min)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget in seconds (default 480)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "gpu" / "GPU.md", help="the report to write")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--sections", default="abc", help="which of a, b, c to run (default abc)")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu" and not args.smoke:
        print("no CUDA device: run with --smoke on a CPU (the full check is for a GPU)", file=sys.stderr)
        return 2
    sizes = SMOKE if args.smoke else FULL
    # Strict fp32: the CPU/GPU comparison and the fp32 rows must not silently use TF32.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels (after warm-up)
    budget = Budget(args.budget_s)
    started = time.perf_counter()
    results: dict[str, Any] = {"sizes": sizes, "errors": {}}

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    log(f"device {device}, budget {args.budget_s:.0f} s, {'smoke' if args.smoke else 'full'} sizes")
    sections = {"a": section_a, "b": section_b, "c": section_c}
    with tempfile.TemporaryDirectory(prefix="inpaintbench-gpu-") as tmp:
        for key in args.sections:
            if key not in sections:
                print(f"unknown section {key!r} (a, b, c)", file=sys.stderr)
                return 2
            if not budget.allows(5, f"section ({key})"):
                continue
            try:
                results[key] = sections[key](sizes, device, budget, Path(tmp), log)
            except Exception as err:
                traceback.print_exc()
                results["errors"][key] = f"{type(err).__name__}: {err}"
            write_report(args.out, args, device, results, budget, time.perf_counter() - started)
            log(f"section ({key}) done; report {args.out}")
    failed = [row["method"] for row in results.get("a", ([], []))[0] if row.get("ok") is False]
    if "b" in results and results["b"].get("equal_output", {}).get("ok") is False:
        failed.append("(b) equal output")
    log(f"done in {time.perf_counter() - started:.0f} s; outside tolerance: {failed or 'none'}; "
        f"errors: {list(results['errors']) or 'none'}; skipped: {len(budget.skipped)}")
    return 1 if failed or results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
