"""The metric options of a run, checked before anything runs, and the networks they need.

A suite asks for metrics with ``[run]`` keys: ``lpips_net`` (the LPIPS backbone, checked when the
suite is read), ``dists = true`` (DISTS per sample) and ``fid = true`` (FID, KID, P-IDS, U-IDS of
the kept outputs, computed by the report). A metric asked for explicitly whose weights are
missing is bad input: one line naming the file and how to provide it, raised as
:class:`~inpaintbench.core.errors.InputError` (exit 2) before a record is written. LPIPS at its
default is not "asked for": without weights a run warns and leaves it out (the runner's
``build_lpips``).

Measured cost of DISTS per image, one torch thread, a busy 2-core CPU (VGG16 on both images at
the image's size, 32 px upsampled to 64 px): see :data:`DISTS_COST_S`; LPIPS (alex) took 5.6 ms and
165 ms in the same measurement, so DISTS is 27x (32 px) and 19x (256 px) its cost: off by default.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from inpaintbench.core.errors import InputError
from inpaintbench.core.notices import one_line

#: Seconds per image of DISTS on one CPU core (float32; batches of 16 at 32 px, 4 at 256 px; best
#: of 3), measured with ``OMP_NUM_THREADS=1`` on the shared 2-core machine at load 7-9 (a quiet
#: core is faster): {image side in px: seconds}.
DISTS_COST_S = {32: 0.15, 256: 3.1}

_HOW_LPIPS_WEIGHTS = ("give --lpips-weights a folder holding it, e.g. ../shared/weights/lpips, or set "
                      "$INPAINTBENCH_LPIPS_WEIGHTS to one")


@functools.lru_cache(maxsize=4)
def _dists(weights: str | None, device: str):
    from inpaintbench.metrics.dists_metric import DISTSMetric

    return DISTSMetric(weights=weights).to(torch.device(device))


def run_dists(enabled: bool, weights: str | os.PathLike | None, device: torch.device | str):
    """The DISTS metric of a run with ``[run] dists = enabled``, or None when it is off.

    Built once per process, weights and device (the plan's check and the run share it).

    Args:
        enabled: the suite's ``dists`` option.
        weights: the run's LPIPS weights (``--lpips-weights``: a folder holding
            ``vgg16_features.pth``, or that file); None: ``$INPAINTBENCH_LPIPS_WEIGHTS``, else
            torchvision's download.
        device: where DISTS runs.

    Raises:
        InputError: DISTS was asked for and cannot be computed here: one line naming the
            missing package or file and how to provide it.
    """
    if not enabled:
        return None
    from inpaintbench.metrics.dists_metric import DISTSUnavailable
    from inpaintbench.metrics.lpips_metric import LPIPS_WEIGHTS_ENV

    try:
        # keyed by the location that will be read: a changed $INPAINTBENCH_LPIPS_WEIGHTS is a new network
        source = weights if weights is not None else os.environ.get(LPIPS_WEIGHTS_ENV) or None
        return _dists(None if source is None else str(source), str(torch.device(device)))
    except DISTSUnavailable as err:
        if "pip install" in str(err):  # the package is missing: its message says how to install it
            raise InputError(f"[run] dists = true: {one_line(err)}") from None
        raise InputError(f"[run] dists = true needs the VGG16 weights vgg16_features.pth ({_HOW_LPIPS_WEIGHTS}): "
                         f"{one_line(err)}") from None


def check_fid_weights(weights: str | os.PathLike | None) -> str:
    """Check that the FID Inception network loads (a given file or folder, else
    ``$INPAINTBENCH_FID_WEIGHTS``, else torch-fidelity's cache or download); its source.

    Called before a run of a suite with ``fid = true`` whose report follows, and for any
    explicit ``--fid-weights``: hours of kept outputs are worth nothing without it.

    Raises:
        InputError: the network is unavailable: one line naming the file and how to provide it.
    """
    from inpaintbench.metrics.fid import ENV_WEIGHTS, FIDScorer, FIDUnavailable, resolve_weights

    given = resolve_weights(weights)
    if given is not None and not Path(given).exists():
        origin = "--fid-weights" if weights else f"${ENV_WEIGHTS}"
        raise InputError(f"FID weights {given} (from {origin}) do not exist: give --fid-weights the 2015-12-05 FID "
                         f"Inception file (e.g. ../shared/weights/fid/inception-2015-12-05-fid.pth) or a folder "
                         "holding it, or leave fid = true out")
    try:
        return FIDScorer(given).source
    except FIDUnavailable as err:
        how = "" if "--fid-weights" in str(err) else \
            f"; give --fid-weights (or ${ENV_WEIGHTS}) the 2015-12-05 FID Inception file, or leave fid = true out"
        raise InputError(f"{one_line(err)}{how}") from None
