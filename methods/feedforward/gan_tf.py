"""The TensorFlow GAN inpainter (``gan``, ``gan-fc``) behind the harness's PyTorch contract.

:class:`GANInpainter` runs a generator of :mod:`.gan_tf_net` (``conv``: encoder--decoder with a
dilated bottleneck; ``fc``: the seed's fully connected one) loaded by :mod:`.gan_tf_weights`;
training is :mod:`.gan_train`. TensorFlow is an optional extra, imported only when the method
is built, so importing this module, or listing methods, never imports it.
"""

from __future__ import annotations

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Method, Restoration, trained_shape_refusal
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import check_image_batch, check_mask_batch
from inpaintbench.methods import WEIGHTS_DIR, resolve_weights
from inpaintbench.methods.feedforward.gan_tf_net import VARIANTS, check_tensorflow, import_tensorflow
from inpaintbench.methods.feedforward.gan_tf_weights import load_generator, read_generator_spec

#: Committed weights, one folder per variant (``generator.safetensors`` + ``generator.json``).
DEFAULT_WEIGHTS = {"conv": WEIGHTS_DIR / "gan-mnist", "fc": WEIGHTS_DIR / "gan-fc-mnist"}


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise InputError(f"GAN variant must be one of {VARIANTS}, got {variant!r}")


def _check_spec_variant(spec, folder, variant: str) -> None:
    if spec.variant != variant:
        raise InputError(f"weights in {folder} are for variant {spec.variant!r}, not {variant!r}")


class GANInpainter(Method):
    """The TensorFlow GAN generator behind the harness's PyTorch contract.

    Args:
        variant: ``"conv"`` (encoder--decoder, registered as ``gan``) or ``"fc"`` (fully
            connected, registered as ``gan-fc``).
        weights: a folder holding ``generator.safetensors`` + ``generator.json`` (what
            ``gan_train`` writes to ``<out>/final``); ``None`` = the committed MNIST weights
            of the variant under ``inpaintbench/methods/weights/``.

    Image size: no resizing. ``conv`` runs natively on any ``H, W`` divisible by 4 (it is
    fully convolutional); ``fc`` only at its training size (28x28 for MNIST). Other sizes,
    and a channel count other than the training one, raise :class:`InputError`.

    Deterministic: the generator network has no noise input, so ``rng`` is not drawn from.

    Raises (constructor):
        MethodUnavailable: TensorFlow is not installed, or a weights file is missing.
    """

    deterministic = True

    def __init__(self, variant: str = "conv", weights: str | None = None):
        super().__init__(variant=variant, weights=weights)
        _check_variant(variant)
        self._tf, _ = import_tensorflow()
        folder = resolve_weights(weights, DEFAULT_WEIGHTS[variant])
        self._model, self.spec = load_generator(folder)
        self.loaded_files = [str(folder)]
        _check_spec_variant(self.spec, folder, variant)
        # One traced graph per input shape instead of eager layer-by-layer calls.
        self._forward = self._tf.function(lambda x: self._model(x, training=False), reduce_retracing=True)

    def accepts(self, channels: int, height: int, width: int) -> str | None:
        """The training channels; ``fc`` only its training size, ``conv`` any size divisible by 4."""
        spec = self.spec
        who = f"{self.name} (weights {self.config.get('weights') or f'{self.name}-mnist'})"
        return trained_shape_refusal(who, (spec.channels, spec.height, spec.width), (channels, height, width),
                                     any_size=spec.variant == "conv", multiple=4,
                                     hint=f"pass weights= of a model trained on such images ({self.name}-celeba32 "
                                     "for RGB 32x32)")

    @classmethod
    def check_available(cls, variant: str = "conv", weights: str | None = None, **_: object) -> None:
        """Raise what building would for want of TensorFlow or of a weights file
        (:class:`~inpaintbench.core.errors.MethodUnavailable`, naming it) or for a variant the
        weights are not for, without importing TensorFlow: ``generator.json`` is read, the
        arrays are not."""
        _check_variant(variant)
        check_tensorflow()
        folder = resolve_weights(weights, DEFAULT_WEIGHTS[variant])
        _check_spec_variant(read_generator_spec(folder), folder, variant)

    def _check_size(self, channels: int, height: int, width: int) -> None:
        spec = self.spec
        if channels != spec.channels:
            raise InputError(f"GAN {spec.variant!r} was trained on {spec.channels}-channel images, got {channels} channels")
        if spec.variant == "fc" and (height, width) != (spec.height, spec.width):
            raise InputError(
                f"GAN 'fc' only runs at its training size {spec.height}x{spec.width}, got {height}x{width}"
            )
        if height % 4 or width % 4:
            raise InputError(f"GAN 'conv' needs height and width divisible by 4, got {height}x{width}")

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor | None, *, rng: SampleRNG) -> Restoration:
        """Fill the holes with one generator pass.

        Args:
            image: float32 ``[B, C, H, W]`` in ``[0, 1]``.
            mask: bool ``[B, 1, H, W]``, True = hole.
            rng: not drawn from (the method is deterministic).

        Returns:
            float32 ``[B, C, H, W]`` in ``[0, 1]`` on ``image.device``; one evaluation per image.
        """
        check_image_batch(image)
        if mask is None:
            raise InputError("the GAN inpainter needs a mask (it is not a blind method)")
        check_mask_batch(mask, image)
        self._check_size(*image.shape[1:])
        # Zero-fill here too: the network must never see hole content, whatever the caller sent.
        net_input = torch.cat([image.masked_fill(mask, 0.0), mask.to(torch.float32)], dim=1)
        nhwc = net_input.permute(0, 2, 3, 1).detach().cpu().numpy()
        out = self._forward(self._tf.constant(nhwc)).numpy()
        return Restoration(torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(image.device), {"nfe": 1.0})
