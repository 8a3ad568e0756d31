"""Availability probes that cannot take the host down, and quiet third-party libraries.

``inpaintbench list methods --check`` asks every entry whether it can be built. The built-in
methods answer with a cheap ``check_available`` in the host (:func:`inpaintbench.cli.listing.availability`);
a plugin may end the process while imported (``os._exit``) or print start-up noise, so plugins
are probed in child processes (:func:`probe_in_children`): the host reads one marked line
per entry, names the entry a child died on as unavailable (with its exit status) and goes on
with the rest in a fresh child.

:func:`quiet_third_party` sets, once and before anything imports them, the environment
variables that silence TensorFlow's C++ logging and Hugging Face's advisory warnings (a
user's own settings win; child processes inherit them). TensorFlow >= 2.20 still writes two
lines while it is imported (absl's "All log messages before absl::InitializeLog()" and the
oneDNN notice), whatever ``TF_CPP_MIN_LOG_LEVEL`` says: :func:`without_start_up_banners`
drops exactly those lines from what the import writes to the process's stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

#: Environment settings that silence libraries' start-up noise (set only when unset).
QUIET_ENV = {
    # TensorFlow's C++ INFO and WARNING lines (e.g. cpu_feature_guard's); its ERROR lines stay
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "GRPC_VERBOSITY": "ERROR",
    "ABSL_MIN_LOG_LEVEL": "3",  # absl's "All log messages before absl::InitializeLog()" line
    "DIFFUSERS_VERBOSITY": "error",  # e.g. "Cannot initialize model with low cpu memory usage"
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}

#: Prefix of a child's result lines (anything else a plugin prints is ignored).
MARK = "\x1einpaintbench-probe "


#: Lines TensorFlow (2.20, 2.21) writes to stderr while imported, unfiltered by its log level.
START_UP_BANNERS = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
)


def quiet_third_party(keys: Iterable[str] | None = None) -> None:
    """Silence TensorFlow's and Hugging Face's start-up logging for this process and its
    children (sets :data:`QUIET_ENV`, or only its ``keys``, where unset); call it before they
    are imported."""
    for key in QUIET_ENV if keys is None else keys:
        os.environ.setdefault(key, QUIET_ENV[key])


@contextmanager
def without_start_up_banners(banners: Iterable[str] = START_UP_BANNERS) -> Iterator[None]:
    """Run the block with the process's stderr (file descriptor 2, where C++ libraries write)
    captured, then write back to ``sys.stderr`` every captured line that contains none of
    ``banners``: real warnings and errors still show, after the block. Meant for one import."""
    banners = tuple(banners)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not any(b in line for b in banners))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _child_main() -> None:
    """A probing child: reads ``{"path": [...], "kind": ..., "entries": [[name, target,
    defaults], ...]}`` on stdin and writes one marked JSON line per entry."""
    job = json.loads(sys.stdin.read())
    sys.path[:0] = [p for p in job["path"] if p not in sys.path]
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what a plugin prints is not a result
    from inpaintbench.core.registry import Entry, Registry

    for name, target, defaults in job["entries"]:
        registry = Registry(job["kind"], [Entry(name=name, target=target, defaults=defaults)])
        out.write(MARK + json.dumps([name, *registry.availability(name)]) + "\n")
        out.flush()


def _start(kind: str, entries: list[tuple[str, str, dict]]) -> subprocess.Popen:
    quiet_third_party()
    child = subprocess.Popen([sys.executable, "-c", "from inpaintbench.core.probing import _child_main; _child_main()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    child.stdin.write(json.dumps({"path": sys.path, "kind": kind, "entries": entries}))
    child.stdin.close()
    return child


def _collect(child: subprocess.Popen) -> dict[str, tuple[bool, str]]:
    found = {}
    for line in child.stdout:
        if line.startswith(MARK):
            name, ok, reason = json.loads(line[len(MARK):])
            found[name] = (bool(ok), str(reason))
    child.wait()
    return found


def probe_in_children(kind: str, entries: Iterable[tuple[str, str, dict[str, Any]]],
                      children: int = 2) -> dict[str, tuple[bool, str]]:
    """``name -> (available, reason)`` for ``entries`` (``(name, "module:attribute" target,
    defaults)``), each probed by :meth:`Registry.availability <inpaintbench.core.registry.Registry.availability>`
    in a child process.

    An entry whose probe ends its child (``os._exit``, a crash, a signal) is unavailable with
    the exit status; the entries after it are probed in a new child.
    """
    pending = list(entries)
    chunks = [pending[i::children] for i in range(children)] if children > 1 else [pending]
    results: dict[str, tuple[bool, str]] = {}
    running = [(chunk, _start(kind, chunk)) for chunk in chunks if chunk]
    while running:
        chunk, child = running.pop(0)
        results.update(_collect(child))
        left = [e for e in chunk if e[0] not in results]
        if left:
            name = left[0][0]
            results[name] = (False, f"probing {kind} {name!r} ({left[0][1]}) ended the process "
                                    f"(exit status {child.returncode}); it would end a run the same way")
            if left[1:]:
                running.append((left[1:], _start(kind, left[1:])))
    return results
