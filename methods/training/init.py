"""The one seeded weight initialisation of the suite's torch networks.

Module construction draws its initial weights from torch's global RNG, which library code
never seeds (that would change the caller's randomness). Every learned method therefore
re-draws its weights with :func:`seeded_init_` right after building its network, so that the
initial weights -- and with them the committed weights a config reproduces -- are a
function of the config's ``init_seed`` alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: The layer types :func:`seeded_init_` re-draws; every other parameter keeps its value.
SEEDED_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def seeded_init_(module: nn.Module, seed: int) -> nn.Module:
    """Re-draw, in place, the weight and bias of every Conv2d, ConvTranspose2d and Linear layer
    of ``module`` with PyTorch's default initialisation, from a local generator seeded with
    ``seed``; returns ``module``.

    PyTorch's default (``reset_parameters`` of those layers): weight ~ kaiming-uniform with
    ``a = sqrt(5)``, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, bias ~
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in`` = ``weight.shape[1] * kernel area``
    (for ConvTranspose2d that is ``out_channels / groups * kernel area``, as in PyTorch).
    Layers are visited in ``module.modules()`` order, weight before bias, all from one
    generator, so the result depends on ``seed`` and the architecture only. Norm layers
    keep their ones / zeros; no other parameter or buffer is touched.

    Args:
        module: any torch module, its parameters on CPU (the generator is a CPU one, as
            when the committed weights were made; move the module afterwards).
        seed: the initialisation seed (an ``int``, e.g. a config's ``init_seed``).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if not isinstance(layer, SEEDED_LAYERS):
                continue
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
            if layer.bias is not None:
                # weight[0] is [shape[1], *kernel]: the fan-in kaiming_uniform_ used above.
                bound = 1.0 / math.sqrt(layer.weight[0].numel())
                nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    return module
