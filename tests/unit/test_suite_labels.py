"""Labels name result files: two labels that would share a file are refused before anything runs,
and a plugin that raises SystemExit at import is listed unavailable instead of ending the host."""

from __future__ import annotations

import pytest

from inpaintbench.core.errors import InputError
from inpaintbench.core.registry import Entry, Registry
from inpaintbench.harness.suite import Suite


def _suite(methods):
    return Suite.from_dict("labels", {"datasets": ["mnist-sample"], "masks": ["box"], "methods": methods})


def test_labels_that_would_share_a_file_name_are_refused():
    with pytest.raises(InputError, match=r"'a b' and 'a_b' would share the file name 'a_b'"):
        _suite([{"name": "telea", "label": "a b"}, {"name": "zero-fill", "label": "a_b"}])
    _suite([{"name": "telea", "label": "a-b"}, {"name": "zero-fill", "label": "a_b"}])  # distinct files: fine


def test_a_plugin_raising_system_exit_at_import_is_unavailable_not_fatal(tmp_path, monkeypatch):
    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(7)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("method", [Entry("exiting", "exiting_plugin:Method")])
    ok, reason = registry.availability("exiting")
    assert not ok and "SystemExit" in reason
