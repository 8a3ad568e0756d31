"""ADM (guided-diffusion, Dhariwal & Nichol 2021) as one namespace.

The family lives in modules by role: :mod:`~inpaintbench.methods.diffusion.adm_config`
(:class:`ADMConfig`, :data:`PRESETS`, args files), :mod:`~inpaintbench.methods.diffusion.adm_network`
(:class:`ADMUNet`, :class:`ADMDenoiser`), :mod:`~inpaintbench.methods.diffusion.adm_checkpoint`
(safe strict loading); guided-diffusion's timestep spacing is in
:mod:`~inpaintbench.methods.diffusion.respacing` and the prior a method samples with is made by
:mod:`~inpaintbench.methods.diffusion.prior`. The names below are re-exported for
``inpaintbench weights`` (:mod:`inpaintbench.cli.weights`), which uses this module as one
namespace.

How the official code's conventions map onto the core (each checked in ``tests/test_adm.py``):
the network sees *training* timesteps (``SpacedDiffusion``'s ``timestep_map``,
``rescale_timesteps=False``), so :class:`~inpaintbench.methods.diffusion.respacing.SpacedRespacing`
returns the kept training step for a respaced index; the learned-range variance is the core's
:func:`~inpaintbench.methods.diffusion.steps.reverse_step` with ``out.v``; RePaint's and ILVR's
loops are the methods' ``chain="official"`` options.
"""

from __future__ import annotations

from inpaintbench.methods.diffusion.adm_checkpoint import check_state_dict, load_adm, load_adm_state_dict
from inpaintbench.methods.diffusion.adm_config import PRESETS, ADMConfig, load_args_file, resolve_adm
from inpaintbench.methods.diffusion.adm_network import ADMDenoiser, ADMUNet, parameter_count, timestep_embedding

__all__ = ["ADMConfig", "ADMDenoiser", "ADMUNet", "PRESETS", "check_state_dict", "load_adm", "load_adm_state_dict",
           "load_args_file", "parameter_count", "resolve_adm", "timestep_embedding"]
