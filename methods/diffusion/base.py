"""The base of every method that samples a diffusion prior with the core's loop.

:class:`DiffusionMethod` owns what RePaint, ddpm-paste, the ILVR methods and super-resolution
by ILVR share: the weight options (``weights=`` and its alias ``model=``, ``adm=``, a preloaded
``prior=`` pair), the ``chain=`` option, loading the prior and its respacing table
(:func:`~inpaintbench.methods.diffusion.prior.load_prior`), ``loaded_files``, device moves,
input checks, the config rule and the chunked call of
:func:`~inpaintbench.methods.diffusion.core.sample`. A subclass is its schedule, its
conditioning strategy and its task hook.
"""

from __future__ import annotations

import os
from typing import Any, Callable, ClassVar

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Method, Restoration, trained_shape_refusal
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.diffusion.conditioning import Conditioning
from inpaintbench.methods.diffusion.core import StepRecord, sample
from inpaintbench.methods.diffusion.denoiser import from_model_space, to_model_space
from inpaintbench.methods.diffusion.prior import DiffusionPrior, check_prior, load_prior, resolve_model_option
from inpaintbench.methods.diffusion.respacing import Respacing
from inpaintbench.methods.diffusion.schedules import schedule_nfe

__all__ = ["CHAINS", "DiffusionMethod", "check_num_steps"]

#: Values of the ``chain=`` option: ``"core"`` (the papers' order, the core's default) and
#: ``"official"`` (the released code's order of a method, reproduced draw for draw).
CHAINS = ("core", "official")


def check_num_steps(num_steps: int) -> None:
    """Raise :class:`InputError` unless ``num_steps`` is a positive int (the upper bound ``T``
    is the respacing table's check)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"num_steps must be a positive int, got {num_steps!r}")


class DiffusionMethod(Method):
    """A method that samples a diffusion prior with the core's loop and a conditioning strategy.

    Args:
        num_steps: ``t_T``, respaced steps over the model's ``T`` training steps.
        weights: a diffusers ``UNet2DModel`` folder or hub id; None: the committed MNIST prior
            ``methods/weights/ddpm-mnist`` (kept as None in the config so the config hash does
            not depend on where the package is installed; the folder's content is hashed
            through ``loaded_files``).
        model: alias of ``weights``; also a guided-diffusion ADM ``.pt`` (then ``adm`` is needed).
        adm: the ADM architecture of ``model``: a preset (``repaint-celeba256``,
            ``repaint-places256``, ``openai-256-uncond``, ``ilvr-ffhq256``) or a ``.toml``/``.json``
            file of guided-diffusion ``create_model`` arguments
            (:mod:`~inpaintbench.methods.diffusion.adm_config`); the timesteps are then spaced
            as guided-diffusion does (:class:`~inpaintbench.methods.diffusion.respacing.SpacedRespacing`).
        chain: one of :data:`CHAINS`; what ``"official"`` means is the subclass's.
        prior: an already loaded diffusers ``(unet, scheduler)`` pair used instead of loading
            ``weights`` (tests, or several methods sharing one model); not part of the config.
        **config: the subclass's own parameters, stored in ``self.config``.

    The config rule: ``self.config`` holds ``weights`` (a string or None), ``num_steps`` and
    ``**config``; an option listed in :attr:`optional_defaults` (options added after results
    existed: ``adm``, ``chain``, ILVR's ``lowpass``) enters it only when not at its default, so
    the results computed before it existed keep their config hash.

    Sampling (:meth:`sample_chain`): the reference ``[0, 1]`` goes to model space, then per
    chunk of ``config["batch_size"]`` images (the whole batch when absent or None) the core's
    :func:`~inpaintbench.methods.diffusion.core.sample` walks :attr:`schedule` with the
    strategy :meth:`conditioning` returns, from pure noise or, with :attr:`sdedit_start`,
    from the reference noised to the schedule's first level; the result goes back to ``[0, 1]``
    with ``{"nfe": network evaluations per image}``.

    How a solver plugs in (DDNM, DDRM, DPS, PiGDM, DiffPIR, RED-diff are all "one loop, one
    strategy"):

    1. write its strategy, a :class:`~inpaintbench.methods.diffusion.conditioning.Conditioning`
       subclass, overriding the hook(s) it needs: ``update_x0(x_t, pred, step)`` for an
       ``x0_hat``-space update (DDNM's range-null-space projection, DDRM's SVD-space update,
       DiffPIR's proximal step: ``step.alpha_bar`` / ``step.alpha_bar_prev`` are the step's
       ``alpha-bar`` values, :func:`~inpaintbench.methods.diffusion.steps.eps_from_x0` re-derives
       ``eps`` when the step should stay consistent with the new ``x0_hat``), and/or
       ``after_step(x_t, pred, proposal, step)`` for a correction of ``x_{t-1}``; set
       ``needs_grad = True`` to get ``x_t`` with ``requires_grad`` and ``pred.x0_hat`` on the
       denoiser's graph (DPS's ``grad ||y - A x0_hat||^2`` w.r.t. ``x_t``, PiGDM's
       vector-Jacobian product). Extra draws come from ``step.rng`` after the step's ``z``.
    2. subclass :class:`DiffusionMethod`: pass its parameters as ``**config`` to
       ``super().__init__``, set ``self.schedule`` (usually
       :func:`~inpaintbench.methods.diffusion.schedules.plain_schedule`; ``self.eta`` for
       DDIM-style solvers), return the strategy from :meth:`conditioning`, and call
       :meth:`sample_chain` from the task hook (``inpaint``); register it in the catalogue.
    """

    deterministic: ClassVar[bool] = False
    #: Options that enter the config only when not at these defaults (the config rule).
    optional_defaults: ClassVar[dict[str, Any]] = {"adm": None, "chain": "core"}
    #: Who :meth:`check_input` names in its errors.
    input_label: ClassVar[str] = "this DDPM prior"
    #: DDIM eta of every reverse step (1 = DDPM ancestral sampling).
    eta: float = 1.0
    #: Clip ``x0_hat`` to ``[-1, 1]`` in every step.
    clip_denoised: bool = True
    #: Start from the reference noised to ``schedule[0]`` (SDEdit) instead of pure noise.
    sdedit_start: bool = False

    #: ``model`` is recorded as ``weights`` (its alias); a preloaded ``prior`` pair is an object.
    config_excludes: ClassVar[tuple[str, ...]] = ("model", "prior")

    def __init__(self, *, num_steps: int, weights: str | os.PathLike | None = None,
                 model: str | os.PathLike | None = None, adm: str | os.PathLike | None = None,
                 chain: str = "core", prior: tuple[Any, Any] | None = None, **config: Any):
        weights = resolve_model_option(weights, model)
        check_num_steps(num_steps)
        if chain not in CHAINS:
            raise InputError(f"chain must be {' or '.join(repr(c) for c in CHAINS)}, got {chain!r}")
        options = {"adm": None if adm is None else str(adm), "chain": chain, **config}
        defaults = self.optional_defaults
        super().__init__(weights=weights, num_steps=num_steps,
                         **{k: v for k, v in options.items() if k not in defaults or v != defaults[k]})
        self.chain = chain
        if prior is None:
            self.prior, self.respacing = load_prior(weights, adm, num_steps)  # checks num_steps <= T
        else:
            self.prior = DiffusionPrior.from_pair(*prior)
            self.respacing = Respacing(self.prior.schedule, num_steps)
        self.loaded_files = list(self.prior.files)
        self.device = self.prior.device
        #: The walk of respaced indices every call takes (the subclass sets it).
        self.schedule: list[int] = []

    @classmethod
    def check_available(cls, *, num_steps: int | None = None, weights: str | os.PathLike | None = None,
                        model: str | os.PathLike | None = None, adm: str | os.PathLike | None = None,
                        prior: tuple[Any, Any] | None = None, **_: Any) -> None:
        """Raise :class:`~inpaintbench.core.errors.MethodUnavailable` (with the reason) where
        building this method with these options would fail for want of diffusers or of its
        weights, without loading them (``inpaintbench list methods --check``): the committed
        MNIST prior or a diffusers folder must hold its weights file, a Hub id must be in the
        local Hugging Face cache (listing never downloads), an ADM ``.pt`` must exist and
        ``adm=`` be a preset or an args file (:func:`~inpaintbench.methods.diffusion.prior.check_prior`).
        ``num_steps`` None: the subclass's default (only the ADM range check reads it)."""
        if prior is None:
            check_prior(resolve_model_option(weights, model), adm, 1 if num_steps is None else num_steps)

    def to(self, device: torch.device | str) -> "DiffusionMethod":
        """Move the prior (and any other model of the method) to ``device``; returns ``self``."""
        super().to(device)
        self.prior.to(self.device)
        return self

    def accepts(self, channels: int, height: int, width: int) -> str | None:
        """A prior models images of one size and channel count only (see :meth:`Method.accepts`)."""
        denoiser = self.prior.denoiser
        trained = (denoiser.in_channels, *denoiser.sample_size)
        who = f"{self.name} (weights {self.config.get('weights') or 'ddpm-mnist'})"
        return trained_shape_refusal(who, trained, (channels, height, width),
                                     hint=f"pass weights= of a prior trained on {channels}x{height}x{width} images")

    def check_input(self, image: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``image`` is a valid batch of the prior's size."""
        self.prior.check_input(image, self.input_label)

    def conditioning(self, reference: torch.Tensor, hole: torch.Tensor | None, **options: Any) -> Conditioning | None:
        """The strategy of one chunk: ``reference`` ``y`` in model space ``[B, C, H, W]``,
        ``hole`` bool ``[B, 1, H, W]`` or None, ``options`` those of :meth:`sample_chain`;
        None: unconditional."""
        raise NotImplementedError

    def sample_chain(self, reference: torch.Tensor, hole: torch.Tensor | None, *, rng: SampleRNG,
                     callback: Callable[[StepRecord], None] | None = None, **options: Any) -> Restoration:
        """The core's loop conditioned on ``reference`` (see the class docstring).

        Args:
            reference: float32 ``[B, C, H, W]`` in ``[0, 1]``.
            hole: bool ``[B, 1, H, W]`` (True = unknown reference pixel) or None.
            rng: one generator per image, on ``self.device``.
            callback: called with a :class:`~inpaintbench.methods.diffusion.core.StepRecord`
                after each reverse step (inspection).
            **options: passed to :meth:`conditioning`.

        Returns:
            :class:`Restoration`: float32 ``[B, C, H, W]`` in ``[0, 1]`` (clipped) and
            ``{"nfe": network evaluations per image}``.
        """
        reference = reference.to(self.device)
        hole = None if hole is None else hole.to(self.device)
        batch = reference.shape[0]
        chunk = self.config.get("batch_size") or batch
        outputs, nfe = [], schedule_nfe(self.schedule)
        for lo in range(0, batch, chunk):
            hi = lo + chunk
            y = to_model_space(reference[lo:hi])
            strategy = self.conditioning(y, None if hole is None else hole[lo:hi], **options)
            result = sample(self.prior.denoiser, self.respacing, self.schedule, rng if chunk >= batch else rng[lo:hi],
                            shape=y.shape, start=y if self.sdedit_start else None, guidance=strategy,
                            eta=self.eta, clip_denoised=self.clip_denoised, callback=callback)
            nfe = result.nfe
            outputs.append(from_model_space(result.sample))
        return Restoration(torch.cat(outputs), {"nfe": float(nfe)})
