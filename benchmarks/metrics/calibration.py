"""Calibration of the suite's metrics against every independent implementation that runs here.

``python -m inpaintbench.metrics.calibration --out reports/metrics`` writes
``reports/metrics/CALIBRATION.md``: for each metric, the suite's value beside each other
implementation on the same real images, the largest difference, and why a difference above
:data:`CLOSE` (1e-4) exists. Inputs are real faces (``--data-root``, default ``../shared/data``):
CelebA val at 64 px (centre crop 140, area resize) and CelebA-HQ at 256 px; the "outputs" are
OpenCV Telea fills of a centred box hole (known pixels kept), so that every metric sees
plausible inpaintings, not noise.

Implementations (each imported only when present; a missing one is a row that says so):
PSNR and SSIM: scikit-image, torchmetrics; LPIPS (alex, vgg, squeeze): the ``lpips`` package,
torchmetrics' copy; DISTS: the ``DISTS_pytorch`` package built its own documented way; FID
and KID: torchmetrics end to end, torch-fidelity, pytorch-fid, clean-fid; P-IDS / U-IDS:
MAT's ``compute_ids`` (read from ``--mat``, an outside checkout of MAT, run only when given:
the package never ships nor depends on it). Every Inception is the 2015-12-05 FID network
from the one weights file, and every LPIPS / DISTS backbone the one ImageNet file.

:func:`per_image_rows` and :func:`set_rows` are what the calibration test runs on tiny inputs
with :data:`TOLERANCES`, so that no difference grows unnoticed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

#: Differences up to this are agreement (float32 rounding); larger ones carry a reason.
CLOSE = 1e-4
#: The hole of the synthetic inpaintings: rows, columns as fractions of the side.
HOLE = (0.3, 0.7, 0.25, 0.75)


@dataclass
class Row:
    """One comparison: the suite's values beside one other implementation's, on one input set."""

    metric: str
    implementation: str
    inputs: str
    ours: np.ndarray
    theirs: np.ndarray | None
    note: str = ""

    @property
    def max_diff(self) -> float:
        """Largest absolute difference (NaN when the implementation did not run)."""
        return float("nan") if self.theirs is None else float(np.max(np.abs(self.ours - self.theirs)))


#: Why each known difference exists (measured; the report prints it beside differences > CLOSE).
REASONS = {
    ("SSIM", "torchmetrics"): (
        "border: torchmetrics reflect-pads by 5 px and averages the SSIM map over all H x W pixels, the frame "
        "computed on mirrored pixels included; scikit-image (and the suite) drop the 5-px frame, where the "
        "Gaussian window leaves the image. The frame is 29 % of a 64 px image and 8 % at 256 px, hence the "
        "size dependence; same window (sigma 1.5, 11 taps), constants and data_range. torchmetrics' map "
        "cropped by 5 px agrees with the suite (row 'torchmetrics, frame cropped')"),
    ("FID", "pytorch-fid"): (
        "resize filter: pytorch-fid upsamples to 299 px with PyTorch's bilinear (half-pixel centres), the "
        "suite (torch-fidelity, torchmetrics) with TensorFlow 1's bilinear (corner-aligned), as the original "
        "TTUR code; same network weights"),
    ("KID", "pytorch-fid"): "resize filter, as for its FID (pytorch-fid has no KID: its features, the suite's KID)",
    ("FID", "torchmetrics"): (
        "resize filter: torchmetrics' FrechetInceptionDistance defaults to antialias=True, which swaps the "
        "network's resize to 299 px from TensorFlow 1's bilinear (the reference TTUR code's, torch-fidelity's) to "
        "PyTorch's bilinear with half-pixel centres (antialiased when shrinking); the suite builds the same "
        "network with antialias=False"),
    ("KID", "torchmetrics"): "resize filter (antialias=True by default), as for its FID",
    ("Inception features", "torchmetrics"): "resize filter (antialias=True by default), as for its FID",
    ("Inception features", "pytorch-fid"): "resize filter, as for its FID",
    ("FID", "clean-fid (legacy_pytorch)"): "resize filter: as pytorch-fid (clean-fid's legacy_pytorch mode is its network and resize)",
    ("FID", "clean-fid (clean resize)"): (
        "resize filter: clean-fid's 'clean' mode resizes each channel with PIL's antialiased bicubic on float32 "
        "values (not quantised after); by design it is another FID (its authors' point), not a calibration error"),
    ("KID", "torch-fidelity"): (
        "random subsets: both average over 100 random subsets of the same size, drawn with different generators "
        "(torch-fidelity: numpy RandomState(2020); the suite: torch, seed 0); with subsets of all n images the "
        "two agree (row 'torch-fidelity, subsets of n')"),
    ("KID", "clean-fid (legacy_pytorch)"): "resize filter (as its FID) and random subsets (numpy's global generator)",
    ("KID", "clean-fid (clean resize)"): "resize filter (as its FID) and random subsets (numpy's global generator)",
}

#: The largest difference each comparison may show in the calibration test (tiny inputs).
TOLERANCES = {
    ("PSNR", "scikit-image"): 1e-5, ("PSNR", "torchmetrics"): 1e-4,
    # SSIM in float32: 5.5e-6 measured on CelebA-HQ fills (float64: 1e-14).
    ("SSIM", "scikit-image"): 1e-5, ("SSIM", "torchmetrics, frame cropped"): 1e-5,
    ("SSIM", "torchmetrics"): 0.1,
    **{(f"LPIPS ({net})", impl): 1e-5 for net in ("alex", "vgg", "squeeze") for impl in ("lpips", "torchmetrics")},
    ("DISTS", "DISTS_pytorch"): 1e-6,
    # pool3 features (values up to ~5): the suite's network equals torch-fidelity's; torchmetrics'
    # default and pytorch-fid resize otherwise (measured 0.36 and 0.37 on 64 px faces).
    ("Inception features", "torchmetrics"): 0.6, ("Inception features", "torch-fidelity"): 1e-4,
    ("Inception features", "pytorch-fid"): 0.6,
}


def version(package: str) -> str:
    """The installed version of ``package`` or ``"absent"``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --- inputs ------------------------------------------------------------------------------------

def inpainted(originals: np.ndarray) -> np.ndarray:
    """OpenCV Telea fills of a centred box (:data:`HOLE`) of uint8 images ``[N, 3, H, W]``; the
    known pixels are kept exactly, so the result is also the composited output."""
    import cv2

    n, _, h, w = originals.shape
    mask = np.zeros((h, w), np.uint8)
    mask[int(HOLE[0] * h):int(HOLE[1] * h), int(HOLE[2] * w):int(HOLE[3] * w)] = 255
    return np.stack([cv2.inpaint(np.ascontiguousarray(o.transpose(1, 2, 0)), mask, 3, cv2.INPAINT_TELEA)
                     .transpose(2, 0, 1) for o in originals])


def load_faces(data_root: Path, which: str, n: int) -> np.ndarray:
    """uint8 ``[n, 3, H, W]`` real faces: ``"celeba64"`` (CelebA val, centre crop 140, area resize
    to 64) or ``"celebahq256"`` (CelebA-HQ 256), the first ``n`` files in name order."""
    import cv2

    folder = data_root / ("celeba/val" if which == "celeba64" else "celebahq-256/images")
    files = sorted(folder.glob("*.jpg"))[:n]
    if len(files) < n:
        raise FileNotFoundError(f"{folder} holds {len(files)} JPEG images, {n} wanted")
    images = []
    for path in files:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if which == "celeba64":
            top, left = (image.shape[0] - 140) // 2, (image.shape[1] - 140) // 2
            image = cv2.resize(image[top:top + 140, left:left + 140], (64, 64), interpolation=cv2.INTER_AREA)
        images.append(image.transpose(2, 0, 1))
    return np.stack(images)


def as_float(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` -> float32 in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)


# --- per-image metrics ---------------------------------------------------------------------------

def _load_by_suffix(backbone: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load torchvision ``features.N.*`` tensors into a backbone that keeps torchvision's indices
    under its own prefixes (lpips: ``slice2.3.weight``; torchmetrics' SqueezeNet:
    ``slices.1.3.squeeze.weight``); every tensor of the backbone must be found."""
    mapped = {}
    for name in backbone.state_dict():
        parts = name.split(".")
        key = next((f"features.{'.'.join(parts[i:])}" for i in range(len(parts))
                    if f"features.{'.'.join(parts[i:])}" in state), None)
        if key is None:
            raise KeyError(f"no ImageNet tensor for {name}")
        mapped[name] = state[key]
    if len(set(map(id, mapped.values()))) != len(state):
        raise KeyError("the backbone does not use every ImageNet tensor exactly once")
    backbone.load_state_dict(mapped, strict=True)


def _lpips_reference(package: str, net: str, weights: Path) -> Callable:
    """LPIPS of the ``lpips`` package or torchmetrics' copy, heads their own, backbone ``weights``."""
    from inpaintbench.metrics.lpips_metric import load_backbone_state

    state, _ = load_backbone_state(net, weights)
    if package == "lpips":
        import lpips

        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    else:
        from torchmetrics.functional.image.lpips import _NoTrainLpips

        model = _NoTrainLpips(net=net, pretrained=True, pnet_rand=True)
    _load_by_suffix(model.net, {k: v for k, v in state.items() if k.startswith("features.")})
    model = model.eval()
    return lambda x, y: model(x, y, normalize=True).detach().flatten()


def _package_dists(weights: Path) -> Callable:
    """The DISTS_pytorch package's ``DISTS()``, built its documented way: ``models.vgg16(pretrained=True)``
    (torchvision's VGG16 given the ImageNet features, nothing downloads) and alpha/beta read by the
    package from ``sys.prefix/weights.pt`` (pointed at the file it ships)."""
    import torchvision
    from DISTS_pytorch import DISTS_pt

    features = torch.load(Path(weights) / "vgg16_features.pth", map_location="cpu", weights_only=True)
    make = torchvision.models.vgg16

    def vgg16(pretrained=True):
        net = make(weights=None)
        net.features.load_state_dict({k.removeprefix("features."): v for k, v in features.items()}, strict=True)
        return net

    prefix = sys.prefix
    DISTS_pt.models = types.SimpleNamespace(vgg16=vgg16)
    sys.prefix = str(Path(DISTS_pt.__file__).parent)
    try:
        model = DISTS_pt.DISTS().eval()
    finally:
        DISTS_pt.models, sys.prefix = torchvision.models, prefix
    return lambda x, y: model(x, y).reshape(-1)


def per_image_rows(originals: np.ndarray, outputs: np.ndarray, inputs: str, lpips_weights: Path) -> list[Row]:
    """PSNR, SSIM, LPIPS (three backbones) and DISTS of ``outputs`` against ``originals`` (uint8
    ``[N, 3, H, W]``): the suite's value beside every implementation installed here."""
    from inpaintbench.metrics.table import psnr, ssim

    x, y = as_float(outputs), as_float(originals)
    rows = []
    ours = psnr(x, y).numpy()
    if _installed("skimage"):
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        rows.append(Row("PSNR", "scikit-image", inputs, ours, np.array(
            [peak_signal_noise_ratio(b.numpy().astype(np.float64), a.numpy().astype(np.float64), data_range=1.0)
             for a, b in zip(x, y)]), "float64, data_range=1"))
    if _installed("torchmetrics"):
        from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
        from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

        rows.append(Row("PSNR", "torchmetrics", inputs, ours, tm_psnr(x, y, data_range=1.0, dim=(1, 2, 3),
                                                                     reduction="none").double().numpy(),
                        "float32, data_range=1"))
    ours = ssim(x, y).numpy()
    if _installed("skimage"):
        rows.append(Row("SSIM", "scikit-image", inputs, ours, np.array(
            [structural_similarity(a.numpy().astype(np.float64), b.numpy().astype(np.float64), gaussian_weights=True,
                                   sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=0)
             for a, b in zip(x, y)]), "gaussian_weights, sigma 1.5, population covariance, float64"))
    if _installed("torchmetrics"):
        whole, full = tm_ssim(x.double(), y.double(), data_range=1.0, reduction="none", return_full_image=True)
        rows.append(Row("SSIM", "torchmetrics", inputs, ours, whole.numpy(), "defaults (Gaussian 11 taps, sigma 1.5), data_range=1"))
        rows.append(Row("SSIM", "torchmetrics, frame cropped", inputs, ours,
                        full[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)).numpy(), "its SSIM map without the 5-px frame"))
    from inpaintbench.metrics.lpips_metric import LPIPSMetric

    for net in ("alex", "vgg", "squeeze"):
        ours = LPIPSMetric(net, weights=lpips_weights)(x, y).double().numpy()
        for package, module in (("lpips", "lpips"), ("torchmetrics", "torchmetrics")):
            if _installed(module):
                with torch.no_grad():
                    theirs = _lpips_reference(package, net, lpips_weights)(x, y).double().numpy()
                rows.append(Row(f"LPIPS ({net})", package, inputs, ours, theirs,
                                "its own v0.1 heads, the ImageNet backbone file, normalize=True"))
    if _installed("DISTS_pytorch"):
        from inpaintbench.metrics.dists_metric import DISTSMetric

        ours = DISTSMetric(weights=lpips_weights)(x, y).double().numpy()
        with torch.no_grad():
            theirs = _package_dists(lpips_weights)(x, y).double().numpy()
        rows.append(Row("DISTS", "DISTS_pytorch", inputs, ours, theirs, "DISTS() as documented, alpha/beta it ships"))
    return rows


# --- set metrics ---------------------------------------------------------------------------------

@contextlib.contextmanager
def hub_with_fid_weights(weights: Path) -> Iterator[None]:
    """torch.hub's cache pointed at a folder where the FID file stands under pytorch-fid's name
    (``pt_inception-2015-12-05-6726825d.pth``, loaded without a hash check): pytorch-fid and
    clean-fid's pytorch Inception then load the one weights file instead of downloading."""
    saved = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as hub:
        (Path(hub) / "checkpoints").mkdir()
        (Path(hub) / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth").symlink_to(Path(weights).resolve())
        torch.hub.set_dir(hub)
        try:
            yield
        finally:
            torch.hub.set_dir(saved)


def inception_features(implementation: str, images: np.ndarray, weights: Path) -> np.ndarray:
    """Pool3 features ``float64 [N, 2048]`` of uint8 images ``[N, 3, H, W]`` computed the way
    ``implementation`` computes them, always on the FID weights file ``weights``:

    * ``"torchmetrics"``: ``FrechetInceptionDistance``'s network with its defaults (``antialias=True``);
    * ``"torch-fidelity"``: ``FeatureExtractorInceptionV3("inception-v3-compat")`` (TF1 bilinear resize);
    * ``"pytorch-fid"``: ``InceptionV3([3])``, its own resize (PyTorch bilinear) inside;
    * ``"clean-fid (legacy_pytorch)"`` / ``"clean-fid (clean resize)"``: clean-fid's resizer of that
      mode, then its pytorch ``InceptionV3`` (the 'clean' TorchScript network downloads itself).
    """
    batches = [images[i:i + 8] for i in range(0, len(images), 8)]
    with torch.no_grad(), hub_with_fid_weights(weights):
        if implementation == "torchmetrics":
            from torchmetrics.image.fid import FrechetInceptionDistance

            net = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights)).inception
            run = lambda b: net(torch.from_numpy(b))  # noqa: E731
        elif implementation == "torch-fidelity":
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                              feature_extractor_weights_path=str(weights)).eval()
            run = lambda b: net(torch.from_numpy(b))[0]  # noqa: E731
        elif implementation == "pytorch-fid":
            from pytorch_fid.inception import InceptionV3

            net = InceptionV3([3]).eval()
            run = lambda b: net(as_float(b))[0]  # noqa: E731
        else:
            from cleanfid.inception_pytorch import InceptionV3
            from cleanfid.resize import build_resizer

            net = InceptionV3([3], resize_input=False).eval()
            resize = build_resizer("legacy_pytorch" if "legacy" in implementation else "clean")
            run = lambda b: net(torch.from_numpy(np.stack(  # noqa: E731
                [resize(im.transpose(1, 2, 0)) for im in b]).transpose(0, 3, 1, 2).copy()).float() / 255)[0]
        return np.concatenate([run(b).reshape(len(b), -1).double().numpy() for b in batches])


def _kid_of_all(real: np.ndarray, fake: np.ndarray) -> float:
    """torchmetrics' KID of two feature sets with subsets of all ``n`` images (no sampling)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    from inpaintbench.metrics.fid import _Features

    kid = KernelInceptionDistance(feature=_Features(), subsets=100, subset_size=len(real))
    kid.update(torch.from_numpy(real), real=True)
    kid.update(torch.from_numpy(fake), real=False)
    return float(kid.compute()[0])


#: The FID / KID implementations compared, with the Python module each needs.
FID_IMPLEMENTATIONS = {"torchmetrics": "torchmetrics", "torch-fidelity": "torch_fidelity", "pytorch-fid": "pytorch_fid",
                       "clean-fid (legacy_pytorch)": "cleanfid", "clean-fid (clean resize)": "cleanfid"}


def set_rows(originals: np.ndarray, outputs: np.ndarray, inputs: str, fid_weights: Path,
             mat: Path | None = None, features_only: bool = False) -> list[Row]:
    """FID, KID (and P-IDS / U-IDS with ``mat``) of ``outputs`` against ``originals`` (uint8
    ``[N, 3, H, W]``), the suite's beside each implementation; ``features_only``: compare the
    Inception features alone (the calibration test, where a handful of images has no FID)."""
    from inpaintbench.metrics.fid import FIDScorer, set_score

    scorer = FIDScorer(fid_weights)
    # The suite's numbers come from its cached (float32) features, as in a report.
    real, fake = (scorer.features(a).astype(np.float32).astype(np.float64) for a in (originals, outputs))
    ids = [f"s{i}" for i in range(len(real))]
    suite = None if features_only else scorer.score_by_id(dict(zip(ids, real)), dict(zip(ids, fake)), ids=False)
    n, subset, rows = len(real), None if suite is None else suite.kid_subset_size, []
    for impl, module in FID_IMPLEMENTATIONS.items():
        if not _installed(module) or (features_only and impl.startswith("clean-fid")):
            continue
        theirs_real, theirs_fake = (inception_features(impl, a, fid_weights) for a in (originals, outputs))
        if features_only:
            rows.append(Row("Inception features", impl, inputs, np.concatenate([real, fake]),
                            np.concatenate([theirs_real, theirs_fake]), "pool3, all images"))
            continue
        if impl == "torch-fidelity":
            from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
            from torch_fidelity.metric_kid import kid_features_to_metric

            t_real, t_fake = torch.from_numpy(theirs_real), torch.from_numpy(theirs_fake)
            fid = fid_statistics_to_metric(fid_features_to_statistics(t_fake), fid_features_to_statistics(t_real),
                                           verbose=False)["frechet_inception_distance"]
            kid = lambda size: kid_features_to_metric(t_fake, t_real, kid_subset_size=size,  # noqa: E731
                                                      verbose=False)["kernel_inception_distance_mean"]
            rows.append(Row("KID", "torch-fidelity, subsets of n", inputs, np.array([_kid_of_all(real, fake)]),
                            np.array([kid(n)]), f"its features and formula; both with subsets of all {n} images"))
            fid_kid, note = (fid, kid(subset)), f"its features and formulas (seed 2020); KID subsets of {subset}"
        elif impl.startswith("clean-fid"):
            from cleanfid.fid import fid_from_feats, kernel_distance

            np.random.seed(0)  # clean-fid draws KID subsets from numpy's global generator
            fid_kid = (fid_from_feats(theirs_fake, theirs_real),
                       kernel_distance(theirs_real, theirs_fake, max_subset_size=subset))
            note = f"its resize, pytorch Inception on the FID file, its formulas; KID subsets of {subset}"
        elif impl == "pytorch-fid":
            from pytorch_fid.fid_score import calculate_frechet_distance

            stats = lambda f: (f.mean(0), np.cov(f, rowvar=False))  # noqa: E731
            fid_kid = (calculate_frechet_distance(*stats(theirs_fake), *stats(theirs_real)),
                       set_score(theirs_real, theirs_fake).kid)
            note = "InceptionV3([3]) on the FID file, its resize; KID: the suite's formula on its features"
        else:
            score = set_score(theirs_real, theirs_fake)
            fid_kid, note = (score.fid, score.kid), "FrechetInceptionDistance / KernelInceptionDistance defaults"
        rows.append(Row("FID", impl, inputs, np.array([suite.fid]), np.array([fid_kid[0]]), note))
        rows.append(Row("KID", impl, inputs, np.array([suite.kid]), np.array([fid_kid[1]]), note))
    if mat is not None and not features_only:
        rows += ids_rows(real, fake, inputs, mat)
    return rows


def mat_compute_ids(mat: Path) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
    """MAT's ``compute_ids`` read from an outside checkout ``mat``, its feature extraction stubbed
    to hand it given activations: ``(real, fake) -> (u_ids, p_ids)``."""
    source = Path(mat) / "metrics" / "inception_discriminative_score.py"
    package = types.ModuleType("mat_metrics")
    package.__path__ = [str(source.parent)]
    stats = lambda features: types.SimpleNamespace(get_all=lambda: np.asarray(features, np.float32))  # noqa: E731
    utils = types.ModuleType("mat_metrics.metric_utils")
    utils.compute_feature_stats_for_dataset = lambda opts, **_: stats(opts.real)
    utils.compute_feature_stats_for_generator = lambda opts, **_: stats(opts.fake)
    package.metric_utils = utils
    sys.modules.update({"mat_metrics": package, "mat_metrics.metric_utils": utils})
    spec = importlib.util.spec_from_file_location("mat_metrics.inception_discriminative_score", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda real, fake: module.compute_ids(types.SimpleNamespace(rank=0, real=real, fake=fake), None, len(fake))


def ids_rows(real: np.ndarray, fake: np.ndarray, inputs: str, mat: Path) -> list[Row]:
    """P-IDS / U-IDS of the suite beside MAT's ``compute_ids`` on the same features."""
    from inpaintbench.metrics.ids import ids_scores_of_rows

    ours = ids_scores_of_rows(real, fake)
    with contextlib.redirect_stdout(None):  # MAT prints "Fitting ..."
        u_ids, p_ids = mat_compute_ids(mat)(real, fake)
    note = "MAT's code on the suite's features" + (f"; {len(real)} pairs: separable, both 0 (see ids.py); "
                                                 "non-zero values equal too: tests/reference/test_ids.py" if ours.small else "")
    return [Row("P-IDS", "MAT compute_ids", inputs, np.array([ours.p_ids]), np.array([p_ids]), note),
            Row("U-IDS", "MAT compute_ids", inputs, np.array([ours.u_ids]), np.array([u_ids]), note)]


# --- the report ------------------------------------------------------------------------------------

_PACKAGES = {"scikit-image": "scikit-image", "torchmetrics": "torchmetrics", "lpips": "lpips",
             "DISTS_pytorch": "DISTS_pytorch", "torch-fidelity": "torch-fidelity", "pytorch-fid": "pytorch-fid",
             "clean-fid": "clean-fid"}


def _package_of(implementation: str) -> str:
    for name in _PACKAGES:
        if implementation.startswith(name):
            return f"{name} {version(_PACKAGES[name])}"
    return "an outside checkout" if implementation.startswith("MAT") else "?"


def render(rows: list[Row], header: list[str]) -> str:
    """CALIBRATION.md: one table row per comparison, then the reasons of the differences above :data:`CLOSE`."""
    lines = header + ["", "| metric | implementation | inputs | n | suite (mean) | other (mean) | largest \\|Δ\\| | settings |",
                      "|---|---|---|---|---|---|---|---|"]
    reasons = {}
    for row in rows:
        diff = row.max_diff
        mark = ""
        if diff > CLOSE:
            key = next((k for k in REASONS if k[0] == row.metric and row.implementation.startswith(k[1])), None)
            if key is not None:
                reasons[key] = REASONS[key]
                mark = f" (R{list(reasons).index(key) + 1})"
            else:
                mark = " (unexplained)"
        finite = lambda v: np.asarray(v)[np.isfinite(v)]  # noqa: E731
        lines.append(f"| {row.metric} | {row.implementation} ({_package_of(row.implementation)}) | {row.inputs} | "
                     f"{len(row.ours)} | {finite(row.ours).mean():.6g} | {finite(row.theirs).mean():.6g} | "
                     f"{diff:.2e}{mark} | {row.note} |")
    lines += ["", "## Reasons for the differences above 1e-4", ""]
    lines += [f"- **R{i + 1}** ({metric} vs {impl}): {text}." for i, ((metric, impl), text) in enumerate(reasons.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """The calibration command (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m inpaintbench.metrics.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="reports/metrics", help="folder of CALIBRATION.md")
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--lpips-weights", default="../shared/weights/lpips", help="ImageNet backbones (LPIPS, DISTS)")
    parser.add_argument("--fid-weights", default="../shared/weights/fid/inception-2015-12-05-fid.pth")
    parser.add_argument("--mat", default=None, help="an outside checkout of MAT, for P-IDS/U-IDS (e.g. ../shared/reference/mat)")
    parser.add_argument("--n-small", type=int, default=64, help="CelebA 64 px images")
    parser.add_argument("--n-large", type=int, default=32, help="CelebA-HQ 256 px images (FID/KID set)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows = []
    data = Path(args.data_root)
    small = load_faces(data, "celeba64", args.n_small)
    large = load_faces(data, "celebahq256", args.n_large)
    rows += per_image_rows(small, inpainted(small), "CelebA val 64 px", Path(args.lpips_weights))
    rows += per_image_rows(large, inpainted(large), "CelebA-HQ 256 px", Path(args.lpips_weights))
    rows += set_rows(large, inpainted(large), "CelebA-HQ 256 px", Path(args.fid_weights),
                     Path(args.mat) if args.mat else None)
    command = " ".join(["python -m inpaintbench.metrics.calibration", *(argv if argv is not None else sys.argv[1:])])
    header = ["# Metric calibration", "",
              f"Generated by `{command}` (do not edit by hand). Each row: the suite's "
              "value and another implementation's on the same real images, their largest absolute difference over the "
              "images (per-image metrics) or of the one number (set metrics), and a reason for every difference above "
              f"1e-4. Inputs: the first {args.n_small} CelebA val faces (centre crop 140, area resize to 64 px) and the "
              f"first {args.n_large} CelebA-HQ faces (256 px; the FID/KID/IDS set). Outputs: OpenCV Telea fills of a centred box hole (known pixels kept). LPIPS and DISTS backbones: "
              "the ImageNet files in the LPIPS weights folder; every Inception: the 2015-12-05 FID network from "
              "one file. Not run here: piq and pyiqa (their DISTS/LPIPS download weights at construction), "
              "clean-fid's 'clean' TorchScript Inception (downloaded by clean-fid; its resize is run on the same "
              "network instead).", "",
              f"torch {torch.__version__}; " + "; ".join(f"{p} {version(p)}" for p in _PACKAGES.values())]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "CALIBRATION.md").write_text(render(rows, header))
    print(out / "CALIBRATION.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
