"""FID/KID and P-IDS/U-IDS of the composited outputs a run kept, for the leaderboard: reads the
store's output files and scores them with :class:`~inpaintbench.metrics.fid.FIDScorer` (one
Inception extraction, cached, serves all four).

Every score is also remembered in the results folder's :data:`SCORES_FILE`, keyed by the
Inception network and by :func:`records_digest` of the records it belongs to. The kept outputs
of a large set are too big to commit (600 faces x 30 sets: about 55 MB) and their features
take a CPU an hour to extract; the remembered scores are a few kilobytes. A report uses a
remembered score only when the outputs are absent and the records are exactly those the score
was computed with; outputs that are present are always scored afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from inpaintbench.core.io import atomic_write_text
from inpaintbench.metrics.fid import FIDScorer, SetScore
from inpaintbench.metrics.ids import IDSScore
from inpaintbench.metrics.table import METRICS
from inpaintbench.store.artifacts import load_examples, originals_path, outputs_path, safe_name

if TYPE_CHECKING:
    import pandas as pd

#: The remembered set scores of a results folder (committed beside its records).
SCORES_FILE = "set-scores.json"
#: The record columns that identify one sample's output besides its metrics.
_IDENTITY = ("sample_id", "config_hash", "data_sha256", "dataset_hash", "mask_hash", "seed", "status")


def records_digest(rows: pd.DataFrame) -> str:
    """sha256 (hex) of what the records of one (dataset, condition, method) set say about each
    output: sample id, configuration, data, mask and seed identities and every per-sample
    metric. Other outputs give other metrics, so a score remembered under this digest belongs
    to these very outputs."""
    metrics = [m.name for m in METRICS if m.name in rows]
    columns = [c for c in _IDENTITY if c in rows] + metrics
    payload = rows.sort_values("sample_id")[columns].to_json(orient="values", double_precision=15)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def score_outputs(scorer: FIDScorer, root: Path, dataset: str, mask: str, records: dict[str, pd.DataFrame],
                  ids: list[str]) -> tuple[dict[str, SetScore], list[str]]:
    """FID/KID and P-IDS/U-IDS of each method's kept composited outputs on images ``ids`` against
    the originals of the same images, output and original paired by sample id.

    Args:
        records: ``{method: its sample records of this table}`` (their digest keys the memory).
        ids: the table's images.

    Returns:
        ``({method: score}, methods whose score was remembered rather than computed)``; a
        method with neither outputs nor a remembered score for its records is left out.

    Features are cached under ``root/outputs/.features`` (the real set per (dataset, size),
    each output set per (dataset, condition, method)), so a report regenerates them for free.
    """
    memory_path = Path(root) / SCORES_FILE
    memory = json.loads(memory_path.read_text(encoding="utf-8")) if memory_path.is_file() else {}
    originals = load_examples(originals_path(root, dataset))
    real_images = {s: originals[s]["original"] for s in ids if s in originals}
    real = None
    scores, remembered, changed = {}, [], False
    for method, rows in records.items():
        slot = f"{dataset}/{mask}/{method}"
        key = f"{scorer.sha256[:16]}-{records_digest(rows[rows['sample_id'].isin(ids)])}"
        outputs = load_examples(outputs_path(root, dataset, mask, method)) if real_images else {}
        have = [s for s in ids if s in outputs and s in real_images]
        if len(have) >= 2:
            if real is None:
                shape = next(iter(real_images.values())).shape
                real = scorer.cached_features(real_images, Path(root) / "outputs" / ".features" /
                                              f"real_{safe_name(dataset)}_{shape[-2]}x{shape[-1]}.npz")
            fake = scorer.cached_features({s: outputs[s]["output"] for s in have}, Path(root) / "outputs" /
                                          ".features" / safe_name(dataset) / safe_name(mask) / f"{safe_name(method)}.npz")
            scores[method] = scorer.score_by_id({s: real[s] for s in have}, fake)
            if len(have) == len(ids):  # a score of part of the table's images is not the table's
                entry = json.loads(json.dumps({"key": key, "score": dataclasses.asdict(scores[method])}, default=float))
                changed |= memory.get(slot) != entry
                memory[slot] = entry
        elif memory.get(slot, {}).get("key") == key:
            scores[method] = _set_score(memory[slot]["score"])
            remembered.append(method)
    if changed:
        atomic_write_text(memory_path, json.dumps(dict(sorted(memory.items())), indent=1) + "\n")
    return scores, remembered


def _set_score(data: dict) -> SetScore:
    ids = data.get("ids")
    return SetScore(**{**data, "ids": IDSScore(**ids) if ids else None})
