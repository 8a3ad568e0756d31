"""Every training-free solver runs from a suite file on two embedded digits and records the
network evaluations it was asked for (issue 20: "each runs on two embedded digits from a suite
file and records the NFE it was asked for")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib import resources

#: What each entry of suites/solvers-digits.toml asks for, in network evaluations per image.
#: DDNM+ with 6 steps and time-travel of length 2 repeated twice: the travel schedule's count.
EXPECTED_NFE = {"ddnm@10": 10, "ddrm@10": 10, "diffpir@10": 10, "dps@10": 10, "dps-paper@10": 10,
                "pigdm@10": 10, "red-diff@10": 10}
#: Solvers that differentiate through the denoiser: one vector-Jacobian product per evaluation.
WITH_VJP = {"dps@10", "dps-paper@10", "pigdm@10"}


def test_every_solver_runs_on_two_digits_and_records_its_nfe(tmp_path):
    suite = resources.files("inpaintbench") / "suites" / "solvers-digits.toml"
    labels = {m["label"] for m in tomllib.loads(suite.read_text())["methods"]}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INPAINTBENCH_CACHE_DIR": str(tmp_path / "cache"),
           "INPAINTBENCH_LPIPS_WEIGHTS": str(tmp_path / "no-lpips")}  # offline: NFE is what is checked
    done = subprocess.run([sys.executable, "-m", "inpaintbench.cli", "run", "--suite", "solvers-digits",
                           "--out", str(tmp_path / "out"), "--no-report", "-q"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    samples = [json.loads(line) for f in (tmp_path / "out" / "units").glob("*.jsonl") for line in f.open()]
    samples = [r for r in samples if r.get("kind") == "sample"]
    assert {r["method"] for r in samples} == labels and len(samples) == 2 * len(labels)
    for record in samples:
        assert record["status"] == "ok", record.get("error")
        counters = record["counters"]
        if record["method"] in EXPECTED_NFE:
            assert counters["nfe"] == EXPECTED_NFE[record["method"]], record["method"]
        else:  # ddnm-plus: more than its 6 steps (the travel repeats), never fewer
            assert counters["nfe"] > 6
        assert (counters.get("vjp", 0) == counters["nfe"]) == (record["method"] in WITH_VJP), record["method"]
