"""Content-addressed data (issue 21 item 3): a sample's records stand for the bytes it was read
from; a changed file recomputes that sample alone, a touched one nothing, and a rerun reads no
file it has hashed before."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintbench.harness import data_identity
from inpaintbench.harness.data_identity import ContentCache, is_current, sample_digests
from inpaintbench.harness.runner import plan_suite, run_suite
from inpaintbench.harness.suite import Suite
from inpaintbench.store.folder import raw_records

N = 4


@pytest.fixture
def hashed(tmp_path, monkeypatch) -> list[Path]:
    """A private hash cache, and the files hashed (each read of a file for its identity)."""
    monkeypatch.setenv(data_identity.CACHE_ENV, str(tmp_path / "cache"))
    calls: list[Path] = []
    real = data_identity._hash_file

    def counting(path):
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(data_identity, "_hash_file", counting)
    return calls


def _images(folder: Path, n: int = N) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8), "L").save(folder / f"{i}.png")
    return folder


def _suite(root: Path, masks=("box",)) -> Suite:
    return Suite.from_dict("content", {
        "datasets": [{"name": "folder", "root": str(root), "size": None, "channels": 1}],
        "masks": list(masks), "methods": ["zero-fill", "mean-fill"],
        "run": {"seed": 0, "n_images": N, "batch_size": 2, "device": "cpu", "n_examples": 0, "shard_size": 1,
                "lpips_net": "alex"},
    })


def _ok(out: Path) -> dict[tuple, dict]:
    return {(r["method"], r["sample_id"]): r for r in raw_records([out])
            if r["kind"] == "sample" and r["status"] == "ok"}


def _unit_files(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "units").glob("*.jsonl")}


def test_changing_one_image_recomputes_exactly_that_sample(tmp_path, hashed):
    root = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    first = run_suite(_suite(root), out, progress=False)
    assert (first.written, first.skipped) == (2 * N, 0)
    before, units = _ok(out), _unit_files(out)
    assert all(r["data_sha256"] for r in before.values())

    Image.fromarray(np.full((28, 28), 200, np.uint8), "L").save(root / "2.png")  # new pixels
    second = run_suite(_suite(root), out, progress=False)
    assert (second.written, second.skipped) == (2, 2 * (N - 1))
    after = _ok(out)
    assert len(after) == 2 * N  # replaced in place, never duplicated
    changed = {key for key in after if after[key]["metrics"] != before[key]["metrics"]}
    assert changed and {sid for _, sid in changed} == {"2"}
    rewritten = {name for name, mtime in _unit_files(out).items() if units[name] != mtime}
    assert len(rewritten) == 2 and all("--0002-" in name for name in rewritten)
    assert all(after[k]["data_sha256"] != before[k]["data_sha256"] for k in after if k[1] == "2")


def test_touching_a_file_recomputes_nothing_and_unchanged_files_are_not_reread(tmp_path, hashed):
    root = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    run_suite(_suite(root), out, progress=False)
    assert len(hashed) == N  # each file once, although two methods and one condition use it
    hashed.clear()
    again = run_suite(_suite(root), out, progress=False)
    assert (again.written, hashed) == (0, [])  # the cache file answered, nothing read

    stat = (root / "1.png").stat()
    os.utime(root / "1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = run_suite(_suite(root), out, progress=False)
    assert (touched.written, touched.skipped) == (0, 2 * N)
    assert [p.name for p in hashed] == ["1.png"]  # re-hashed once, same digest


def test_the_cache_file_is_shared_and_survives_a_malformed_copy(tmp_path, hashed):
    root = _images(tmp_path / "imgs", n=2)
    cache = ContentCache(tmp_path / "c" / "h.json")
    digests = sample_digests(_dataset(root), 2, cache)
    cache.save()
    assert len(hashed) == 2 and len(set(digests)) == 2
    assert sample_digests(_dataset(root), 2, ContentCache(tmp_path / "c" / "h.json")) == digests
    assert len(hashed) == 2
    (tmp_path / "c" / "h.json").write_text("{not json")
    assert sample_digests(_dataset(root), 2, ContentCache(tmp_path / "c" / "h.json")) == digests


def _dataset(root: Path):
    from inpaintbench.core.registry import dataset_registry

    return dataset_registry().create("folder", root=str(root), size=None, channels=1)


def test_embedded_data_is_hashed_as_read(hashed):
    from inpaintbench.core.registry import dataset_registry

    sample = dataset_registry().create("mnist-sample", limit=8)
    digests = sample_digests(sample, 8, ContentCache())
    assert len(set(digests)) == 8 and hashed == []  # rows of the package's tensor, no file read
    sample.images[3, 0, 5, 5] = 1.0 - sample.images[3, 0, 5, 5]
    changed = sample_digests(sample, 8, ContentCache())
    assert [i for i in range(8) if changed[i] != digests[i]] == [3]


def test_mask_files_of_a_condition_count(tmp_path, hashed):
    root = _images(tmp_path / "imgs")
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(N):
        array = np.zeros((28, 28), np.uint8)
        array[: 8 + i] = 255
        Image.fromarray(array, "L").save(masks / f"{i}.png")
    suite = _suite(root, masks=[{"name": "files", "folder": str(masks), "match": "sample", "polarity": "white-hole"}])
    out = tmp_path / "out"
    run_suite(suite, out, progress=False)
    array = np.zeros((28, 28), np.uint8)
    array[:20] = 255
    Image.fromarray(array, "L").save(masks / "0.png")
    plan = plan_suite(suite, out)
    assert [u.sample_ids for u in plan.pending()] == [("0",), ("0",)]


def test_legacy_records_without_digests_resume(tmp_path, hashed):
    root = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    run_suite(_suite(root), out, progress=False)
    for path in (out / "units").glob("*.jsonl"):  # as written before digests existed
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for line in lines:
            line.pop("data_sha256", None)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert plan_suite(_suite(root), out).pending() == []


def test_is_current():
    key = ("k",)
    assert not is_current({}, key, "a")
    assert is_current({key: {None}}, key, "a")  # legacy: trusted
    assert is_current({key: {"a"}}, key, "a")
    assert not is_current({key: {"b"}}, key, "a")
    assert not is_current({key: {None, "b"}}, key, "a")  # a digest says the data changed since
