"""``--set METHOD.OPTION=VALUE`` and ``--set run.KEY=VALUE`` on run and plan (issue 23): one flag
instead of a suite file, checked like suite values before anything runs."""

from __future__ import annotations

import json

from inpaintbench.cli import main


def _records(out):
    return [json.loads(line) for f in sorted((out / "units").glob("*.jsonl")) for line in f.read_text().splitlines()
            if json.loads(line).get("kind") == "sample"]


def test_set_changes_a_method_option_and_a_run_key(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--datasets", "mnist-sample", "--methods", "telea", "--masks", "box", "--set", "telea.radius=5",
                 "--set", "run.n_images=3",
                 "--out", str(out), "--no-report", "-q"]) == 0
    records = _records(out)
    assert len(records) == 3 and {r["config"]["radius"] for r in records} == {5}


def test_bad_set_options_are_one_line_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    for argv, words in ((["--set", "telea.radius=x"], "option 'radius' must be float"),
                        (["--set", "lama.radius=5"], "--set names methods not in suite"),
                        (["--set", "run.n_image=3"], "[run] has no key 'n_image'"),
                        (["--set", "run.n_images=0"], "n_images"),
                        (["--set", "telea=5"], "--set expects METHOD.OPTION=VALUE")):
        code = main(["run", "--methods", "telea", "--masks", "box", *argv, "--out", str(out), "--no-report", "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and words in err[0], (argv, err)
        assert not out.exists()
    assert main(["plan", "--methods", "telea", "--masks", "box", "--set", "telea.radius=5", "--out", str(out)]) == 0
