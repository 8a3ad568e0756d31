"""Results as frames: the records of results folders and files, merged (one reader for every
report, the gate and sweeps), and where a run's wall time went."""

from __future__ import annotations

import os
from typing import Iterable

import pandas as pd

from inpaintbench.core.errors import InputError
from inpaintbench.core.notices import warn
from inpaintbench.store.records import DatasetRecord, RunRecord, SampleRecord, UnavailableRecord, UnitRecord
from inpaintbench.store.folder import read_records


#: What :func:`load_records` returns: the sample frame, the run records, the unavailable records.
LoadedRecords = tuple[pd.DataFrame, list[RunRecord], list[UnavailableRecord]]


def load_records(paths: Iterable[str | os.PathLike]) -> LoadedRecords:
    """Read results folders (unit files, run files, a ``results.jsonl``) and files.

    Returns:
        one row per sample record (merged as :func:`~inpaintbench.store.folder.read_records`
        says: a retried error is superseded, conflicting duplicates are refused), metrics
        flattened into columns and scalar method / mask settings into ``config.<key>`` /
        ``mask_config.<key>`` columns (:meth:`SampleRecord.flat`); the run records (by start
        time); the unavailable records. The frame's ``attrs``: ``lpips_notes`` (dataset ->
        how LPIPS treated its size) and ``units`` (the unit records).
    Raises:
        InputError: a missing path, or conflicting duplicates.
    """
    samples, runs, unavailable, units, notes = [], [], [], [], {}
    for record in read_records(paths):
        if isinstance(record, SampleRecord):
            samples.append(record.flat())
        elif isinstance(record, RunRecord):
            runs.append(record)
        elif isinstance(record, UnavailableRecord):
            unavailable.append(record)
        elif isinstance(record, UnitRecord):
            units.append(record)
        elif isinstance(record, DatasetRecord) and record.lpips_note:
            notes[record.dataset] = record.lpips_note
    runs.sort(key=lambda r: r.started)  # stable: runs of one second keep the folder's order
    frame = _latest_configurations(pd.DataFrame(samples), runs)
    _check_one_setting_per_table(frame)
    frame.attrs["lpips_notes"] = notes
    frame.attrs["units"] = _Shared(units)
    return frame, runs, unavailable


class _Shared(list):
    """A list that ``copy.deepcopy`` returns as it is: pandas deep-copies a frame's ``attrs`` into
    every frame derived from it (each filter, column, groupby), and copying thousands of unit
    records each time was most of a report's run time. Nothing mutates them."""

    def __deepcopy__(self, memo: dict) -> "_Shared":
        return self


#: What must be one value within a table (its records are compared sample by sample).
TABLE_SETTINGS = (("seed", "seeds"), ("dataset_hash", "dataset settings"), ("mask_hash", "mask settings"))


def _check_one_setting_per_table(frame: pd.DataFrame) -> None:
    """Refuse records of different seeds (or dataset / mask settings under one label) in one
    table: pooled, they would count each image once per seed and narrow every interval.

    Raises:
        InputError: one line naming the table and both values.
    """
    if frame.empty:
        return
    for (task, dataset, mask), group in frame.groupby(["task", "dataset", "mask"], sort=False):
        for column, what in TABLE_SETTINGS:
            if column not in group:
                continue
            values = sorted(map(str, group[column].dropna().unique()))
            if len(values) > 1:
                raise InputError(f"the records of {task}: {dataset} · {mask} come from {len(values)} {what} "
                                 f"({values[0]} and {values[1]}); a table is one seed and one setting, never "
                                 "pooled: report each results folder on its own, or rerun into a fresh --out")


def _latest_configurations(frame: pd.DataFrame, runs: list[RunRecord]) -> pd.DataFrame:
    """Keep, per (task, method label, dataset, mask), the records of the configuration its
    latest run used.

    A folder resumed after a method changed (new defaults, retrained weights) holds records of
    the old configuration under the same label; averaging them with the new ones would report
    a method that never existed. The older ones are dropped with one warning per label. One
    label may run other configurations on other datasets (the MNIST and the CelebA weights of
    one method): those are different tables, kept.
    """
    if frame.empty or "config_hash" not in frame:
        return frame

    order = {run.run_id: i for i, run in enumerate(runs)}
    frame = frame.assign(_run=frame["run_id"].map(order).fillna(-1))
    keep, stale_by_label = [], {}
    for (_, label, _, _), group in frame.groupby(["task", "method", "dataset", "mask"], sort=False):
        latest = group.loc[group["_run"].idxmax(), "config_hash"]
        stale = group["config_hash"] != latest
        if stale.any():
            count, hashes, kept = stale_by_label.get(label, (0, set(), set()))
            stale_by_label[label] = (count + int(stale.sum()), hashes | set(group.loc[stale, "config_hash"]),
                                     kept | {latest})
        keep.append(group[~stale])
    for label, (count, hashes, kept) in stale_by_label.items():
        warn(f"results hold {count} records of {label!r} with an older configuration ({', '.join(sorted(hashes))}); "
             f"reported: its latest, {', '.join(sorted(kept))}")
    return pd.concat(keep).drop(columns="_run").sort_index()


def harness_share(units: list[UnitRecord]) -> pd.DataFrame:
    """Where the wall time of each method's units went, from their unit records.

    Returns:
        one row per method: ``units``, ``wall_s`` (sum over its units), ``method_s`` (timed
        calls), ``warmup_s`` (warm-up calls: the method's cost, paid once per process and
        shape), ``harness_s`` = wall - calls - warm-up (reading images, masks, metrics, records,
        examples, heat maps) and ``harness_share`` = harness_s / wall_s (0..1). Units written
        as failures (no timing) are left out.
    """
    rows = {}
    for unit in units:
        if unit.wall_s <= 0:
            continue
        row = rows.setdefault(unit.method, {"method": unit.method, "units": 0, "wall_s": 0.0, "method_s": 0.0,
                                            "warmup_s": 0.0})
        row["units"] += 1
        row["wall_s"] += unit.wall_s
        row["method_s"] += unit.method_s
        row["warmup_s"] += unit.warmup_s
    frame = pd.DataFrame(list(rows.values()), columns=["method", "units", "wall_s", "method_s", "warmup_s"])
    frame["harness_s"] = (frame["wall_s"] - frame["method_s"] - frame["warmup_s"]).clip(lower=0.0)
    frame["harness_share"] = frame["harness_s"] / frame["wall_s"]
    return frame
