"""The rows of ``cases.toml``: one command line each, and what its user must be able to rely on.

Each row is one case of the fault battery (issue 14) of the shape "these arguments (+ suite
text, + files, + a named setup) -> this exit status, this error line, these records". One
parametrized test runs them all (ids = row names) and checks, for every row:

* the exit status (``exit``); no traceback;
* when ``error`` is given: exactly one ``error: ...`` line holding each key word (case ignored)
  and none of ``error_lacks``;
* nothing executed: the marker a malicious pickle would create does not exist;
* the inputs made before the command (files, suite, setups) are byte for byte unchanged;
* when the exit status is not 0, nothing half-written: no ``*.tmp*`` file, and no results folder
  unless the row allows one (``out_created``) or it was there before;
* whatever of ``records``, ``records_of``, ``samples``, ``error_records``, ``warning``,
  ``no_warning``, ``stdout``, ``absent``, ``max_seconds`` the row states.

``{tmp}`` and ``{out}`` in any string of a row stand for the case's temporary folder and its
results folder. The keys are checked when the table is read: a misspelt one is an error, never a
check silently skipped.
"""

from __future__ import annotations

import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest

CASES_FILE = Path(__file__).with_name("cases.toml")

# key -> what it is; every key a row may have (anything else is refused at collection)
KEYS = {
    "name": "the case's id: its issue-14 item, then what it shows",
    "skip_if": "a skip condition of setups.py",
    "setup": "setups.py functions to call first: {function = {keyword arguments}}",
    "files": "text files to create: {path under tmp = text}",
    "argv": "the whole command line (instead of the default run)",
    "suite": "run --suite on Ctx.suite(**this) (instead of the default run)",
    "methods": "default run: --methods (zero-fill)",
    "masks": "default run: --masks (box)",
    "n": "default run: --n-images (2)",
    "batch": "default run: --batch-size (2)",
    "args": "arguments appended to the run (default or suite)",
    "out": "the results folder, under tmp (out)",
    "exit": "the exit status",
    "error": "key words of the one error line",
    "error_lacks": "words the error line must not hold",
    "out_created": "a failed run may leave a results folder (without records, without *.tmp*)",
    "records": "{status = count} of the sample records, for the statuses named",
    "records_of": "{method = {status = count}}: exactly these sample records of the method",
    "samples": "the number of sample records",
    "error_records": "words every error record's error holds",
    "warning": "exactly one warning line holds the first word, and it holds all of them",
    "no_warning": "words no warning line holds",
    "stdout": "words the standard output holds (whitespace runs read as one space)",
    "absent": "globs under tmp that must match nothing",
    "max_seconds": "the command's wall-time limit",
}


def load_cases(path: Path = CASES_FILE) -> list[dict]:
    """The rows of ``path`` (``[[case]]`` tables), each checked for unknown keys, a name, an
    exit status, an error line for every failure, one way of running and a unique name."""
    rows = tomllib.loads(path.read_text())["case"]
    names = set()
    for row in rows:
        unknown = set(row) - set(KEYS)
        assert not unknown, f"{row.get('name')}: unknown keys {sorted(unknown)} (known: {sorted(KEYS)})"
        assert "name" in row and "exit" in row, row
        assert row["name"] not in names, f"two cases are called {row['name']}"
        names.add(row["name"])
        assert row["exit"] == 0 or "error" in row, f"{row['name']}: a failure names its error line"
        assert not ("argv" in row and "suite" in row), row["name"]
        if "argv" in row or "suite" in row:
            defaults = {"methods", "masks", "n", "batch"} & set(row)
            assert not defaults, f"{row['name']}: {sorted(defaults)} only apply to the default run"
        if "argv" in row:
            assert "args" not in row and "out" not in row, f"{row['name']}: argv is the whole command line"
    return rows


CASES = load_cases()


def fill(value, ctx, out: Path):
    """``value`` with ``{tmp}`` and ``{out}`` replaced in every string (lists and tables too)."""
    if isinstance(value, str):
        return value.replace("{tmp}", str(ctx.tmp)).replace("{out}", str(out))
    if isinstance(value, list):
        return [fill(v, ctx, out) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ctx, out) for k, v in value.items()}
    return value


def invoke(row: dict, ctx, out: Path) -> tuple[int, str, str]:
    """Run the row's command line; the suite file is already written."""
    if "argv" in row:
        return ctx.cli(*row["argv"])
    if "suite" in row:
        return ctx.cli("run", "--suite", ctx.tmp / "suite.toml", "--out", out, "--no-report", "-q",
                       *row.get("args", []))
    return ctx.run(*row.get("args", []), methods=row.get("methods", "zero-fill"), masks=row.get("masks", "box"),
                   n=row.get("n", 2), batch=row.get("batch", 2), out=out)


@pytest.mark.parametrize("row", [pytest.param(row, id=row["name"]) for row in CASES])
def test_cli_case(row, ctx, setups):
    out = ctx.tmp / row.get("out", "out")
    row = fill({k: v for k, v in row.items() if k != "name"}, ctx, out)
    if "skip_if" in row and (reason := getattr(setups, row["skip_if"])()):
        pytest.skip(reason)

    # the one bad input
    for function, arguments in row.get("setup", {}).items():
        getattr(setups, function)(ctx, **arguments)
    for relative, text in row.get("files", {}).items():
        (ctx.tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (ctx.tmp / relative).write_text(text)
    if "suite" in row:
        (ctx.tmp / "suite.toml").write_text(ctx.suite(**row["suite"]))
    inputs = ctx.file_bytes(ctx.tmp)
    out_before = out.exists()

    start = time.perf_counter()
    code, stdout, err = invoke(row, ctx, out)
    seconds = time.perf_counter() - start

    # the exit status and the one error line
    if "error" in row:
        line = ctx.one_error(code, err, *row["error"], status=row["exit"])
        for word in row.get("error_lacks", []):
            assert word.lower() not in line.lower(), (word, line)
    else:
        assert code == row["exit"], err
        assert "Traceback" not in err, err
    if "max_seconds" in row:
        assert seconds < row["max_seconds"], seconds

    # nothing executed, no input touched, nothing half-written
    assert not ctx.marker.exists(), "a loader executed code from a file"
    after = ctx.file_bytes(ctx.tmp)
    changed = [p for p, data in inputs.items() if after.get(p) != data]
    assert not changed, f"inputs changed or removed: {changed}"
    if code != 0:
        assert ctx.no_tmp_files(ctx.tmp), sorted(p.name for p in ctx.tmp.rglob("*.tmp*"))
        if not out_before and not row.get("out_created"):
            assert not out.exists(), f"a failed run created {out}: {sorted(p.name for p in out.rglob('*'))}"
    for pattern in row.get("absent", []):
        assert not list(ctx.tmp.glob(pattern)), (pattern, list(ctx.tmp.glob(pattern)))

    # records
    if {"records", "records_of", "samples", "error_records"} & set(row):
        samples = ctx.samples(path=out)
        statuses = Counter(r["status"] for r in samples)
        for status, count in row.get("records", {}).items():
            assert statuses[status] == count, (status, statuses)
        for method, expected in row.get("records_of", {}).items():
            got = Counter(r["status"] for r in samples if r["method"] == method)
            assert got == Counter(expected), (method, got, [r.get("error") for r in samples])
        if "samples" in row:
            assert len(samples) == row["samples"], statuses
        errors = [r for r in samples if r["status"] == "error"]
        for word in row.get("error_records", []):
            assert errors and all(word in r["error"] for r in errors), (word, [r["error"] for r in errors])

    # warnings and output
    warnings = ctx.warnings(err)
    if "warning" in row:
        topic, *words = row["warning"]
        about = [w for w in warnings if topic in w]
        assert len(about) == 1 and all(word in about[0] for word in words), err
    for word in row.get("no_warning", []):
        assert not [w for w in warnings if word in w], err
    text = " ".join(stdout.split())
    for word in row.get("stdout", []):
        assert word in text, (word, stdout)


def test_the_battery_is_big_enough():
    assert len(CASES) >= 40
