"""The public checkpoints the suite knows, and ``inpaintbench weights`` (list / verify).

Nothing here downloads anything: the catalogue says where each file comes from (the authors'
own links), which method reads it and with which architecture preset, and how to give it to
the method. ``verify`` loads a file strictly (no code from the file runs) and prints its
architecture, parameter count and sha256, so a download can be checked before a long run.

sha256 values are only listed where the authors published one; none of these authors did,
so every entry says "not published" (``verify`` prints the hash of your copy, to record).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.identity import file_sha256

__all__ = ["CHECKPOINTS", "Checkpoint", "add_weights_parser", "cmd_weights", "format_listing", "verify"]

NOT_PUBLISHED = "not published"


@dataclass(frozen=True)
class Checkpoint:
    """One public checkpoint.

    Attributes:
        name: the catalogue name (the ADM preset name for ADM checkpoints).
        file: the file name the authors distribute.
        methods: registry names of the methods that read it.
        architecture: ``"adm:<preset>"`` or ``"big-lama"``.
        url: the authors' download link (as their README / script gives it).
        sha256: the authors' published hash, or :data:`NOT_PUBLISHED`.
        usage: how a suite gives it to the method.
        note: what else to know (source of the link, support status).
        supported: False when the suite lists it but cannot run it.
    """

    name: str
    file: str
    methods: tuple[str, ...]
    architecture: str
    url: str
    usage: str
    sha256: str = NOT_PUBLISHED
    note: str = ""
    supported: bool = True


def _adm_usage(file: str, preset: str) -> str:
    # ADM files are read from wherever they are: no environment variable names them.
    return (f'any folder; a suite method table {{ name = "repaint", model = "PATH/{file}", adm = "{preset}" }} '
            f'(model= and adm= work for every method listed above)')


_ADM_METHODS = ("repaint", "repaint-paper", "ddpm-paste", "ilvr", "ilvr-blind", "ilvr-predicted-mask",
                "sr-inpaint-repaint", "sr-inpaint-ilvr", "sr-bicubic-ilvr")

#: Every public checkpoint the suite knows.
CHECKPOINTS: tuple[Checkpoint, ...] = (
    Checkpoint("repaint-celeba256", "celeba256_250000.pt", _ADM_METHODS, "adm:repaint-celeba256",
               "https://drive.google.com/uc?id=1norNWWGYP3EZ_o05DmoW1ryKuKMmhlCX",
               _adm_usage("celeba256_250000.pt", "repaint-celeba256"),
               note="RePaint's CelebA-HQ 256 model (download.sh fetches both RePaint models by Google Drive id "
                    "with gdown without naming them; check the downloaded name, or run `inpaintbench weights "
                    "verify`, which finds the preset from the tensors)"),
    Checkpoint("repaint-places256", "places256_300000.pt", _ADM_METHODS, "adm:repaint-places256",
               "https://drive.google.com/uc?id=1QEl-btGbzQz6IwkXiFGd49uQNTUtTHsk",
               _adm_usage("places256_300000.pt", "repaint-places256"),
               note="RePaint's Places2 256 model (second gdown line of RePaint's download.sh; same "
                    "architecture as the CelebA-HQ model, so verify cannot tell the two apart: the hash can)"),
    Checkpoint("openai-256-uncond", "256x256_diffusion_uncond.pt", _ADM_METHODS, "adm:openai-256-uncond",
               "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
               _adm_usage("256x256_diffusion_uncond.pt", "openai-256-uncond"),
               note="OpenAI guided-diffusion, unconditional ImageNet 256 (README flags, use_fp16 applies on CUDA only)"),
    Checkpoint("ilvr-ffhq256", "ffhq_10m.pt", _ADM_METHODS, "adm:ilvr-ffhq256",
               "https://1drv.ms/u/s!AkQjJhxDm0Fyhqp_4gkYjwVRBe8V_w?e=Et3ITH",
               _adm_usage("ffhq_10m.pt", "ilvr-ffhq256"),
               note="ILVR's FFHQ 256 model (a OneDrive folder of P2-weighting models; take ffhq_10m.pt)"),
    Checkpoint("openai-256-cond", "256x256_diffusion.pt", (), "adm (class_cond=True)",
               "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion.pt",
               "not usable: class-conditional",
               note="ImageNet 256, class-conditional (RePaint's inet256 configs, with a classifier): the suite's "
                    "ADM has no class labels (num_classes) and refuses class_cond=True",
               supported=False),
    Checkpoint("big-lama", "big-lama/models/best.ckpt", ("lama-official",), "big-lama",
               "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip",
               "unzip; method option checkpoint = \"PATH/big-lama/models/best.ckpt\" or "
               "$INPAINTBENCH_BIG_LAMA=PATH/big-lama/models/best.ckpt",
               note="Big LaMa (Places2), a PyTorch Lightning checkpoint: only its tensors are read"),
    Checkpoint("migan-256-places2", "migan_256_places2.pt", ("mi-gan",), "mi-gan:256", "https://drive.google.com/drive/folders/1xNtvN2lto0p5yFKOEEg9RioMjGrYM74w",
               'method options checkpoint = "PATH/migan_256_places2.pt", resolution = 256 (or $INPAINTBENCH_MI_GAN)',
               note="MI-GAN generator, Places2 256x256 (link from the authors' README); a plain state dict"),
    Checkpoint("migan-512-places2", "migan_512_places2.pt", ("mi-gan",), "mi-gan:512", "https://drive.google.com/drive/folders/1xNtvN2lto0p5yFKOEEg9RioMjGrYM74w",
               'method options checkpoint = "PATH/migan_512_places2.pt", resolution = 512 (or $INPAINTBENCH_MI_GAN)',
               note="MI-GAN generator, Places2 512x512 (link from the authors' README); a plain state dict"),
    Checkpoint("migan-256-ffhq", "migan_256_ffhq.pt", ("mi-gan",), "mi-gan:256", "https://drive.google.com/drive/folders/1xNtvN2lto0p5yFKOEEg9RioMjGrYM74w",
               'method options checkpoint = "PATH/migan_256_ffhq.pt", resolution = 256 (or $INPAINTBENCH_MI_GAN)',
               note="MI-GAN generator, FFHQ 256x256 (link from the authors' README); a plain state dict"),
    Checkpoint("comodgan-256-places2", "comodgan_256_places2.pt", ("comodgan",), "comodgan:256", "https://drive.google.com/drive/folders/1VATyNQQJW2VpuHND02bc-3_4ukJMHQ44",
               'method options checkpoint = "PATH/comodgan_256_places2.pt", resolution = 256 (or $INPAINTBENCH_COMODGAN)',
               note="CoModGAN generator (the MI-GAN authors' PyTorch port), Places2 256x256; a plain state dict"),
    Checkpoint("comodgan-512-places2", "comodgan_512_places2.pt", ("comodgan",), "comodgan:512", "https://drive.google.com/drive/folders/1VATyNQQJW2VpuHND02bc-3_4ukJMHQ44",
               'method options checkpoint = "PATH/comodgan_512_places2.pt", resolution = 512 (or $INPAINTBENCH_COMODGAN)',
               note="CoModGAN generator (the MI-GAN authors' PyTorch port), Places2 512x512; a plain state dict"),
    Checkpoint("comodgan-256-ffhq", "comodgan_256_ffhq.pt", ("comodgan",), "comodgan:256", "https://drive.google.com/drive/folders/1VATyNQQJW2VpuHND02bc-3_4ukJMHQ44",
               'method options checkpoint = "PATH/comodgan_256_ffhq.pt", resolution = 256 (or $INPAINTBENCH_COMODGAN)',
               note="CoModGAN generator (the MI-GAN authors' PyTorch port), FFHQ 256x256; a plain state dict"),
    Checkpoint("mat-places512", "Places_512_FullData.pkl", ("mat",), "mat:512", "https://mycuhk-my.sharepoint.com/:f:/g/personal/1155137927_link_cuhk_edu_hk/EuY30ziF-G5BvwziuHNFzDkBVC6KBPRg69kCeHIu-BXORA?e=7OwJyE",
               'method options checkpoint = "PATH/Places_512_FullData.pkl", resolution = 512 (or $INPAINTBENCH_MAT)',
               note="MAT generator, Places2 512x512, trained on the full 8M Places images (the README's "
                    "June 2022 model); a StyleGAN2-ADA persistent pickle that embeds and runs its own source "
                    "when unpickled the usual way: the suite reads only the tensors of its G_ema"),
    Checkpoint("mat-celebahq", "CelebA-HQ.pkl", ("mat",), "mat:512", "https://mycuhk-my.sharepoint.com/:f:/g/personal/1155137927_link_cuhk_edu_hk/EuY30ziF-G5BvwziuHNFzDkBVC6KBPRg69kCeHIu-BXORA?e=7OwJyE",
               'method options checkpoint = "PATH/CelebA-HQ.pkl", resolution = 512 (or $INPAINTBENCH_MAT)',
               note="MAT generator, CelebA-HQ 512x512 (retrained by the authors, README); the same folder "
                    "holds the CelebA-HQ-256 model (resolution = 256); FFHQ-512 is linked from the README news "
                    "(resolution = 512); a persistent pickle read as data like mat-places512"),
)


def _preset_sizes() -> dict[str, int]:
    """Parameter count of every ADM preset (built on the meta device: no memory, no time)."""
    import torch

    from inpaintbench.methods.diffusion.adm import PRESETS, ADMUNet, parameter_count

    with torch.device("meta"):
        return {name: parameter_count(ADMUNet(config)) for name, config in PRESETS.items()}


def format_listing() -> str:
    """The text of ``inpaintbench weights``: one block per checkpoint."""
    sizes = _preset_sizes()
    lines = []
    for ck in CHECKPOINTS:
        preset = ck.architecture.removeprefix("adm:") if ck.architecture.startswith("adm:") else None
        if preset in sizes:
            size = f"{sizes[preset]:,} parameters, ~{sizes[preset] * 4 / 2**20:,.0f} MiB as float32 (derived from the architecture)"
        else:
            size = "not published"
        lines += [
            f"{ck.name}{'' if ck.supported else '  [listed, NOT SUPPORTED]'}",
            f"  file:         {ck.file}",
            f"  methods:      {', '.join(ck.methods) if ck.methods else '-'}",
            f"  architecture: {ck.architecture}",
            f"  url:          {ck.url}",
            f"  size:         {size}",
            f"  sha256:       {ck.sha256}",
            f"  use:          {ck.usage}",
            f"  note:         {ck.note}",
            "",
        ]
    lines.append("check a download: inpaintbench weights verify PATH [--adm PRESET|ARGS.toml]")
    return "\n".join(lines)


#: The GAN inpainters ``weights verify --gan NAME:RESOLUTION`` loads, by registry name.
GAN_METHODS = {"mi-gan": "MIGAN", "comodgan": "CoModGAN", "mat": "MAT"}


def verify(path: str | os.PathLike, adm: str | None = None, gan: str | None = None) -> dict[str, object]:
    """Load a checkpoint strictly and describe it.

    Args:
        path: an ADM ``.pt`` state dict, Big LaMa's ``best.ckpt``, or (with ``gan``) an MI-GAN,
            CoModGAN or MAT file (state dict, safetensors, MAT's pickle read as data).
        adm: an ADM preset name or args file; None: ``big-lama`` for ``.ckpt`` files, else the
            first preset whose architecture matches the file's keys and shapes.
        gan: ``"mi-gan:256"``, ``"comodgan:512"``, ``"mat:512"``...: the GAN generator and
            resolution the file must match (MAT's ``.pkl`` files imply ``mat:512``).

    Returns:
        ``{"path", "architecture", "parameters", "sha256", "catalogue"}`` (``catalogue``: the
        matching catalogue entry name when the hash or preset identifies one, else None).

    Raises:
        MethodUnavailable: the file does not exist.
        InputError: the file does not load strictly (the message names the first mismatch).
    """
    import torch

    from inpaintbench.methods.diffusion import adm as adm_module

    p = Path(path).expanduser()
    if not p.is_file():
        raise MethodUnavailable(f"{p} does not exist")
    if gan is None and adm is None and p.suffix == ".pkl":
        gan = "mat:512"
    if gan is not None:
        architecture, params = _verify_gan(p, gan)
    elif adm is None and p.suffix == ".ckpt":
        try:
            from inpaintbench.methods.feedforward.big_lama_weights import load_big_lama_generator
        except ImportError as err:
            raise MethodUnavailable(f"the Big LaMa loader is not available in this install ({err})") from err
        net = load_big_lama_generator(p)
        architecture, params = "big-lama", adm_module.parameter_count(net)
    else:
        state = adm_module.load_adm_state_dict(p)
        if adm is not None:
            config = adm_module.resolve_adm(adm)
            architecture = f"adm:{adm}" if adm in adm_module.PRESETS else f"adm:{adm} ({config.image_size}px)"
        else:
            config, architecture, first_error = None, "", None
            for name, candidate in adm_module.PRESETS.items():
                with torch.device("meta"):
                    probe = adm_module.ADMUNet(candidate)
                try:
                    adm_module.check_state_dict(probe, state, str(p))
                except InputError as err:
                    first_error = first_error or err
                    continue
                config, architecture = candidate, f"adm:{name}"
                break
            if config is None:
                raise InputError(f"{p} matches no ADM preset ({', '.join(adm_module.PRESETS)}); give --adm PRESET or "
                                 f"an args file. Against {next(iter(adm_module.PRESETS))}: {first_error}")
        model = adm_module.ADMUNet(config)
        adm_module.check_state_dict(model, state, str(p))
        model.load_state_dict(state, strict=True)
        params = adm_module.parameter_count(model)
    digest = file_sha256(p)
    known = [ck.name for ck in CHECKPOINTS if ck.sha256 == digest]
    return {"path": str(p), "architecture": architecture, "parameters": params, "sha256": digest,
            "catalogue": known[0] if known else None}


def _verify_gan(path: Path, gan: str) -> tuple[str, int]:
    """Build the GAN inpainter ``gan`` (``NAME:RESOLUTION``) from ``path`` (strict load, nothing
    executed); its architecture label and parameter count."""
    name, _, resolution = gan.partition(":")
    if name not in GAN_METHODS or not resolution.isdigit():
        raise InputError(f"--gan must be NAME:RESOLUTION with NAME one of {', '.join(GAN_METHODS)}, got {gan!r}")
    from inpaintbench.methods.gan import methods as gan_methods

    method = getattr(gan_methods, GAN_METHODS[name])(checkpoint=str(path), resolution=int(resolution))
    return f"{name}:{resolution}", sum(t.numel() for t in method.network.parameters())


def cmd_weights(args: argparse.Namespace) -> int:
    """``inpaintbench weights`` (list) and ``inpaintbench weights verify PATH [--adm PRESET]``."""
    if args.action == "list":
        if args.path is not None:
            raise InputError("`inpaintbench weights` takes a PATH only with `verify`")
        print(format_listing())
        return 0
    if args.path is None:
        raise InputError("usage: inpaintbench weights verify PATH [--adm PRESET|ARGS.toml | --gan NAME:RESOLUTION]")
    info = verify(args.path, args.adm, args.gan)
    print(f"file:         {info['path']}")
    print(f"architecture: {info['architecture']} (loaded strictly: every key and shape matches)")
    print(f"parameters:   {info['parameters']:,}")
    print(f"sha256:       {info['sha256']}")
    print(f"catalogue:    {info['catalogue'] or 'no published hash to compare with (record this one)'}")
    return 0


def add_weights_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``weights`` sub-command to the ``inpaintbench`` parser."""
    parser = sub.add_parser("weights", help="list the public checkpoints the suite knows; verify a download")
    parser.add_argument("action", nargs="?", default="list", choices=["list", "verify"])
    parser.add_argument("path", nargs="?", help="checkpoint to verify")
    parser.add_argument("--adm", help="ADM preset name or args file (default: found from the file's tensors)")
    parser.add_argument("--gan", help="a GAN inpainter's file: mi-gan:256, mi-gan:512, comodgan:256, comodgan:512, "
                        "mat:256, mat:512 (MAT's .pkl files default to mat:512)")
    parser.set_defaults(func=cmd_weights)
