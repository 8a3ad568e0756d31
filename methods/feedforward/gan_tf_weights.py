"""Weights I/O of the TensorFlow GAN generator: a safetensors file of the generator's variables
(``generator.safetensors``) plus its JSON architecture spec (``generator.json``); loading
rebuilds the architecture in code (:mod:`.gan_tf_net`) and assigns the arrays, so a weights
folder never executes code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.methods.feedforward.gan_tf_net import GeneratorSpec, build_generator

GENERATOR_WEIGHTS_FILE = "generator.safetensors"
GENERATOR_SPEC_FILE = "generator.json"


def save_generator(model, spec: GeneratorSpec, folder: str | Path) -> Path:
    """Write ``generator.safetensors`` (variable path -> float32 array) and ``generator.json``
    into ``folder`` (created if needed); returns the folder."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {v.path: np.ascontiguousarray(v.numpy(), dtype=np.float32) for v in model.weights}
    save_file(arrays, str(folder / GENERATOR_WEIGHTS_FILE), metadata={"format": "inpaintbench-gan-tf"})
    spec.to_json(folder / GENERATOR_SPEC_FILE)
    return folder


def read_generator_spec(folder: str | Path) -> GeneratorSpec:
    """The :class:`GeneratorSpec` of ``folder/generator.json`` (TensorFlow is not imported).

    Raises:
        MethodUnavailable: ``generator.json`` or ``generator.safetensors`` is missing (the
            message names it and how to train one).
        InputError: the spec is not valid.
    """
    folder = Path(folder)
    for name in (GENERATOR_SPEC_FILE, GENERATOR_WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise MethodUnavailable(
                f"GAN weights file {folder / name} is missing; train one with "
                "`inpaintbench train gan --config methods/configs/gan-mnist.toml "
                "--data-root ../shared/data --out runs/gan-mnist` and pass weights=runs/gan-mnist/final"
            )
    return GeneratorSpec.from_json(folder / GENERATOR_SPEC_FILE)


def load_generator(folder: str | Path):
    """Rebuild the generator from ``folder/generator.json`` and assign the arrays of
    ``folder/generator.safetensors``; returns ``(model, spec)``.

    Raises:
        MethodUnavailable: a file is missing (the message names it).
        InputError: the arrays do not match the architecture (names or shapes).
    """
    from safetensors.numpy import load_file

    spec = read_generator_spec(folder)
    folder = Path(folder)
    model = build_generator(spec)
    arrays = load_file(str(folder / GENERATOR_WEIGHTS_FILE))
    expected = {v.path for v in model.weights}
    if set(arrays) != expected:
        raise InputError(
            f"{folder / GENERATOR_WEIGHTS_FILE} does not match the {spec.variant!r} architecture: "
            f"missing {sorted(expected - set(arrays))}, unexpected {sorted(set(arrays) - expected)}"
        )
    for variable in model.weights:
        array = arrays[variable.path]
        if tuple(array.shape) != tuple(variable.shape):
            raise InputError(f"{variable.path}: stored shape {array.shape} != model shape {tuple(variable.shape)}")
        variable.assign(array)
    return model, spec
