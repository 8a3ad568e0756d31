"""FID/KID and P-IDS/U-IDS of the composited outputs a run kept, for the leaderboard: reads the
store's output files and scores them with :class:`~inpaintbench.metrics.fid.FIDScorer` (one
Inception extraction, cached, serves all four)."""

from __future__ import annotations

from pathlib import Path

from inpaintbench.metrics.fid import FIDScorer, SetScore
from inpaintbench.store.artifacts import load_examples, originals_path, outputs_path, safe_name


def score_outputs(scorer: FIDScorer, root: Path, dataset: str, mask: str, methods: list[str],
                  ids: list[str]) -> dict[str, SetScore]:
    """FID/KID and P-IDS/U-IDS of each method's kept composited outputs on images ``ids`` against
    the originals of the same images, output and original paired by sample id; methods whose
    outputs were not kept are left out.

    Features are cached under ``root/outputs/.features`` (the real set per (dataset, size),
    each output set per (dataset, condition, method)), so a report regenerates them for free.
    """
    originals = load_examples(originals_path(root, dataset))
    if not originals:
        return {}
    real_images = {s: originals[s]["original"] for s in ids if s in originals}
    if not real_images:
        return {}
    shape = next(iter(real_images.values())).shape
    cache = Path(root) / "outputs" / ".features"
    real = scorer.cached_features(real_images, cache / f"real_{safe_name(dataset)}_{shape[-2]}x{shape[-1]}.npz")
    out = {}
    for method in methods:
        outputs = load_examples(outputs_path(root, dataset, mask, method))
        have = [s for s in ids if s in outputs and s in real]
        if len(have) < 2:
            continue
        fake = scorer.cached_features({s: outputs[s]["output"] for s in have},
                                      cache / safe_name(dataset) / safe_name(mask) / f"{safe_name(method)}.npz")
        out[method] = scorer.score_by_id({s: real[s] for s in have}, fake)
    return out
