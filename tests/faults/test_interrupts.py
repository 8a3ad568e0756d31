"""Fault battery (issue 14), runs cut short: Ctrl-C is one line, exit 130 and resumable
(item 13); a call timeout changes no number (item 15). The stalled-call cases that only count
records are rows of ``cases.toml``."""

from __future__ import annotations


def test_13_ctrl_c_is_one_line_exit_130_and_resumable(ctx):
    ctx.use_test_methods()
    code, out, err = ctx.run(methods="zero-fill,interrupter", n=4)
    assert code == 130 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("interrupted; 6 records kept") and "rerun" in lines[-1], err
    assert len(ctx.samples("ok")) == 6  # zero-fill's 4 and the interrupted unit's finished batch
    code, out, err = ctx.run(methods="zero-fill,interrupter", n=4)
    assert code == 0 and "skipped 6" in out and len(ctx.samples("ok")) == 8, err


def test_15_a_timeout_changes_no_number(ctx):
    assert ctx.run(methods="telea", out=ctx.tmp / "plain")[0] == 0
    code, _, err = ctx.run("--call-timeout", 60, methods="telea", out=ctx.tmp / "timed")
    assert code == 0, err
    plain = {r["sample_id"]: r["metrics"] for r in ctx.samples("ok", ctx.tmp / "plain" / "results.jsonl")}
    timed = {r["sample_id"]: r["metrics"] for r in ctx.samples("ok", ctx.tmp / "timed" / "results.jsonl")}
    assert plain == timed and len(plain) == 2
