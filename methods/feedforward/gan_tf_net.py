"""A generator--discriminator inpainter in TensorFlow/Keras, adapted to the PyTorch harness.

Two generators share one discriminator and one set of losses (see :mod:`.gan_train`):

* ``conv``: a convolutional encoder--decoder (two stride-2 downsamplings, dilated 3x3
  convolutions in the bottleneck to widen the receptive field, nearest upsampling + conv to
  avoid checkerboard artefacts, output clipped to [0, 1]). Fully convolutional: it runs on any
  ``H, W`` divisible by 4.
* ``fc``: the project seed's fully connected generator (flatten -> dense -> dense -> dense
  -> reshape, output clipped to [0, 1]), kept so the leaderboard shows what the
  convolutional design buys. It only runs at the size it was trained at.

Both take the zero-filled image and the mask, channels concatenated (NHWC ``[B, H, W, C+1]``,
mask 1 = hole). The discriminator is a PatchGAN: one real/fake logit per patch.

TensorFlow is an optional extra and is imported only when a model is built
(:func:`import_tensorflow`), so importing this module, or listing methods, never imports it.

This module holds the networks (and the one way to import TensorFlow); weights I/O is
:mod:`.gan_tf_weights`, the method :mod:`.gan_tf`, training :mod:`.gan_train`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import warnings
from pathlib import Path

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.probing import quiet_third_party, without_start_up_banners
from inpaintbench.core.seeding import derive_seed

VARIANTS = ("conv", "fc")
#: The environment settings of TensorFlow's own logging (see :data:`inpaintbench.core.probing.QUIET_ENV`).
TF_QUIET_KEYS = ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY", "ABSL_MIN_LOG_LEVEL")
INSTALL_HINT = "pip install -e '.[tf]' (TensorFlow, CPU build on x86_64)"


def import_tensorflow():
    """Import TensorFlow and Keras, with GPU memory growth on; returns ``(tf, keras)``.

    The one way this project imports TensorFlow: it first loads triton (when installed) so
    that PyTorch code run later in the same process does not crash (see the comment below).

    Memory growth makes TensorFlow allocate GPU memory as it needs it instead of taking the
    whole card, so it can share a GPU with PyTorch. It must be set before TensorFlow
    initialises a GPU; if something else initialised it first, a warning says so.

    Raises:
        MethodUnavailable: TensorFlow is not installed, or Keras runs on another backend.
    """
    if importlib.util.find_spec("triton") is not None:
        # TensorFlow >= 2.20 wheels load their core library with RTLD_GLOBAL, exporting a
        # static LLVM; triton's library (imported lazily by torch.optim, torch.compile,
        # torchvision.ops...) loaded after it binds to that LLVM and segfaults
        # (tensorflow/tensorflow#124205). Loaded first, triton keeps its own.
        import triton  # noqa: F401
    # Its C++ log level must be set before the first import (also in workers and API use,
    # which do not pass through the CLI's quiet_third_party()); its import banner is dropped.
    quiet_third_party(TF_QUIET_KEYS)
    try:
        with without_start_up_banners():
            import tensorflow as tf
    except ImportError as err:
        raise MethodUnavailable(f"the GAN inpainter needs TensorFlow ({err}); install it with {INSTALL_HINT}") from err
    for gpu in tf.config.list_physical_devices("GPU"):
        if tf.config.experimental.get_memory_growth(gpu):
            continue
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as err:  # the GPU was initialised before this call
            warnings.warn(f"TensorFlow already initialised {gpu.name} without memory growth ({err}); "
                          "it may hold all of that GPU's memory", RuntimeWarning, stacklevel=2)
    with without_start_up_banners():
        import keras

    if keras.backend.backend() != "tensorflow":
        raise MethodUnavailable(_wrong_backend(keras.backend.backend()))
    return tf, keras


def check_tensorflow() -> None:
    """Raise what :func:`import_tensorflow` would for want of TensorFlow or for a Keras
    backend chosen by ``$KERAS_BACKEND``, without importing either (a backend chosen in
    ``~/.keras/keras.json`` is found only on import)."""
    if importlib.util.find_spec("tensorflow") is None:
        raise MethodUnavailable(f"the GAN inpainter needs TensorFlow, which is not installed; "
                                f"install it with {INSTALL_HINT}")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        raise MethodUnavailable(_wrong_backend(backend))


def _wrong_backend(backend: str) -> str:
    return (f"the GAN inpainter needs Keras on the TensorFlow backend, but KERAS_BACKEND selects "
            f"{backend!r}; unset KERAS_BACKEND or set it to 'tensorflow'")


@dataclasses.dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator's architecture (saved as ``generator.json``).

    Attributes:
        variant: ``"conv"`` (encoder--decoder) or ``"fc"`` (fully connected).
        height, width: training image size in pixels; ``conv`` needs both divisible by 4.
        channels: image channels (1 or 3); the generator's input has ``channels + 1``.
        base_channels: ``conv`` width: the first layer's filters (doubled at each downsampling).
        hidden_units: ``fc`` width: units of each of the two hidden dense layers.
        seed: seeds the weight initialisers (one derived seed per layer).
    """

    variant: str = "conv"
    height: int = 28
    width: int = 28
    channels: int = 1
    base_channels: int = 32
    hidden_units: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InputError(f"generator variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.channels not in (1, 3):
            raise InputError(f"generator channels must be 1 or 3, got {self.channels}")
        if self.height < 4 or self.width < 4 or self.height % 4 or self.width % 4:
            raise InputError(f"generator size must be divisible by 4, got {self.height}x{self.width}")
        if self.base_channels < 1 or self.hidden_units < 1:
            raise InputError("generator base_channels and hidden_units must be positive")

    @classmethod
    def from_json(cls, path: Path) -> "GeneratorSpec":
        """Read a spec written by :meth:`to_json`; :class:`InputError` on unknown fields."""
        data = json.loads(Path(path).read_text())
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"{path}: unknown generator spec fields {sorted(unknown)}")
        return cls(**data)

    def to_json(self, path: Path) -> None:
        """Write the spec as JSON to ``path``."""
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def _initializer(keras, seed: int, layer_name: str):
    # A seeded initializer per layer: same spec -> same initial weights, no global seeding.
    return keras.initializers.GlorotUniform(seed=derive_seed(seed, layer_name) % 2**31)


def build_generator(spec: GeneratorSpec):
    """The generator as a Keras model.

    Input: NHWC float32 ``[B, H, W, C+1]``: the zero-filled image in ``[0, 1]`` and the mask
    (1 = hole) as the last channel. Output: ``[B, H, W, C]`` clipped to ``[0, 1]``; the layer
    ``"to_image"`` holds the unclipped output (what the training loss sees).
    ``conv`` accepts any ``H, W`` divisible by 4; ``fc`` only ``spec.height x spec.width``.
    """
    _, keras = import_tensorflow()
    layers = keras.layers
    c = spec.channels

    def conv(x, filters, kernel, name, strides=1, dilation=1, activation="elu"):
        return layers.Conv2D(filters, kernel, strides=strides, dilation_rate=dilation, padding="same",
                             activation=activation, name=name,
                             kernel_initializer=_initializer(keras, spec.seed, name))(x)

    if spec.variant == "conv":
        b = spec.base_channels
        inputs = keras.Input((None, None, c + 1), name="masked_image_and_mask")
        x = conv(inputs, b, 5, "enc1")
        x = conv(x, 2 * b, 3, "enc2_down", strides=2)
        x = conv(x, 2 * b, 3, "enc3")
        x = conv(x, 4 * b, 3, "enc4_down", strides=2)
        # Dilation rates 2-4-8 at quarter resolution add 4 * 2 * (2+4+8) = 112 input pixels of
        # receptive field: every output pixel sees the whole 28x28 digit, so big holes get context.
        for rate in (2, 4, 8):
            x = conv(x, 4 * b, 3, f"bottleneck_dilated{rate}", dilation=rate)
        x = conv(x, 4 * b, 3, "bottleneck_out")
        x = layers.UpSampling2D(2, interpolation="nearest", name="dec1_up")(x)
        x = conv(x, 2 * b, 3, "dec1")
        x = conv(x, 2 * b, 3, "dec2")
        x = layers.UpSampling2D(2, interpolation="nearest", name="dec3_up")(x)
        x = conv(x, b, 3, "dec3")
        x = conv(x, b // 2 or 1, 3, "dec4")
        x = conv(x, c, 3, "to_image", activation=None)
    else:
        inputs = keras.Input((spec.height, spec.width, c + 1), name="masked_image_and_mask")

        def dense(x, units, name, activation="relu"):
            return layers.Dense(units, activation=activation, name=name,
                                kernel_initializer=_initializer(keras, spec.seed, name))(x)

        x = layers.Flatten(name="flatten")(inputs)
        x = dense(x, spec.hidden_units, "fc1")
        x = dense(x, spec.hidden_units, "fc2")
        x = dense(x, spec.height * spec.width * c, "to_pixels", activation=None)
        x = layers.Reshape((spec.height, spec.width, c), name="to_image")(x)
    # Clip, not sigmoid: on mostly-black MNIST, L1 through a sigmoid drove every logit
    # towards -inf and the generator died at an all-black output within ~100 steps (the
    # sigmoid's gradient vanishes). Training puts the L1 on the unclipped "to_image" output.
    outputs = layers.ReLU(max_value=1.0, name="clip_to_unit_range")(x)
    return keras.Model(inputs, outputs, name=f"generator_{spec.variant}")


def build_discriminator(channels: int, base_channels: int = 32, seed: int = 0):
    """A PatchGAN discriminator as a Keras model.

    Input: NHWC ``[B, H, W, C+1]``: an image in ``[0, 1]`` (real, or the composited
    generator output) and the mask (1 = hole), so it can focus on the hole. Output:
    ``[B, H/4, W/4, 1]`` unbounded logits, one per overlapping patch (receptive field
    26 px), positive = real.
    """
    _, keras = import_tensorflow()
    layers = keras.layers
    inputs = keras.Input((None, None, channels + 1), name="image_and_mask")
    x = inputs
    for i, (filters, strides) in enumerate(((base_channels, 2), (2 * base_channels, 2), (4 * base_channels, 1))):
        name = f"d{i + 1}"
        x = layers.Conv2D(filters, 4 if strides == 2 else 3, strides=strides, padding="same", name=name,
                          kernel_initializer=_initializer(keras, seed, name))(x)
        x = layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)
    outputs = layers.Conv2D(1, 3, padding="same", name="patch_logits",
                            kernel_initializer=_initializer(keras, seed, "patch_logits"))(x)
    return keras.Model(inputs, outputs, name="discriminator")
