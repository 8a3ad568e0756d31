"""Option values are checked against the constructor's annotations before anything runs
(issue 21 item 7): a string where a number belongs is one line, not a run of error records."""

from __future__ import annotations

import pytest

from inpaintbench.cli import main
from inpaintbench.core.errors import InputError
from inpaintbench.core.registry import method_registry


def test_a_string_for_a_number_is_refused_naming_the_option():
    with pytest.raises(InputError, match=r"method 'telea' option 'radius' must be float, got 'x' \(str\)"):
        method_registry().create("telea", radius="x")
    with pytest.raises(InputError, match=r"option 'radius' must be float, got True \(bool\)"):
        method_registry().create("telea", radius=True)
    assert method_registry().create("telea", radius=5).config["radius"] == 5  # an int is a float here


def test_optional_and_path_options_accept_their_types():
    method_registry().create("lama-ffc", weights=None)
    with pytest.raises(InputError, match=r"option 'weights' must be str or None, got 3 \(int\)"):
        method_registry().create("lama-ffc", weights=3)
    with pytest.raises(InputError, match=r"option 'model' must be str or PathLike or None"):
        method_registry().create("repaint", model=3)


def test_a_suite_with_a_mistyped_option_stops_before_writing(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text('datasets = ["mnist-sample"]\nmasks = ["box"]\nmethods = [{ name = "telea", radius = "x" }]\n'
                     "[run]\nn_images = 2\n")
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "-q", "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "option 'radius' must be float" in err[0]
    assert not out.exists()
