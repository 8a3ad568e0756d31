"""FID and KID between composited outputs and originals, on the standard FID Inception network.

FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) are only defined on one network: the
TensorFlow Inception-v3 graph of 2015-12-05 (pool3, 2048 features) that the original TTUR
code, pytorch-fid, torch-fidelity, torchmetrics and clean-fid all use. Any other Inception
(torchvision's ImageNet one) gives different, lower numbers, so this module refuses to run
on anything but that network:

* weights come from the path the user gives (``--fid-weights`` or
  ``$INPAINTBENCH_FID_WEIGHTS``), else from torch-fidelity's normal download of the original
  file; a file is accepted only when it is one of the known files (sha256) and loads as a
  plain tensor dict with the network's layout, else :class:`FIDUnavailable` says why in one line;
* features are torchmetrics' ``NoTrainInceptionV3("inception-v3-compat", ["2048"])`` with
  TensorFlow-1 bilinear resizing to 299x299 (``antialias=False``, as the reference code);
  grey images are repeated to three channels;
* FID is torchmetrics' ``FrechetInceptionDistance`` and KID its
  ``KernelInceptionDistance`` (polynomial kernel, mean and standard deviation over
  :data:`KID_SUBSETS` subsets of ``min(1000, n // 2)`` images, seeded), both fed the
  features computed here so that they are computed once per image and cached;
* P-IDS / U-IDS (:mod:`inpaintbench.metrics.ids`) are fitted on the same cached features,
  output and original paired by sample id (:meth:`FIDScorer.score_by_id`).

Cost: about 0.85 s per image on a 2-core CPU, so it is off by default (suite option
``[run] fid = true`` makes the runner keep every composited output for it).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inpaintbench.core.errors import InpaintBenchError
from inpaintbench.core.identity import file_sha256
from inpaintbench.core.io import atomic_write
from inpaintbench.metrics.ids import IDS_MEANINGFUL_IMAGES, IDSScore, IDSUnavailable, ids_scores_of_rows, paired_rows

#: Environment variable naming the FID Inception weights file.
ENV_WEIGHTS = "INPAINTBENCH_FID_WEIGHTS"
#: Full sha256 of the accepted weight files.
KNOWN_SHA256 = {
    # the 2015-12-05 graph converted to torch-fidelity's layout (shared/weights/fid, see its README)
    "8c8fa3924cda1d5753323ff5152db4b9106afe9e577863292f4a3cfb0ca42ad4": "inception-2015-12-05 (FID, converted)",
}
#: The original files (``pt_inception-2015-12-05-6726825d.pth``,
#: ``weights-inception-2015-12-05-6726825d.pth``) carry their sha256 prefix in their name.
KNOWN_SHA256_PREFIX = "6726825d"
#: Feature dimension (pool3).
N_FEATURES = 2048
#: KID subsets (torch-fidelity's and torchmetrics' default).
KID_SUBSETS = 100
#: Fewer images than this and the 2048x2048 feature covariance is singular: FID is then biased
#: (upwards) and only comparable between methods on the same images.
FID_MIN_IMAGES = N_FEATURES
#: Seed of the KID subsets.
KID_SEED = 0


class FIDUnavailable(InpaintBenchError):
    """FID/KID cannot be computed here (missing package, no standard network); one line why."""


def resolve_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The weights file the user gave (argument, else ``$INPAINTBENCH_FID_WEIGHTS``), or None
    for torch-fidelity's download of the original file."""
    given = path or os.environ.get(ENV_WEIGHTS)
    return Path(given) if given else None


def weights_file(path: Path) -> Path:
    """``path``, or the inception-2015-12-05 ``*.pth`` file in it when it is a folder."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*inception*2015-12-05*.pth"))
        if not candidates:
            raise FIDUnavailable(f"FID/KID not computed: no inception-2015-12-05 *.pth file in {path}")
        return candidates[0]
    return path


def check_weights(path: Path) -> str:
    """sha256 of ``path`` if it is the FID Inception network; else :class:`FIDUnavailable`.

    Accepted: a known sha256, or the original files' sha256 prefix, and in both cases a
    plain ``dict[str, Tensor]`` (``torch.load(weights_only=True)``) with the pool3 layout.
    """
    path = weights_file(path)
    if not path.is_file():
        raise FIDUnavailable(f"FID/KID not computed: FID Inception weights {path} do not exist")
    sha = file_sha256(path)
    if sha not in KNOWN_SHA256 and not sha.startswith(KNOWN_SHA256_PREFIX):
        raise FIDUnavailable(
            f"FID/KID refused: {path} (sha256 {sha[:16]}…) is not the 2015-12-05 FID Inception network; "
            "FID on any other network is not FID (give --fid-weights the standard file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is refused the same way
        raise FIDUnavailable(f"FID/KID refused: {path} is not a plain tensor file ({type(err).__name__})") from err
    pool = state.get("Mixed_7c.branch_pool.conv.weight") if isinstance(state, dict) else None
    if pool is None or tuple(pool.shape) != (192, N_FEATURES, 1, 1):
        raise FIDUnavailable(f"FID/KID refused: {path} does not have the FID Inception layout (pool3, 2048 features)")
    return sha


@dataclass
class SetScore:
    """FID, KID, P-IDS and U-IDS of one set of outputs against the originals of the same images.

    ``ids`` is None when P-IDS/U-IDS could not be computed (``ids_reason`` says why, in one line).
    """

    fid: float
    kid: float
    kid_std: float
    n: int
    kid_subset_size: int
    ids: IDSScore | None = None
    ids_reason: str = ""

    def value(self, name: str) -> float | None:
        """The value of set metric ``name`` (a :data:`inpaintbench.metrics.table.SET_METRICS`
        name: ``fid``, ``kid``, ``pids``, ``uids``); None when it was not computed."""
        if name in ("pids", "uids"):
            return None if self.ids is None else (self.ids.p_ids if name == "pids" else self.ids.u_ids)
        return {"fid": self.fid, "kid": self.kid}[name]

    @property
    def small(self) -> bool:
        """Too few images for FID to be meaningful (see :data:`FID_MIN_IMAGES`)."""
        return self.n < FID_MIN_IMAGES


class _Features(torch.nn.Module):
    """Hands precomputed features to torchmetrics' metrics (a "feature extractor" that is the identity)."""

    num_features = N_FEATURES

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x


class FIDScorer:
    """Inception features (cached) and FID/KID of sets of images.

    Args:
        weights: the FID Inception file (see :func:`resolve_weights`); None downloads the
            original with torch-fidelity.
        device: where the network runs.
        batch_size: images per forward pass.

    Raises:
        FIDUnavailable: torchmetrics / torch-fidelity missing, or not the standard network.
    """

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 16):
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
            import torch_fidelity  # noqa: F401
        except ImportError as err:
            raise FIDUnavailable(f"FID/KID not computed: {err.name} is not installed "
                                 "(pip install 'inpaintbench[fid]')") from err
        path = resolve_weights(weights)
        if path is not None:
            path = weights_file(path)
            self.sha256 = check_weights(path)
            self.source = str(path)
        else:
            self.sha256, self.source = "original-download", "torch-fidelity download (weights-inception-2015-12-05)"
        try:
            self.network = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(N_FEATURES)],
                                              feature_extractor_weights_path=None if path is None else str(path),
                                              antialias=False).to(device)
        except Exception as err:  # noqa: BLE001 - a failed download or load is one line for the user
            where = "download failed" if path is None else f"{path} did not load"
            raise FIDUnavailable(f"FID/KID not computed: the FID Inception network is not available ({where}: "
                                 f"{type(err).__name__}); give --fid-weights or ${ENV_WEIGHTS}") from err
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.no_grad()
    def features(self, images: np.ndarray) -> np.ndarray:
        """Pool3 features ``float64 [N, 2048]`` of uint8 images ``[N, C, H, W]`` (C = 1 or 3)."""
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start: start + self.batch_size])).to(self.device)
            if batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1)
            out.append(self.network(batch.contiguous()).double().cpu().numpy().reshape(len(batch), -1))
        return np.concatenate(out) if out else np.zeros((0, N_FEATURES))

    def cached_features(self, images: dict[str, np.ndarray], cache: Path) -> dict[str, np.ndarray]:
        """Features of ``{sample id: uint8 [C, H, W]}``, cached in ``cache`` (npz) per image content."""
        stored: dict[str, np.ndarray] = {}
        if cache.exists():
            with np.load(cache) as data:
                stored = {k: data[k] for k in data.files}
        keys = {sid: f"{self.sha256[:16]}-{hashlib.sha1(img.tobytes() + str(img.shape).encode()).hexdigest()}"
                for sid, img in images.items()}
        todo = [sid for sid, k in keys.items() if k not in stored]
        if todo:
            feats = self.features(np.stack([images[s] for s in todo]))
            stored.update({keys[s]: f.astype(np.float32) for s, f in zip(todo, feats)})
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **stored)
            atomic_write(cache, buffer.getvalue())
        return {sid: stored[keys[sid]].astype(np.float64) for sid in images}

    def score_by_id(self, real: dict[str, np.ndarray], fake: dict[str, np.ndarray], *, ids: bool = True) -> SetScore:
        """FID, KID and (``ids=True``) P-IDS/U-IDS of the outputs ``fake`` against the originals
        ``real``, both ``{sample id: features [2048]}`` (from :meth:`cached_features`: one
        extraction serves all four); the images are the ids both hold, paired by id."""
        _, real_rows, fake_rows = paired_rows(real, fake)
        return set_score(real_rows, fake_rows, ids=ids)

    def score(self, real: np.ndarray, fake: np.ndarray, *, ids: bool = False) -> SetScore:
        """:func:`set_score` of two feature sets (row ``i`` of both is one pair)."""
        return set_score(real, fake, ids=ids)


def set_score(real: np.ndarray, fake: np.ndarray, *, ids: bool = False) -> SetScore:
    """FID and KID (mean, std) between feature sets ``[n, 2048]`` (torchmetrics' formulas);
    with ``ids`` also P-IDS/U-IDS (:mod:`inpaintbench.metrics.ids`), which read row ``i`` of
    both arrays as one pair (use :meth:`score_by_id` to pair by sample id)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(real), len(fake))
    if n < 2:
        raise FIDUnavailable(f"FID/KID need at least 2 images, got {n}")
    fid = FrechetInceptionDistance(feature=_Features())
    fid.update(torch.from_numpy(real), real=True)
    fid.update(torch.from_numpy(fake), real=False)
    subset = int(min(1000, max(2, n // 2)))
    with warnings.catch_warnings():  # "KID keeps all features in memory": here 2048 floats an image
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=_Features(), subsets=KID_SUBSETS, subset_size=subset)
    kid.update(torch.from_numpy(real), real=True)
    kid.update(torch.from_numpy(fake), real=False)
    with torch.random.fork_rng(devices=[]):  # seeded subsets, global RNG untouched
        torch.manual_seed(KID_SEED)
        kid_mean, kid_std = kid.compute()
    score = SetScore(float(fid.compute()), float(kid_mean), float(kid_std), n, subset)
    if ids and n < IDS_MEANINGFUL_IMAGES:  # the SVM would separate any two sets: 0 and 0, said instead
        score.ids_reason = (f"P-IDS/U-IDS not computed: {n} images are too few (below {IDS_MEANINGFUL_IMAGES:,} "
                            "images a linear SVM separates any two sets of 2,048-d features, and both scores "
                            "are 0 whatever the outputs)")
    elif ids:
        try:
            score.ids = ids_scores_of_rows(real, fake)
        except IDSUnavailable as err:
            score.ids_reason = str(err)
    return score
