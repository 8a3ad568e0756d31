"""The GAN family as suite methods: ``mi-gan``, ``comodgan`` and ``mat``.

Each method loads the authors' released weights into the suite's own generator (nothing in a
weights file runs), converts the suite's convention at its edge (images in ``[0, 1]``, bool
masks True = hole) to the network's, and returns the raw output; the harness composites it,
as the authors' evaluation does (``m * x + (1 - m) * G(x)``).

Size rules are class metadata so the harness can refuse a run at plan time:
:attr:`GanInpainter.native_sizes` lists the resolutions the authors trained, and
:meth:`GanInpainter.check_size` raises the one-line :class:`InputError` a method call also
raises. These networks have fixed-size layers (stored noise images, 4x4 fully connected
layers): an image must be exactly ``resolution x resolution``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.method import Method, Restoration
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import apply_mask, check_image_batch, check_mask_batch
from inpaintbench.methods.gan.comodgan_network import CoModGANGenerator
from inpaintbench.methods.gan.loaders import is_torchscript, load_strict, read_tensors
from inpaintbench.methods.gan.mat_network import Generator as MATGenerator
from inpaintbench.methods.gan.migan_network import MIGANGenerator
from inpaintbench.methods.gan.stylegan_pickle import read_stylegan_pickle

MIGAN_ENV = "INPAINTBENCH_MI_GAN"
COMODGAN_ENV = "INPAINTBENCH_COMODGAN"
MAT_ENV = "INPAINTBENCH_MAT"

_MIGAN_DRIVE = "https://drive.google.com/drive/folders/1xNtvN2lto0p5yFKOEEg9RioMjGrYM74w"
_COMODGAN_DRIVE = "https://drive.google.com/drive/folders/1VATyNQQJW2VpuHND02bc-3_4ukJMHQ44"
_MAT_ONEDRIVE = ("https://mycuhk-my.sharepoint.com/:f:/g/personal/1155137927_link_cuhk_edu_hk/"
                 "EuY30ziF-G5BvwziuHNFzDkBVC6KBPRg69kCeHIu-BXORA?e=7OwJyE")


class GanInpainter(Method):
    """Shared edge of the GAN family: checkpoint resolution, size rules, RGB/grey handling.

    Subclasses set the class attributes and :meth:`_build_network` / :meth:`_forward`.

    Class attributes:
        native_sizes: the square resolutions the authors released (``resolution=`` values).
        size_multiple: ``None`` -- the image must be exactly ``resolution x resolution``.
        env_var: environment variable naming the weights when ``checkpoint=`` is not given.
        sources: where users get the weights (file names and the authors' links).
    """

    native_sizes: ClassVar[tuple[int, ...]] = ()
    size_multiple: ClassVar[int | None] = None
    env_var: ClassVar[str] = ""
    sources: ClassVar[str] = ""
    label: ClassVar[str] = ""
    architecture: ClassVar[str] = ""

    def __init__(self, checkpoint: str | None = None, resolution: int = 256, allow_torchscript: bool = False,
                 **extra: Any):
        super().__init__(checkpoint=checkpoint, resolution=resolution, allow_torchscript=allow_torchscript, **extra)
        self._check_resolution(resolution)
        self.resolution = resolution
        path = self._resolve_checkpoint(checkpoint)
        self._refuse_torchscript(path, allow_torchscript)
        self.loaded_files = [str(path)]
        net = self._build_network(resolution)
        self.network = load_strict(net, self._network_tensors(self._read_weights(path, allow_torchscript), net),
                                   path, f"{self.label} generator at {resolution}x{resolution}")

    # ---------------------------------------------------------------- metadata and checks

    @classmethod
    def _check_resolution(cls, resolution: int) -> None:
        if resolution not in cls.native_sizes:
            raise InputError(f"{cls.label} has resolution {' or '.join(map(str, cls.native_sizes))}, got {resolution}")

    @classmethod
    def check_size(cls, height: int, width: int, resolution: int = 256, **_: Any) -> None:
        """Raise :class:`InputError` unless ``height x width`` fits the method configured with
        ``resolution`` (the harness calls this at plan time with the method's options)."""
        if (height, width) != (resolution, resolution):
            raise InputError(f"{cls.label} needs {resolution}x{resolution} images, this dataset is "
                             f"{height}x{width}: pass --size {resolution}")

    def accepts(self, channels: int, height: int, width: int) -> str | None:
        """Exactly ``resolution x resolution`` (:meth:`check_size`); grey or RGB."""
        try:
            self.check_size(height, width, resolution=self.resolution)
        except InputError as err:
            return str(err)
        return None

    @classmethod
    def _resolve_checkpoint(cls, checkpoint: str | os.PathLike | None) -> Path:
        source = checkpoint if checkpoint is not None else os.environ.get(cls.env_var)
        if not source:
            raise MethodUnavailable(f"{cls.label} needs the authors' weights: pass checkpoint=PATH or set "
                                    f"${cls.env_var}. Get {cls.sources}.")
        path = Path(source).expanduser()
        if not path.is_file():
            raise MethodUnavailable(f"{cls.label} weights not found: {path} does not exist. Get {cls.sources}.")
        return path

    @classmethod
    def _refuse_torchscript(cls, path: Path, allow_torchscript: bool) -> None:
        if not allow_torchscript and is_torchscript(path):
            raise MethodUnavailable(f"{path} is a TorchScript archive: pass allow_torchscript=True to read its "
                                    "tensors (its code is never run), or use the released state dict")

    @classmethod
    def check_available(cls, checkpoint: str | None = None, allow_torchscript: bool = False,
                        resolution: int = 256, **_: Any) -> None:
        """Raise :class:`MethodUnavailable` when the method cannot be built for want of a file,
        without reading the weights (listing methods must stay cheap)."""
        cls._check_resolution(resolution)
        cls._refuse_torchscript(cls._resolve_checkpoint(checkpoint), allow_torchscript)

    # ---------------------------------------------------------------- network

    def _build_network(self, resolution: int) -> nn.Module:
        raise NotImplementedError

    def _read_weights(self, path: Path, allow_torchscript: bool) -> dict[str, torch.Tensor]:
        """The tensors of the weights file (nothing in it runs): a state dict, ``.safetensors``
        or, with ``allow_torchscript``, a TorchScript archive read as tensors."""
        return read_tensors(path, allow_torchscript=allow_torchscript)

    def _network_tensors(self, tensors: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
        # A traced export may wrap the generator in one more module ("model.", "generator."):
        # strip a first component that every key shares when the network's own keys lack it.
        expected = net.state_dict()
        heads = {k.split(".", 1)[0] for k in tensors}
        if not any(k in expected for k in tensors) and len(heads) == 1 and all("." in k for k in tensors):
            return {k.split(".", 1)[1]: v for k, v in tensors.items()}
        return tensors

    def _forward(self, x: torch.Tensor, rng: SampleRNG) -> torch.Tensor:
        raise NotImplementedError

    def _generate(self, image: torch.Tensor, mask: torch.Tensor, rng: SampleRNG) -> torch.Tensor:
        """``image [B, 3, R, R]`` in ``[0, 1]`` (holes zero), ``mask`` bool (True = hole) -> the
        network's output in ``[-1, 1]``; MI-GAN's and CoModGAN's input by default."""
        return self._forward(self.network_input(image, mask), rng)

    def to(self, device: torch.device | str) -> "GanInpainter":
        super().to(device)
        self.network.to(self.device)
        return self

    # ---------------------------------------------------------------- inference

    @staticmethod
    def network_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MI-GAN's and CoModGAN's input: ``[B, 3, H, W]`` in ``[0, 1]`` (holes already zero)
        and the bool mask (True = hole) -> ``cat([known - 0.5, (2 image - 1) * known])``,
        ``[B, 4, H, W]``, known = 1 where the pixel is kept."""
        known = (~mask).to(image.dtype)
        return torch.cat([known - 0.5, (image * 2.0 - 1.0) * known], dim=1)

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *, rng: SampleRNG) -> Restoration:
        """Raw output float32 ``[B, C, H, W]`` in ``[0, 1]`` (C = 1 or 3 as the input; grey
        images are repeated to RGB and the output channels averaged), one generator pass."""
        check_image_batch(image)
        if mask is None:
            raise InputError(f"{self.name} needs the mask (it is not a blind method)")
        check_mask_batch(mask, image)
        self.check_size(image.shape[-2], image.shape[-1], resolution=self.resolution)
        x, m = apply_mask(image, mask).to(self.device), mask.to(self.device)
        grey = x.shape[1] == 1
        if grey:
            x = x.expand(-1, 3, -1, -1)
        out = self._generate(x, m, rng)
        out = (out * 0.5 + 0.5).clamp(0.0, 1.0)
        if grey:
            out = out.mean(dim=1, keepdim=True)
        return Restoration(out.float().to(image.device), {"nfe": 1.0})


class MIGAN(GanInpainter):
    """MI-GAN (Sargsyan et al., ICCV 2023) with the authors' weights (``mi-gan``).

    Deterministic: the inference generator's noise is a stored constant.

    Args:
        checkpoint: ``migan_256_places2.pt``, ``migan_512_places2.pt``, ``migan_256_ffhq.pt``
            (state dicts of ``lib/model_zoo/migan_inference.Generator``) or a ``.safetensors``
            file of the same keys. Default: ``$INPAINTBENCH_MI_GAN``.
        resolution: 256 or 512 (the checkpoint's); images must be exactly that size.
        allow_torchscript: accept a traced export (e.g. IOPaint's ``migan_traced.pt``): its
            tensors are read from the archive, its code never runs.
    """

    native_sizes = (256, 512)
    env_var = MIGAN_ENV
    label = "mi-gan"
    architecture = "MI-GAN inference generator"
    sources = (f"migan_256_places2.pt / migan_512_places2.pt / migan_256_ffhq.pt from the MI-GAN authors "
               f"({_MIGAN_DRIVE}, linked from https://github.com/Picsart-AI-Research/MI-GAN)")

    def __init__(self, checkpoint: str | None = None, resolution: int = 256, allow_torchscript: bool = False):
        super().__init__(checkpoint=checkpoint, resolution=resolution, allow_torchscript=allow_torchscript)

    def _build_network(self, resolution: int) -> nn.Module:
        return MIGANGenerator(resolution)

    def _forward(self, x: torch.Tensor, rng: SampleRNG) -> torch.Tensor:
        return self.network(x)


class CoModGAN(GanInpainter):
    """CoModGAN (Zhao et al., ICLR 2021), the MI-GAN authors' PyTorch port and weights (``comodgan``).

    Stochastic as in the authors' evaluation (``model(x)``: a random latent ``z`` and
    ``noise_mode="random"``): ``z`` and every per-pixel noise image are drawn from the sample's
    own generator of ``rng``, so a sample's output depends only on its seed.

    Args:
        checkpoint: ``comodgan_256_places2.pt``, ``comodgan_512_places2.pt``,
            ``comodgan_256_ffhq.pt`` or ``.safetensors``. Default: ``$INPAINTBENCH_COMODGAN``.
        resolution: 256 or 512.
        noise_mode: ``"random"`` (per-sample draws), ``"const"`` (the stored noise images) or ``"none"``.
        truncation_psi: 1 = no truncation (the authors' evaluation).
        allow_torchscript: as :class:`MIGAN`.
    """

    native_sizes = (256, 512)
    deterministic = False
    env_var = COMODGAN_ENV
    label = "comodgan"
    architecture = "CoModGAN (MI-GAN authors' PyTorch port)"
    sources = (f"comodgan_256_places2.pt / comodgan_512_places2.pt / comodgan_256_ffhq.pt from the MI-GAN authors "
               f"({_COMODGAN_DRIVE}, linked from https://github.com/Picsart-AI-Research/MI-GAN)")

    def __init__(self, checkpoint: str | None = None, resolution: int = 256, noise_mode: str = "random",
                 truncation_psi: float = 1.0, allow_torchscript: bool = False):
        if noise_mode not in ("random", "const", "none"):
            raise InputError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        super().__init__(checkpoint=checkpoint, resolution=resolution, allow_torchscript=allow_torchscript,
                         noise_mode=noise_mode, truncation_psi=truncation_psi)
        self.noise_mode, self.truncation_psi = noise_mode, float(truncation_psi)

    def _build_network(self, resolution: int) -> nn.Module:
        return CoModGANGenerator(resolution)

    def _forward(self, x: torch.Tensor, rng: SampleRNG) -> torch.Tensor:
        if len(rng) != x.shape[0]:
            raise InputError(f"batch of {x.shape[0]} images but {len(rng)} per-sample generators")

        def draw(*shape: int) -> torch.Tensor:
            return rng.randn(*shape).to(x.device)

        z = draw(self.network.mapping.z_dim)  # first, as the authors' forward draws z before any noise
        return self.network(x, z, noise_mode=self.noise_mode, noise_fn=draw, truncation_psi=self.truncation_psi)


class MAT(GanInpainter):
    """MAT (Li et al., CVPR 2022, mask-aware transformer) with the authors' weights (``mat``).

    The authors' ``generate_image.py`` at the edge: the image in ``[-1, 1]``, the mask with
    1 = known, ``G(images_in, masks_in, z, c, truncation_psi, noise_mode)``. Stochastic: the
    latent ``z``, the two Bernoulli(1/2) bottleneck maps MAT draws at inference (its dropout is
    always on) and, with ``noise_mode="random"``, every noise image are drawn from the sample's
    own generator of ``rng`` (in that order, the order of the authors' forward), so a sample's
    output depends only on its seed.

    Args:
        checkpoint: the authors' network pickle (``Places_512_FullData.pkl``, ``CelebA-HQ.pkl``,
            ``FFHQ-512.pkl``, the CelebA-HQ-256 model; its ``G_ema`` tensors are read without
            running the source it embeds) or a ``.safetensors`` / state dict of the same keys.
            Default: ``$INPAINTBENCH_MAT``.
        resolution: 512, or 256 for the CelebA-HQ-256 model; images must be exactly that size.
        noise_mode: ``"const"`` (the stored noise images), ``"random"`` (per-sample draws) or
            ``"none"``; default as ``generate_image.py``: ``"const"`` at 512, ``"random"`` at 256
            (the official ``"none"`` fails with an unbound variable; here it adds no noise).
        truncation_psi: 1 = no truncation (the authors' default).
    """

    native_sizes = (256, 512)
    deterministic = False
    env_var = MAT_ENV
    label = "mat"
    architecture = "MAT generator (networks/mat.py)"
    sources = (f"Places_512_FullData.pkl / CelebA-HQ.pkl / FFHQ-512.pkl from the MAT authors' OneDrive "
               f"({_MAT_ONEDRIVE}, linked from https://github.com/fenglinglwb/MAT)")

    def __init__(self, checkpoint: str | None = None, resolution: int = 512, noise_mode: str | None = None,
                 truncation_psi: float = 1.0):
        if noise_mode is None:
            noise_mode = "const" if resolution == 512 else "random"
        if noise_mode not in ("random", "const", "none"):
            raise InputError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        super().__init__(checkpoint=checkpoint, resolution=resolution, noise_mode=noise_mode,
                         truncation_psi=truncation_psi)
        self.noise_mode, self.truncation_psi = noise_mode, float(truncation_psi)

    @classmethod
    def check_size(cls, height: int, width: int, resolution: int = 512, **_: Any) -> None:
        """As :meth:`GanInpainter.check_size`, MAT's default resolution being 512."""
        super().check_size(height, width, resolution=resolution)

    @classmethod
    def check_available(cls, checkpoint: str | None = None, resolution: int = 512, **_: Any) -> None:
        """As :meth:`GanInpainter.check_available`, MAT's default resolution being 512."""
        super().check_available(checkpoint=checkpoint, resolution=resolution)

    def _build_network(self, resolution: int) -> nn.Module:
        return MATGenerator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3)

    def _read_weights(self, path: Path, allow_torchscript: bool) -> dict[str, torch.Tensor]:
        # The authors release StyleGAN2-ADA network pickles (not zip archives): the generator's
        # moving average, which generate_image.py runs, is read as data.
        if path.suffix != ".safetensors" and not zipfile.is_zipfile(path):
            return read_stylegan_pickle(path, "G_ema")
        return read_tensors(path)

    def _generate(self, image: torch.Tensor, mask: torch.Tensor, rng: SampleRNG) -> torch.Tensor:
        if len(rng) != image.shape[0]:
            raise InputError(f"batch of {image.shape[0]} images but {len(rng)} per-sample generators")
        known = (~mask).to(image.dtype)

        def draw(*shape: int) -> torch.Tensor:
            return rng.randn(*shape).to(image.device)

        def keep(*shape: int) -> torch.Tensor:
            # The 0/1 maps of MAT's always-on dropout (p = 1/2 on a map of 1/2).
            return torch.stack([torch.empty(shape, device=rng.device).bernoulli_(0.5, generator=g)
                                for g in rng.generators]).to(image.device)

        z = draw(self.network.z_dim)  # first, as generate_image.py draws z before the forward
        return self.network((image * 2.0 - 1.0) * known, known, z, None, truncation_psi=self.truncation_psi,
                            noise_mode=self.noise_mode, noise_fn=draw, keep_fn=keep)
