"""A local worker whose run was killed takes no more units, even with units still queued for it."""

from __future__ import annotations

import os
import queue

from inpaintbench.harness.executors import _serve_units


class _NoRunner:
    """A worker spec whose runner must never be built: building it means a unit was started."""

    def build_runner(self):
        raise AssertionError("an orphaned worker started a queued unit")


def test_an_orphaned_worker_leaves_queued_units_alone():
    inbox, outbox = queue.Queue(), queue.Queue()
    for _ in range(3):  # the killed run had handed out three units
        inbox.put(("unit", False, 0))
    dead_parent = os.getppid() + 1_000_000  # not our parent: the run that started us is gone
    _serve_units(_NoRunner(), 0, inbox, outbox, dead_parent, [])
    assert inbox.qsize() >= 2 and outbox.empty()
