"""What ``inpaintbench plan`` can say before anything runs, without downloading or computing:
whether the LPIPS and FID weights are on this machine, and how long the pending work should
take, from the recorded cost of the same method configurations on the same data.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from inpaintbench.store.folder import ResultsFolder

__all__ = ["committed_results_folders", "fid_weights_state", "lpips_weights_state", "recorded_costs"]


def lpips_weights_state(net: str, weights: str | None = None) -> tuple[bool, str]:
    """Whether the LPIPS backbone ``net`` would load here without a download, and from where.

    Follows the metric's own order (:func:`~inpaintbench.metrics.lpips_metric.load_backbone_state`):
    ``weights``, else ``$INPAINTBENCH_LPIPS_WEIGHTS``, else torchvision's cache; only looks
    for the file (it is read when the run starts).

    Returns:
        ``(available, text)``: the file, or why it is missing and how to give it.
    """
    from inpaintbench.metrics.lpips_metric import BACKBONE_FILES, LPIPS_WEIGHTS_ENV, _torchvision_url, _weights_file

    given, origin = (weights, "--lpips-weights") if weights else (os.environ.get(LPIPS_WEIGHTS_ENV),
                                                                  f"${LPIPS_WEIGHTS_ENV}")
    if given:
        path = _weights_file(Path(given).expanduser(), net)
        if path.is_file():
            return True, str(path)
        return False, f"{path} (from {origin}) does not exist; the run stops on it"
    import torch

    url = _torchvision_url(net)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return True, f"{cached} (torchvision's cache)"
    return False, (f"not on this machine: the run tries to download {url}, else reports no LPIPS; give "
                   f"--lpips-weights or ${LPIPS_WEIGHTS_ENV} (a folder holding {BACKBONE_FILES[net]})")


def fid_weights_state(weights: str | None = None) -> tuple[bool, str]:
    """Whether the 2015-12-05 FID Inception file is here (``weights``, ``$INPAINTBENCH_FID_WEIGHTS``
    or torch-fidelity's cache), without reading it; ``(available, text)``."""
    from inpaintbench.metrics.fid import ENV_WEIGHTS, FIDUnavailable, resolve_weights, weights_file

    given = resolve_weights(weights)
    if given is not None:
        try:
            path = weights_file(given)
        except FIDUnavailable as err:
            return False, str(err)
        return (True, str(path)) if path.is_file() else (False, f"{path} does not exist")
    import torch

    cached = sorted((Path(torch.hub.get_dir()) / "checkpoints").glob("*inception*2015-12-05*.pth"))
    if cached:
        return True, f"{cached[0]} (torch-fidelity's cache)"
    return False, f"not on this machine: the report tries torch-fidelity's download; give --fid-weights or ${ENV_WEIGHTS}"


def committed_results_folders() -> list[Path]:
    """The results folders committed beside the package (``reports/results/*`` of a source
    checkout; none in an installed wheel)."""
    root = Path(__file__).resolve().parents[2] / "reports" / "results"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def recorded_costs(folders: Iterable[Path], wanted: set[tuple[str, str]]) -> dict[tuple[str, str], float]:
    """Seconds per image recorded for ``(config hash, dataset hash)`` pairs in ``folders``.

    A unit file gives its wall time (method calls, warm-up, metrics, side files: what a
    rerun costs) over its samples; a folder's single ``results.jsonl`` of earlier versions
    only the timed calls (``time_s``). Only the first two lines of each unit file are read,
    and only lines naming a wanted config hash of the single file, so this stays fast on
    large folders. Records of other machines count as they are: an estimate, not a promise.

    Returns:
        the mean seconds per image of each wanted pair that was found.
    """
    seconds, images = defaultdict(float), defaultdict(int)
    hashes = {chash for chash, _ in wanted}
    for folder in folders:
        store = ResultsFolder(folder)
        for path in sorted(store.units_dir.glob("*.jsonl")) if store.units_dir.is_dir() else []:
            header, first = _first_records(path)
            if header is None or first is None:
                continue
            key = (first.get("config_hash"), first.get("dataset_hash"))
            n = len(header.get("sample_ids") or [])
            if key in wanted and n and header.get("wall_s"):
                seconds[key] += float(header["wall_s"])
                images[key] += n
        legacy = Path(folder) / "results.jsonl"
        if legacy.is_file() and hashes - {k[0] for k in images}:
            with legacy.open(encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if not any(h in line for h in hashes):
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    key = (record.get("config_hash"), record.get("dataset_hash"))
                    if key in wanted and record.get("status") == "ok" and record.get("time_s"):
                        seconds[key] += float(record["time_s"])
                        images[key] += 1
    return {key: seconds[key] / images[key] for key in images if images[key]}


def _first_records(path: Path) -> tuple[dict | None, dict | None]:
    """The header and first sample record of a unit file (None where unreadable)."""
    try:
        with path.open(encoding="utf-8") as lines:
            header, first = json.loads(next(lines, "null")), json.loads(next(lines, "null"))
    except (OSError, ValueError):
        return None, None
    ok = lambda r, kind: r if isinstance(r, dict) and r.get("kind") == kind else None  # noqa: E731
    return ok(header, "unit"), ok(first, "sample")
