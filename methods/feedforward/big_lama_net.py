"""The Big LaMa generator (Suvorov et al. 2022): LaMa's ``FFCResNetGenerator`` in the
configuration of ``configs/training/big-lama.yaml`` (section ``generator``), built from the
shared blocks of :mod:`inpaintbench.methods.feedforward.ffc_blocks`.

A 7x7 local convolution, three stride-2 downsampling FFC layers (the last one splits its
output 25 % local / 75 % global), 18 FFC residual blocks at 512 channels (75 % global
channels, spectral transform without LaMa's "local Fourier unit"), three transposed
convolutions back up and a 7x7 convolution with a sigmoid. Its parameter names are those of
the official state dict (the Lightning checkpoint's ``generator.model.<i>...`` without the
``generator.`` prefix), so the official weights load strictly (:mod:`.big_lama_weights`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from inpaintbench.core.errors import InputError
from inpaintbench.methods.feedforward.ffc_blocks import ffc_resnet

#: LaMa's ``configs/training/big-lama.yaml`` generator section, as :class:`BigLamaGenerator` kwargs.
BIG_LAMA_ARCH: dict[str, Any] = {
    "input_nc": 4,          # RGB image with its holes zeroed + the mask
    "output_nc": 3,
    "ngf": 64,
    "n_downsampling": 3,
    "n_blocks": 18,
    "max_features": 1024,
    "ratio_global": 0.75,   # resnet_conv_kwargs ratio_gin = ratio_gout; the init and
                            # downsample convs are local (0), except the last downsample's output
}


class BigLamaGenerator(nn.Module):
    """LaMa's ``FFCResNetGenerator`` (Big LaMa configuration by default).

    ``self.model`` is one ``nn.Sequential`` whose indices are those of the official network
    (:func:`~inpaintbench.methods.feedforward.ffc_blocks.ffc_resnet`), so its state dict has the
    official keys (``model.1.ffc.convl2l.weight``, ..., ``model.5.conv1.ffc.convg2g.fu.conv_layer.weight``,
    ...). With the defaults: ``0`` reflection pad 3, ``1`` 7x7 FFC (local only), ``2``-``4``
    stride-2 FFCs (the last one 25 % local / 75 % global out), ``5``-``22`` residual FFC blocks,
    ``23`` concatenation, ``24``-``32`` three (transposed conv, batch norm, ReLU), ``33``
    reflection pad 3, ``34`` 7x7 conv, ``35`` sigmoid.

    Args:
        input_nc, output_nc: channels in (image + mask) and out.
        ngf: width of the first layer; doubles per downsampling, capped at ``max_features``.
        n_downsampling, n_blocks: encoder depth and number of residual blocks.
        max_features: channel cap.
        ratio_global: fraction of global channels in the residual blocks (and of the last
            downsampling layer's output).

    Input ``[B, input_nc, H, W]`` with ``H`` and ``W`` multiples of ``2 ** n_downsampling``;
    output ``[B, output_nc, H, W]`` in ``(0, 1)``.
    """

    def __init__(self, input_nc: int = 4, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 3,
                 n_blocks: int = 18, max_features: int = 1024, ratio_global: float = 0.75):
        super().__init__()
        self.arch = {"input_nc": input_nc, "output_nc": output_nc, "ngf": ngf,
                     "n_downsampling": n_downsampling, "n_blocks": n_blocks,
                     "max_features": max_features, "ratio_global": ratio_global}
        self.model = ffc_resnet(input_nc, output_nc, ngf, n_downsampling, n_blocks, ratio_global, max_features)
        self.multiple = 2 ** n_downsampling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, input_nc, H, W]`` (H, W multiples of ``2 ** n_downsampling``) ->
        ``[B, output_nc, H, W]`` in ``(0, 1)``."""
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise InputError(f"BigLamaGenerator needs H and W divisible by {self.multiple}, got {h}x{w}")
        return self.model(x)
