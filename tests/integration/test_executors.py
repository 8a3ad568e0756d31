"""Work units and executors: idempotent units, one clean result set whoever runs them.

In process, local worker processes (``--workers``) and a real local Ray cluster must give the
same records; a worker killed mid-unit is retried with nothing lost or duplicated; two runs
on one folder at once share the work. Ray's local cluster binds the machine's external
interface even when told 127.0.0.1, so its tests run in a network namespace with only
loopback (``unshare -n`` as root) and skip with the reason elsewhere.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from inpaintbench.core.errors import InputError
from inpaintbench.cli import main
from inpaintbench.store.results import load_records
from inpaintbench.harness.runner import plan_suite, run_suite
from inpaintbench.store.folder import read_records
from inpaintbench.harness.suite import Suite

SUITE_TOML = """
datasets = ["mnist-sample"]
masks = ["box", "wide"]
methods = [{methods}]
[run]
n_images = 6
batch_size = 2
shard_size = 3
device = "cpu"
n_examples = 2
"""
#: Deterministic classical methods: every executor must give bit-identical metrics.
CLASSICAL = '"zero-fill", "telea", "biharmonic"'


def _suite(tmp_path: Path, methods: str = CLASSICAL, name: str = "units") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SUITE_TOML.format(methods=methods))
    return path


def _load(path: Path) -> Suite:
    from inpaintbench.harness.suite import load_suite

    return load_suite(str(path))


def _sample_lines(out: Path) -> list[dict]:
    """Every sample line of every unit file, raw (duplicates would show here)."""
    lines = []
    for unit_file in sorted((out / "units").glob("*.jsonl")):
        lines += [r for r in map(json.loads, unit_file.read_text().splitlines()) if r["kind"] == "sample"]
    return lines


def _metrics_by_key(out: Path) -> dict[tuple, dict]:
    return {(r["method"], r["mask"], r["sample_id"]): r["metrics"] for r in _sample_lines(out)}


def test_a_run_writes_one_whole_file_per_unit_and_a_rerun_does_nothing(tmp_path):
    suite = _load(_suite(tmp_path))
    plan = plan_suite(suite, tmp_path / "out")
    assert len(plan.units) == 3 * 2 * 2  # methods x masks x shards of 3
    assert len({u.hash for u in plan.units}) == len(plan.units)
    first = run_suite(suite, tmp_path / "out", progress=False)
    assert first.written == 36 and first.errors == 0
    files = sorted((tmp_path / "out" / "units").glob("*.jsonl"))
    assert [f.stem for f in files] == sorted(u.name for u in plan.units)
    assert not list((tmp_path / "out").rglob("*.tmp"))  # renamed into place, nothing half-written
    lines = _sample_lines(tmp_path / "out")
    assert len(lines) == 36 and len({(r["method"], r["mask"], r["sample_id"]) for r in lines}) == 36
    again = run_suite(suite, tmp_path / "out", progress=False)
    assert (again.written, again.skipped) == (0, 36)
    assert sorted((tmp_path / "out" / "units").glob("*.jsonl")) == files


def test_the_unit_hash_follows_what_decides_records(tmp_path):
    suite = _load(_suite(tmp_path))
    hashes = {u.name: u.hash for u in plan_suite(suite, tmp_path / "o").units}
    from dataclasses import replace

    other_seed = {u.hash for u in plan_suite(replace(suite, seed=1), tmp_path / "o").units}
    assert not other_seed & set(hashes.values())
    same = {u.name: u.hash for u in plan_suite(suite, tmp_path / "o").units}
    assert same == hashes


def test_a_new_shard_size_reuses_every_finished_sample(tmp_path):
    from dataclasses import replace

    suite = _load(_suite(tmp_path))
    run_suite(suite, tmp_path / "out", progress=False)
    resharded = run_suite(replace(suite, shard_size=4), tmp_path / "out", progress=False)
    assert resharded.written == 0 and resharded.skipped == 36


def test_plan_prints_units_and_what_is_done(tmp_path, capsys):
    path = _suite(tmp_path, '"zero-fill"')
    out = tmp_path / "out"
    assert main(["plan", "--suite", str(path), "--out", str(out), "--units"]) == 0
    printed = capsys.readouterr().out
    assert "4 units, 4 with work left (12 samples)" in printed and printed.count("pending") == 4
    assert main(["run", "--suite", str(path), "--out", str(out), "--no-report", "-q", "--n-images", "3"]) == 0
    capsys.readouterr()
    assert main(["plan", "--suite", str(path), "--out", str(out), "--units"]) == 0
    printed = capsys.readouterr().out
    assert "2 with work left (6 samples)" in printed and printed.count("  done\n") == 2
    assert not (out / "units").exists() or len(list((out / "units").glob("*.jsonl"))) == 2


def test_the_reader_merges_the_single_file_results_and_refuses_conflicts(tmp_path):
    suite = _load(_suite(tmp_path, '"zero-fill"'))
    out = tmp_path / "out"
    run_suite(suite, out, progress=False)
    unit_file = sorted((out / "units").glob("*.jsonl"))[0]
    lines = unit_file.read_text().splitlines()
    # The same samples in a single-file results.jsonl (as earlier versions wrote): one result.
    (out / "results.jsonl").write_text("\n".join(lines[1:]) + "\n")
    frame, _, _ = load_records([out])
    assert len(frame) == 12 and not frame.duplicated(["method", "mask", "sample_id"]).any()
    # A copy whose PSNR differs: two answers for one key, refused with both files named.
    changed = json.loads(lines[1])
    changed["metrics"]["psnr"] += 1.0
    (out / "results.jsonl").write_text(json.dumps(changed) + "\n")
    with pytest.raises(InputError, match=r"conflicting results for zero-fill .*results\.jsonl has psnr = .*units/zero-fill"):
        read_records([out])
    assert main(["report", "--results", str(out), "--report-dir", str(tmp_path / "rep")]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("workers", [None, 2])
def test_a_folder_from_the_single_file_runner_resumes(tmp_path, workers, deadline):
    deadline(300)
    suite = _load(_suite(tmp_path, '"zero-fill"'))
    out = tmp_path / "out"
    run_suite(suite, out, progress=False)
    legacy = [line for f in sorted((out / "units").glob("*.jsonl")) for line in f.read_text().splitlines()[1:]]
    shutil.rmtree(out / "units")
    (out / "results.jsonl").write_text("\n".join(legacy[:5]) + "\n")
    summary = run_suite(suite, out, progress=False, executor="local" if workers else "inprocess", workers=workers)
    assert (summary.written, summary.skipped) == (7, 5)
    assert len(_sample_lines(out)) == 7  # the 5 samples of the old file are not written again
    frame, _, _ = load_records([out])
    assert len(frame) == 12


@pytest.mark.slow
def test_local_workers_give_the_records_of_the_in_process_run(tmp_path, deadline):
    deadline(300)
    suite = _load(_suite(tmp_path))
    run_suite(suite, tmp_path / "here", progress=False)
    summary = run_suite(suite, tmp_path / "workers", progress=False, executor="local", workers=2)
    assert summary.written == 36 and summary.errors == 0
    assert _metrics_by_key(tmp_path / "workers") == _metrics_by_key(tmp_path / "here")
    headers = [json.loads(f.read_text().splitlines()[0]) for f in (tmp_path / "workers" / "units").glob("*.jsonl")]
    assert {h["executor"] for h in headers} == {"local"} and len({h["pid"] for h in headers}) == 2
    assert all(h["torch_threads"] == 1 for h in headers)


def _kill_a_unit_holder(folder: Path, stop: threading.Event, killed: list[int], protect: int) -> None:
    """Kill the first process seen holding a unit's claim (mid-unit), once."""
    while not stop.is_set() and not killed:
        for pid in sorted(_held_unit_pids(folder) - {protect}):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.01)


def _held_unit_pids(folder: Path) -> set[int]:
    """Pids holding a unit claim in ``folder`` right now (the lock file names its holder)."""
    pids = set()
    for lock in (folder / "units").glob("*.lock") if (folder / "units").is_dir() else []:
        try:
            handle = open(lock)
        except OSError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
            except BlockingIOError:
                words = handle.read().split()
                if len(words) > 1 and words[0] == "pid":
                    pids.add(int(words[1]))
    return pids


@pytest.fixture
def deadline():
    """Fail a test that runs past ``seconds`` instead of hanging the whole run (SIGALRM in the
    main thread, where these tests run the executors)."""
    def expire(signum, frame):
        raise TimeoutError("the test ran past its deadline")

    previous = signal.signal(signal.SIGALRM, expire)
    yield lambda seconds: signal.alarm(seconds)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _assert_one_clean_result_set(out: Path, expected: int) -> None:
    lines = _sample_lines(out)
    keys = collections.Counter((r["method"], r["mask"], r["sample_id"]) for r in lines)
    assert len(keys) == expected and set(keys.values()) == {1}, "a record was lost or duplicated"
    assert {r["status"] for r in lines} == {"ok"}


@pytest.mark.slow
def test_a_local_worker_killed_mid_unit_is_replaced_and_its_unit_retried(tmp_path, deadline):
    deadline(420)
    # repaint's units take seconds, so the watcher catches one in the middle.
    suite = _load(_suite(tmp_path, '"repaint"'))
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_a_unit_holder, args=(tmp_path / "out", stop, killed, os.getpid()))
    watcher.start()
    try:
        summary = run_suite(suite, tmp_path / "out", progress=False, executor="local", workers=2)
    finally:
        stop.set()
        watcher.join()
    assert killed, "no worker was seen mid-unit"
    assert summary.errors == 0
    _assert_one_clean_result_set(tmp_path / "out", 12)
    headers = [json.loads(f.read_text().splitlines()[0]) for f in (tmp_path / "out" / "units").glob("*.jsonl")]
    assert max(h["attempt"] for h in headers) == 2 and killed[0] not in {h["pid"] for h in headers}
    reference = tmp_path / "reference"
    run_suite(suite, reference, progress=False)
    here, there = _metrics_by_key(reference), _metrics_by_key(tmp_path / "out")
    assert here.keys() == there.keys()
    for key in here:  # batched networks: equal to float rounding (see test_result_identity)
        assert there[key]["psnr"] == pytest.approx(here[key]["psnr"], rel=1e-4)


@pytest.mark.slow
def test_two_runs_on_one_folder_at_once_share_it(tmp_path):
    path = _suite(tmp_path, '"repaint", "telea"')
    out = tmp_path / "out"
    command = [sys.executable, "-m", "inpaintbench.cli", "run", "--suite", str(path), "--out", str(out),
               "--no-report", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    _assert_one_clean_result_set(out, 24)
    written = [int(o.split("wrote ")[1].split()[0]) for o in outputs]
    assert sum(written) == 24, outputs  # every sample computed once, by one of the two
    assert len(list((out / "runs").glob("*.jsonl"))) == 2


# ----------------------------------------------------------------------------- Ray

def _netns_available() -> str | None:
    """None when a loopback-only network namespace can be made here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace here (needs root): {probe.stderr.strip()[:120]}"
    return None


def _ray_skip_reason() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'inpaintbench[ray]')"
    return _netns_available()


RAY_SCRIPT = textwrap.dedent("""
    import json, os, sys, threading
    sys.path.insert(0, {tests!r})
    import ray
    from test_executors import _kill_a_unit_holder, _load
    from inpaintbench.harness.runner import run_suite

    suite_path, out, kill = sys.argv[1], sys.argv[2], sys.argv[3] == "kill"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_a_unit_holder, args=(__import__("pathlib").Path(out), stop, killed,
                                                                 os.getpid()))
    if kill:
        watcher.start()
    try:
        summary = run_suite(_load(suite_path), out, progress=False, executor="ray", workers=2)
    finally:
        stop.set()
        if kill:
            watcher.join()
        ray.shutdown()
    print(json.dumps({{"written": summary.written, "errors": summary.errors, "killed": killed}}))
""")


def _run_with_ray(tmp_path: Path, suite_path: Path, out: Path, kill: bool) -> dict:
    script = tmp_path / "ray_run.py"
    script.write_text(RAY_SCRIPT.format(tests=str(Path(__file__).parent)))
    command = f"ip link set lo up && exec {sys.executable} {script} {suite_path} {out} {'kill' if kill else 'no'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(["unshare", "-n", "sh", "-c", command], capture_output=True, text=True, timeout=420,
                          env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(_ray_skip_reason() is not None, reason=str(_ray_skip_reason()))
def test_ray_gives_the_records_of_the_in_process_run(tmp_path):
    path = _suite(tmp_path)
    run_suite(_load(path), tmp_path / "here", progress=False)
    result = _run_with_ray(tmp_path, path, tmp_path / "ray", kill=False)
    assert result["written"] == 36 and result["errors"] == 0
    assert _metrics_by_key(tmp_path / "ray") == _metrics_by_key(tmp_path / "here")
    headers = [json.loads(f.read_text().splitlines()[0]) for f in (tmp_path / "ray" / "units").glob("*.jsonl")]
    assert {h["executor"] for h in headers} == {"ray"}


@pytest.mark.slow
@pytest.mark.skipif(_ray_skip_reason() is not None, reason=str(_ray_skip_reason()))
def test_a_ray_actor_killed_mid_unit_is_replaced_and_its_unit_retried(tmp_path):
    path = _suite(tmp_path, '"repaint"')
    result = _run_with_ray(tmp_path, path, tmp_path / "ray", kill=True)
    assert result["killed"], "no actor was seen mid-unit"
    assert result["errors"] == 0
    _assert_one_clean_result_set(tmp_path / "ray", 12)
    headers = [json.loads(f.read_text().splitlines()[0]) for f in (tmp_path / "ray" / "units").glob("*.jsonl")]
    assert max(h["attempt"] for h in headers) == 2


def test_bad_executor_options_are_one_line(tmp_path, capsys):
    path = _suite(tmp_path, '"zero-fill"')
    for argv, expected in ((["--workers", "0"], "--workers must be an integer >= 1"),
                           (["--ray-address", "auto"], "--ray-address needs --executor ray"),
                           (["--executor", "inprocess", "--workers", "2"], "--workers needs --executor local or ray"),
                           (["--shard-size", "0"], "shard_size (--shard-size) must be >= 1")):
        assert main(["run", "--suite", str(path), "--out", str(tmp_path / "o"), "--no-report", *argv]) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_changed_configuration_is_reported_by_its_latest_records_only(tmp_path):
    path = tmp_path / "heat.toml"
    path.write_text(SUITE_TOML.format(methods='{ name = "pde-heat", solver = "iterative", iterations = 3 }'))
    out = tmp_path / "out"
    run_suite(_load(path), out, progress=False)
    old, _, _ = load_records([out])
    path.write_text(SUITE_TOML.format(methods='"pde-heat"'))  # same label, the exact solver now
    run_suite(_load(path), out, progress=False)
    with pytest.warns(Warning, match="12 records of 'pde-heat' with an older configuration"):
        frame, _, _ = load_records([out])
    assert len(frame) == 12 and frame["config_hash"].nunique() == 1
    assert frame["config_hash"].iloc[0] != old["config_hash"].iloc[0]
    # The grids and heat maps follow: they are the latest configuration's, as in a fresh run.
    from inpaintbench.store.artifacts import example_path, heatmap_path, load_examples, load_heatmap

    run_suite(_load(path), tmp_path / "fresh", progress=False)
    for root in (out, tmp_path / "fresh"):
        assert load_examples(example_path(root, "mnist-sample", "box", "pde-heat")).keys() == {
            "mnist-test-0", "mnist-test-1"}
    here = load_examples(example_path(out, "mnist-sample", "box", "pde-heat"))
    fresh = load_examples(example_path(tmp_path / "fresh", "mnist-sample", "box", "pde-heat"))
    assert all((here[i]["output"] == fresh[i]["output"]).all() for i in fresh)
    heat_here = load_heatmap(heatmap_path(out, "mnist-sample", "wide", "pde-heat"))
    heat_fresh = load_heatmap(heatmap_path(tmp_path / "fresh", "mnist-sample", "wide", "pde-heat"))
    assert heat_here[2] == heat_fresh[2] == 6 and (heat_here[0] == heat_fresh[0]).all()


def test_unit_records_say_where_the_wall_time_went(tmp_path):
    from inpaintbench.report.leaderboard import write_leaderboard
    from inpaintbench.store.results import harness_share

    suite = _load(_suite(tmp_path, '"zero-fill", { name = "repaint", num_steps = 6 }'))
    run_suite(suite, tmp_path / "out", progress=False)
    frame, _, _ = load_records([tmp_path / "out"])
    units = frame.attrs["units"]
    assert len(units) == 8 and all(u.wall_s >= u.method_s + u.warmup_s > 0 for u in units)
    assert sum(u.warmup_s > 0 for u in units if u.method == "repaint") == 1  # once per method and shape
    shares = harness_share(units).set_index("method")
    assert ((shares["harness_share"] >= 0) & (shares["harness_share"] <= 1)).all()
    assert shares.loc["repaint", "method_s"] > shares.loc["zero-fill", "method_s"]
    board = write_leaderboard([tmp_path / "out"], tmp_path / "rep", html=False).read_text()
    assert "## Where the wall time went" in board and "| repaint" in board.split("## Where the wall time went")[1]


def test_a_memory_budget_sizes_batches_from_the_first_one_image_call(tmp_path, monkeypatch):
    """On CUDA the first call of a method on a shape takes one image and its peak memory sizes
    the batches after it; here the CUDA allocator's numbers are stood in for (peak = 1000 bytes
    per image), the rest of the path is the real one."""
    from inpaintbench.harness import sealed, unit_runner
    from inpaintbench.harness.timing import Timed, timed_call

    def fake_peak(fn, device):
        timed = timed_call(fn, device)
        return Timed(timed.value, timed.seconds, 1000 * timed.value.image.shape[0])

    monkeypatch.setattr(sealed, "timed_call", fake_peak)  # the one call path (in process, unsealed)
    monkeypatch.setattr(unit_runner.UnitRunner, "_budget_bytes", lambda self, device: 5000)
    suite = _load(_suite(tmp_path, '"zero-fill"'))
    from dataclasses import replace

    suite = replace(suite, batch_size=16, shard_size=32, n_images=10, memory_budget_gb=1.0)
    run_suite(suite, tmp_path / "out", progress=False)
    sizes = [r["batch_size"] for r in _sample_lines(tmp_path / "out") if r["mask"] == "box"]
    assert sizes == [1] + [4] * 8 + [1]  # floor(0.8 * 5000 / 1000) = 4 after the first call


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split()[2] != "Z"


@pytest.mark.slow
def test_a_killed_run_leaves_no_worker_behind_and_its_rerun_completes_cleanly(tmp_path):
    path = _suite(tmp_path, '"repaint", "telea"')
    out = tmp_path / "out"
    command = [sys.executable, "-m", "inpaintbench.cli", "run", "--suite", str(path), "--out", str(out),
               "--no-report", "-q", "--workers", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    give_up = time.monotonic() + 240
    while not (workers := _held_unit_pids(out) - {driver.pid}) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert workers, "no worker was seen mid-unit"
    driver.kill()
    driver.wait(timeout=30)
    deadline_at = time.monotonic() + 60  # a worker finishes its unit, then sees its parent gone
    while any(_alive(p) for p in workers) and time.monotonic() < deadline_at:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "a worker outlived its killed run"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _assert_one_clean_result_set(out, 24)


def test_a_worker_keeps_its_model_across_units_of_one_method(tmp_path):
    """What a local worker or Ray actor does: it builds a method once for all the consecutive
    units of that method, and holds one model at a time."""
    from inpaintbench.core.registry import method_registry
    from inpaintbench.harness.unit_runner import UnitRunner

    suite = _load(_suite(tmp_path, '"zero-fill", "telea"'))
    plan = plan_suite(suite, tmp_path / "out")
    built = []

    def build(label):
        built.append(label)
        return method_registry().create(label)

    runner = UnitRunner(suite, tmp_path / "out", plan.device, "run", "local", build,
                        {c.label: c for c in plan.conditions}, plan.identities)
    by_method = {m: [u for u in plan.units if u.method == m] for m in ("zero-fill", "telea")}
    for unit in [*by_method["zero-fill"], *by_method["telea"], by_method["zero-fill"][0]]:
        runner.run(unit)
    assert built == ["zero-fill", "telea"]  # the last unit was already done: nothing to build for it
    assert set(runner.methods) == {"telea"}
    units = [u for u in plan_suite(suite, tmp_path / "fresh").units if u.method == "zero-fill"]
    runner = UnitRunner(suite, tmp_path / "fresh", plan.device, "run", "local", build,
                        {c.label: c for c in plan.conditions}, plan.identities)
    built.clear()
    runner.run(units[0]), runner.run(by_method["telea"][0]), runner.run(units[1])
    assert built == ["zero-fill", "telea", "zero-fill"]  # one model held at a time


def test_an_out_naming_a_jsonl_file_is_one_line(tmp_path, capsys):
    path = _suite(tmp_path, '"zero-fill"')
    assert main(["run", "--suite", str(path), "--out", str(tmp_path / "o" / "results.jsonl"), "--no-report"]) == 2
    assert "--out is a results folder" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_ray_actors_that_the_cluster_cannot_place_are_counted():
    from inpaintbench.harness.ray_executor import _placeable_actors

    assert _placeable_actors({"CPU": 2.0}, num_cpus=1, num_gpus=0) == 2
    assert _placeable_actors({"CPU": 4.0}, num_cpus=2, num_gpus=0) == 2
    assert _placeable_actors({"CPU": 16.0, "GPU": 1.0}, num_cpus=1, num_gpus=1) == 1
    assert _placeable_actors({"CPU": 16.0}, num_cpus=1, num_gpus=1) == 0


def test_a_worker_refuses_an_item_that_is_not_the_planned_sample(tmp_path):
    """Another machine's copy of the data, or a folder changed since planning: the record
    would carry one sample's id and another's numbers."""
    from PIL import Image

    from inpaintbench.harness.executors import WorkerSpec

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(1, 5):
        Image.new("L", (16, 16), 40 * i).save(folder / f"img{i}.png")
    path = tmp_path / "folder.toml"
    path.write_text(f'datasets = [{{ name = "folder", root = "{folder}", size = 16, channels = 1 }}]\n'
                    'masks = ["box"]\nmethods = ["zero-fill"]\n[run]\nn_images = 4\ndevice = "cpu"\n')
    suite = _load(path)
    plan = plan_suite(suite, tmp_path / "out", executor="local")
    Image.new("L", (16, 16), 0).save(folder / "img0.png")  # sorts first: every index shifts
    spec = WorkerSpec(suite, tmp_path / "out", "cpu", "run", "local", plan.identities, None, False, 1)
    with pytest.raises(InputError, match="item 0 is 'img0' here but was 'img1' when the run was planned"):
        spec.build_runner().run(plan.units[0])
    assert not list((tmp_path / "out" / "units").glob("*.jsonl"))  # a pool stops the run with that line
