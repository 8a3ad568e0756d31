"""RePaint (Lugmayr et al., "RePaint: Inpainting using Denoising Diffusion Probabilistic
Models", CVPR 2022): inpainting with an unconditional DDPM prior.

Every reverse step samples the unknown region from the model and the known region from the
forward process applied to the input, ``q(x_{t-1} | x_0)`` (paper, Alg. 1 and Eq. 8); the
resampling schedule repeatedly jumps ``j`` steps back to the noisier level (Sec. 4.2) so the
two regions harmonise.

Time runs over ``t_T`` respaced indices ``i = t_T - 1, ..., 0``; index ``i`` is the training
timestep ``i * (T // t_T)`` (the spacing of diffusers' ``RePaintScheduler``, so both give the
same numbers for the same noise; the paper's code spaces indices over ``[0, T - 1]``).

Where diffusers' ``RePaintScheduler`` / ``RePaintPipeline`` (0.42) differ from the paper and
from this module (``tests/test_repaint.py`` pins the first two):

* its timestep list is our list of states read as *evaluation* timesteps, so every jump
  starts one level lower than in the paper's code, and the last jump re-noises the finished
  ``x_0`` to level 0 and denoises it again (same NFE, a different chain);
* ``undo_step`` noises with ``betas[t .. t + T // t_T - 1]`` while the state sits at
  ``t - T // t_T``: the re-noised level only equals the level the model is then told when
  ``t_T = T`` or the betas are constant;
* its ``eta`` defaults to 0 (DDIM in the holes); the paper samples DDPM-style (``eta = 1``,
  our default);
* it draws one noise tensor per step for both regions, as we do: the regions are disjoint
  pixel sets, so this matches the paper's two independent draws.

With ``eta = 1`` the hole update is DDIM's form of the DDPM posterior; it equals the paper's
``p_sample`` (posterior mean from the clipped ``x_0``) whenever ``x_0`` is not clipped.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import torch

from inpaintbench.api import InputError, Method, check_image_batch, check_mask_batch
from inpaintbench.methods.diffusion.ddpm import MNIST_WEIGHTS, from_model_space, load_ddpm, to_model_space

#: ``noise(shape) -> float32 N(0, I) tensor``: where the sampler's randomness comes from.
NoiseSource = Callable[[Sequence[int]], torch.Tensor]


def repaint_schedule(t_T: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """The resampling schedule of RePaint (Lugmayr et al. 2022, Sec. 4.2 and Alg. 1).

    Starting at respaced index ``t_T - 1`` the chain walks down one index at a time; on
    reaching a multiple of ``jump_length`` below ``t_T - jump_length`` it jumps back up
    ``jump_length`` indices (one forward-diffusion step each) and walks down again, and this
    is done ``jump_n_sample - 1`` times per such point (the paper's ``j`` and ``r``;
    ``r = 1`` means no resampling, plain DDPM with pasting).

    Args:
        t_T: number of respaced diffusion steps (>= 1).
        jump_length: ``j`` (>= 1).
        jump_n_sample: ``r`` (>= 1).

    Returns:
        The visited indices, first the start state ``t_T - 1``, last ``-1`` (the clean image).
        A step from ``a`` to ``b < a`` is one network evaluation (denoising), a step to
        ``b > a`` is forward noising. The number of denoising steps is
        ``t_T + (r - 1) * j * len(range(0, t_T - j, j))``.

    >>> repaint_schedule(4, 2, 2)
    [3, 2, 1, 0, 1, 2, 1, 0, -1]
    """
    if t_T < 1 or jump_length < 1 or jump_n_sample < 1:
        raise InputError(
            f"t_T, jump_length and jump_n_sample must be >= 1, got {t_T}, {jump_length}, {jump_n_sample}"
        )
    jumps = {point: jump_n_sample - 1 for point in range(0, t_T - jump_length, jump_length)}
    t = t_T - 1
    visited = [t]
    while t >= 0:
        t -= 1
        visited.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                visited.append(t)
    return visited


def schedule_nfe(schedule: Sequence[int]) -> int:
    """Network evaluations of a schedule from :func:`repaint_schedule` (its downward steps)."""
    return sum(1 for a, b in zip(schedule[:-1], schedule[1:]) if b < a)


@torch.no_grad()
def repaint_sample(
    unet: torch.nn.Module,
    alphas_cumprod: torch.Tensor,
    x0: torch.Tensor,
    known: torch.Tensor,
    schedule: Sequence[int],
    stride: int,
    noise: NoiseSource,
    *,
    eta: float = 1.0,
    clip_denoised: bool = True,
    start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Run one RePaint chain in model space.

    Args:
        unet: epsilon-predicting ``UNet2DModel`` (called as ``unet(x, t).sample``).
        alphas_cumprod: float ``[T]`` cumulative products of the training ``alphas``.
        x0: ``[B, C, H, W]`` in ``[-1, 1]``: the input (values in holes are never used).
        known: float ``[B, 1, H, W]``, 1 = known pixel, 0 = hole.
        schedule: respaced indices from :func:`repaint_schedule` (possibly a suffix of one).
        stride: training timesteps per respaced index (``T // t_T``).
        noise: source of every ``N(0, I)`` draw, in this order: the start state (when
            ``start`` is None), one draw per denoising step, one per forward jump.
        eta: DDIM's eta for the unknown region: 1 = DDPM ancestral sampling (the paper),
            0 = deterministic DDIM.
        clip_denoised: clip the predicted ``x_0`` to ``[-1, 1]``.
        start: state at ``schedule[0]`` (SDEdit-style start); None: pure noise.

    Returns:
        ``(x, nfe)``: the final sample ``[B, C, H, W]`` (unclipped) and the number of network
        evaluations per image.
    """
    acp = alphas_cumprod.to(device=x0.device, dtype=torch.float32)
    one = torch.ones((), device=x0.device)

    def abar(index: int) -> torch.Tensor:  # alpha-bar of respaced index; index -1 is x_0
        return acp[index * stride] if index >= 0 else one

    x = noise(x0.shape) if start is None else start
    nfe = 0
    for cur, nxt in zip(schedule[:-1], schedule[1:]):
        if nxt < cur:
            t = cur * stride
            a_t, a_prev = abar(cur), abar(nxt)
            eps = unet(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)).sample
            nfe += 1
            x0_hat = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            if clip_denoised:
                x0_hat = x0_hat.clamp(-1, 1)
            # One draw serves both regions: they are disjoint pixel sets, so the two parts
            # stay independent as in Alg. 1 (and it matches diffusers' RePaintScheduler).
            z = noise(x.shape)
            # Unknown region, DDIM-eta form of p(x_{t-1} | x_t) (eta = 1: DDPM posterior variance).
            sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
            unknown = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp_min(0).sqrt() * eps
            if nxt >= 0 and eta > 0:
                unknown = unknown + sigma * z
            # Known region from the forward process q(x_{t-1} | x_0) (paper, Eq. 8).
            known_part = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * z
            x = known * known_part + (1 - known) * unknown
        else:
            # Jump back: q(x_t | x_{t-1}) over the respaced step (paper, Alg. 1 line 13).
            ratio = abar(nxt) / abar(cur)
            x = ratio.sqrt() * x + (1 - ratio).sqrt() * noise(x.shape)
    return x, nfe


class RePaint(Method):
    """RePaint inpainting with an unconditional DDPM prior.

    Args:
        weights: a diffusers UNet2DModel folder or hub id; None: the committed MNIST prior
            ``methods/weights/ddpm-mnist`` (kept as None in the config so the config hash does
            not depend on where the package is installed).
        num_steps: ``t_T``, respaced steps over the model's ``T`` training steps.
        jump_length: ``j``, indices jumped back per resampling.
        jump_n_sample: ``r``, visits of each jump point (1 = no resampling, DDPM + paste).
        eta: 1.0 = DDPM ancestral sampling in the holes (the paper); 0.0 = DDIM.
        paste_known: True (RePaint): the re-noised known pixels are pasted at every reverse
            step and the input's known pixels over the output (``preserves_known``). False:
            no pasting at all, plain SDEdit / img2img from the noised zero-filled input, whose
            known pixels then drift with ``strength`` (the preservation study measures it).
        strength: in ``(0, 1]``; < 1 starts SDEdit-style from the zero-filled input noised to
            index ``round(strength * t_T) - 1`` instead of from pure noise.
        batch_size: images per chain (None: the whole batch at once).
        clip_denoised: clip predicted ``x_0`` to ``[-1, 1]``.

    ``call_stats()["nfe"]`` is the network evaluations per image of the last call.
    """

    deterministic = False

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        num_steps: int = 25,
        jump_length: int = 5,
        jump_n_sample: int = 2,
        eta: float = 1.0,
        paste_known: bool = True,
        strength: float = 1.0,
        batch_size: int | None = None,
        clip_denoised: bool = True,
    ):
        super().__init__(weights=None if weights is None else str(weights), num_steps=num_steps, jump_length=jump_length,
                         jump_n_sample=jump_n_sample, eta=eta, paste_known=paste_known,
                         strength=strength, batch_size=batch_size, clip_denoised=clip_denoised)
        if not 0.0 < strength <= 1.0:
            raise InputError(f"strength must lie in (0, 1], got {strength}")
        if not 0.0 <= eta <= 1.0:
            raise InputError(f"eta must lie in [0, 1], got {eta}")
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch_size must be >= 1 or None, got {batch_size}")
        self.unet, scheduler = load_ddpm(MNIST_WEIGHTS if weights is None else weights)
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)
        if not 1 <= num_steps <= self.num_train_timesteps:
            raise InputError(f"num_steps must lie in [1, {self.num_train_timesteps}], got {num_steps}")
        self.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float32)
        self.schedule = repaint_schedule(num_steps, jump_length, jump_n_sample)
        start_index = max(round(strength * num_steps) - 1, 0)
        if strength < 1.0:
            self.schedule = self.schedule[self.schedule.index(start_index):]
        self.start_index = start_index
        self.stride = self.num_train_timesteps // num_steps
        self.preserves_known = paste_known
        self._nfe = 0

    def to(self, device: torch.device | str) -> "RePaint":
        """Move the UNet to ``device``; returns ``self``."""
        super().to(device)
        self.unet.to(self.device)
        return self

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        """Inpaint ``image`` (float32 ``[B, C, H, W]`` in ``[0, 1]``, holes zero-filled) where
        ``mask`` (bool ``[B, 1, H, W]``) is True; returns float32 ``[B, C, H, W]`` in ``[0, 1]``.
        All noise comes from ``generator``."""
        check_image_batch(image)
        check_mask_batch(mask, image)
        expected = (self.unet.config.in_channels, *_size(self.unet.config.sample_size))
        if tuple(image.shape[1:]) != expected:
            raise InputError(f"this RePaint prior takes images of shape [B, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}], got {list(image.shape)}")
        image = image.to(self.device)
        mask = mask.to(self.device)

        def noise(shape: Sequence[int]) -> torch.Tensor:
            return torch.randn(tuple(shape), generator=generator, device=self.device)

        chunk = self.config["batch_size"] or image.shape[0]
        outputs = []
        for lo in range(0, image.shape[0], chunk):
            x0 = to_model_space(image[lo:lo + chunk])
            known = (~mask[lo:lo + chunk]).to(torch.float32)
            if not self.config["paste_known"]:
                known = torch.zeros_like(known)
            start = None
            if self.config["strength"] < 1.0:
                a = self.alphas_cumprod[self.start_index * self.stride].to(self.device)
                start = a.sqrt() * x0 + (1 - a).sqrt() * noise(x0.shape)
            x, nfe = repaint_sample(
                self.unet, self.alphas_cumprod, x0, known, self.schedule, self.stride, noise,
                eta=self.config["eta"], clip_denoised=self.config["clip_denoised"], start=start,
            )
            outputs.append(from_model_space(x))
        out = torch.cat(outputs)
        self._nfe = nfe
        if self.config["paste_known"]:
            out = torch.where(mask, out, image)
        return out

    def call_stats(self) -> dict[str, float]:
        """``{"nfe": network evaluations per image}`` of the last :meth:`inpaint` call."""
        return {"nfe": float(self._nfe)}


def _size(sample_size: int | Sequence[int]) -> tuple[int, int]:
    return (sample_size, sample_size) if isinstance(sample_size, int) else tuple(sample_size)  # type: ignore[return-value]
