"""Fault battery, issue 21 item 6: a plugin that ends the process at import (``os._exit``)
cannot take ``list methods --check`` down: it is listed unavailable with the reason, and the
plugins and built-ins after it are still probed."""

from __future__ import annotations


def test_os_exit_at_import_is_listed_unavailable(ctx):
    ctx.install_plugins("import os\nos._exit(3)\n", exiter="faulty_plugin:Nothing")
    from inpaintbench.core import registry
    from inpaintbench.core.registry import Entry, Registry

    base = registry.method_registry()
    exiter = base.entry("exiter")
    ctx.use_registry(Registry("method", [exiter, base.entry("zero-fill"), base.entry("mean-fill"),
                                         Entry("telea-too", "inpaintbench.baselines.opencv_inpaint:OpenCVInpaint",
                                               defaults={"algorithm": "telea"})]))
    code, out, err = ctx.cli("list", "methods", "--check")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "unavailable" in lines["exiter"] and "exit status 3" in lines["exiter"]
    assert all("[available]" in lines[n] for n in ("zero-fill", "mean-fill", "telea-too"))
