"""Fault battery, issue 21 item 3: data identity is the content, not the configuration.

Changing an image file's pixels and rerunning once said "wrote 0 records, skipped N" and kept
the old metrics; now exactly that sample is recomputed, and its new numbers replace the old.
"""

from __future__ import annotations

import numpy as np


def test_changed_pixels_are_recomputed_not_skipped(ctx):
    images = ctx.grey_images(ctx.tmp / "imgs", n=3)
    args = ("--datasets", "folder", "--data-root", images, "--size", "28", "--shard-size", "1")
    code, _, _ = ctx.run(*args, methods="mean-fill", n=3)
    assert code == 0
    before = {r["sample_id"]: r["metrics"] for r in ctx.samples("ok")}
    assert len(before) == 3

    ctx.save_png(images / "1.png", np.full((28, 28), 17, np.uint8))  # same name, new pixels
    code, _, err = ctx.run(*args, methods="mean-fill", n=3)
    assert code == 0, err
    after = {r["sample_id"]: r["metrics"] for r in ctx.samples("ok")}
    assert len(ctx.samples("ok")) == 3  # replaced, not duplicated
    assert [sid for sid in after if after[sid] != before[sid]] == ["1"]

    code, _, _ = ctx.run(*args, methods="mean-fill", n=3)  # unchanged since: nothing recomputed
    assert code == 0 and {r["sample_id"]: r["metrics"] for r in ctx.samples("ok")} == after
