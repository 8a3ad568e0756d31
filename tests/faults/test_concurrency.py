"""Fault battery (issue 14), concurrent writers (item 8): a unit another process holds is waited
for and run once; runs started together share the work and never duplicate a record."""

from __future__ import annotations

import fcntl
import threading
import time

from inpaintbench.core.errors import InpaintBenchError


def test_08_a_unit_held_by_another_process_is_waited_for_and_run_once(ctx):
    from inpaintbench.harness.runner import plan_suite
    from inpaintbench.harness.suite import load_suite

    suite = load_suite("default").with_overrides(datasets=["mnist-sample"], methods=["zero-fill"], masks=["box"],
                                                 n_images=2, batch_size=2,
                                                 device="cpu")
    (unit,) = plan_suite(suite, ctx.out).units
    (ctx.out / "units").mkdir(parents=True)
    handle = open(ctx.out / "units" / f"{unit.name}.lock", "a+")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    threading.Timer(1.0, handle.close).start()  # the other process lets go after a second
    start = time.monotonic()
    code, out, err = ctx.run()
    assert code == 0 and time.monotonic() - start >= 0.9, err  # it waited for the claim
    assert len(ctx.samples("ok")) == 2 and "wrote 2 records" in out


def test_08_concurrent_runs_never_duplicate_records(ctx):
    from inpaintbench.harness.runner import run_suite
    from inpaintbench.harness.suite import load_suite

    the_suite = load_suite("default").with_overrides(datasets=["mnist-sample"], methods=["zero-fill", "telea"],
                                                    masks=["box", "wide"],
                                                    n_images=4, batch_size=1, shard_size=2, device="cpu")
    outcomes = []

    def one():
        try:
            outcomes.append(run_suite(the_suite, ctx.out, progress=False).written)
        except InpaintBenchError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(o, int) for o in outcomes) and sum(outcomes) == 16, outcomes  # each sample once
    ok = ctx.samples("ok")
    assert len(ok) == 16 and len({(r["method"], r["mask"], r["sample_id"]) for r in ok}) == 16
