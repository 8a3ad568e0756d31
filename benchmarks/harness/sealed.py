"""Sealed execution: a method runs in a child process that never holds the ground truth.

The harness keeps the originals, the metrics and the records; a sealed child holds one method,
built there from its registry entry and options (never a pickled instance that could carry
harness state), and is sent only what the method may see: the observation (the masked image
and its mask, or the low-resolution image), the seeds of the per-sample generators (so its
draws are those of an unsealed run) and, before the first call of a shape, a synthetic
warm-up observation (:func:`warmup_observation`). A plugin that walks the caller's frames or
scans ``gc.get_objects()`` finds its child's serve loop and observations, nothing else.

Children are forked from a ``multiprocessing`` fork server: a clean interpreter that has
imported torch and this module and nothing of the run (no data, no locks, no TensorFlow or
CUDA state, so TensorFlow methods and CUDA work in it), which makes a child cost tens of
milliseconds plus its method's own imports and weights. The child answers with plain data
(a JSON header and an ``.npy`` array, read with ``allow_pickle=False``): the harness never
unpickles anything a method produced. A call timeout (``call_timeout_s``) is the same
mechanism: the harness stops waiting, kills the child and starts a fresh one for the next
batch.

Limits: sealing keeps the ground truth out of the method's memory, not off the disk: a child
runs as the same user and could open the dataset's files (an OS sandbox is out of scope).
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import pickle
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable

import numpy as np
import torch

from inpaintbench.core.errors import InpaintBenchError, InputError
from inpaintbench.core.identity import config_hash, method_identity
from inpaintbench.core.method import Method, Observation, Restoration
from inpaintbench.core.seeding import SampleRNG, make_generator
from inpaintbench.harness.acceleration import Acceleration, AppliedAcceleration
from inpaintbench.harness.timing import timed_call


class CallTimeout(InpaintBenchError):
    """A method call ran past ``call_timeout_s`` and was killed."""


class WorkerFailed(RuntimeError):
    """The call raised in its sealed child (the message names the original exception) or the
    child died without answering (its exit code is named)."""


class BadOutput(RuntimeError):
    """A sealed method returned something that is not a tensor (the message says what)."""


def accelerated_identity(name: str, method: Method, applied: AppliedAcceleration) -> tuple[dict[str, Any], str]:
    """:func:`~inpaintbench.core.identity.method_identity` plus what acceleration was applied,
    when it is not plain fp32 (so default records keep their hash)."""
    config, chash = method_identity(name, method)
    described = applied.describe()
    if described != Acceleration().describe():
        config = {**config, "acceleration": described}
        chash = config_hash(config)
    return config, chash


# ----------------------------------------------------------------------------- the one call

@dataclass(frozen=True)
class Seeds:
    """The per-sample generators of a call as data: ``SampleRNG.for_samples(*parts, sample_ids=ids)``."""

    parts: tuple
    sample_ids: tuple[str, ...]

    def rng(self, device: torch.device | str) -> SampleRNG:
        """The generators on ``device`` (identical draws in any process)."""
        return SampleRNG.for_samples(*self.parts, sample_ids=list(self.sample_ids), device=device)


#: The seeds of every warm-up call (its observation is synthetic, so are its draws).
WARMUP_SEEDS_ID = "warmup"


def warmup_observation(task_for_first: Callable[[], Any], shape: tuple[int, ...], seed: int) -> Observation:
    """The synthetic observation of a warm-up call: the task of the batch's first sample (its
    mask, its scale) observing deterministic uniform noise of one image of ``shape``
    (``(C, H, W)``), never a real image: a method that does its work in the untimed warm-up
    learns nothing about the batch."""
    noise = torch.rand((1, *shape), generator=make_generator(seed, "warmup-image", tuple(shape)))
    return task_for_first().observe(noise)


def call_method(method: Method, applied: AppliedAcceleration | None, observation: Observation, seeds: Seeds,
                warmup: Observation | None, device: torch.device) -> tuple[Restoration, float, int | None, float]:
    """``(restoration, seconds, peak bytes, warm-up seconds)`` of one timed ``method.restore``,
    after an untimed call on ``warmup`` when given (the first call pays for lazy init,
    allocator growth, cuDNN autotune, ``torch.compile``); both under the method's autocast.
    The same code runs in the harness (unsealed) and in a sealed child."""
    def restore(obs: Observation, rng: SampleRNG) -> Any:
        with applied.autocast() if applied is not None else contextlib.nullcontext():
            return method.restore(obs, rng)

    warmup_s = 0.0
    if warmup is not None:
        start = time.perf_counter()
        restore(warmup, Seeds((seeds.parts[0], WARMUP_SEEDS_ID), (WARMUP_SEEDS_ID,)).rng(device))
        warmup_s = time.perf_counter() - start
    timed = timed_call(lambda: restore(observation, seeds.rng(device)), device)
    return timed.value, timed.seconds, timed.peak_memory_bytes, warmup_s


# ----------------------------------------------------------------------------- the recipe

@dataclass(frozen=True)
class Recipe:
    """How a sealed child builds its method (picklable, holds no harness object).

    Attributes:
        name: the registry name; ``target`` its entry's ``"module:attribute"``; ``defaults``
            the entry's defaults; ``config`` the suite's options.
        module_file: for a target defined in a module that is not importable by name (a
            script, a test module loaded by path): the file the child loads it from.
        device, num_threads, acceleration: as in the harness.
    """

    name: str
    target: str
    defaults: dict[str, Any]
    config: dict[str, Any]
    device: str
    num_threads: int
    acceleration: Acceleration = field(default_factory=Acceleration)
    module_file: str | None = None


def recipe_target(target: Any) -> tuple[str, str | None]:
    """``("module:attribute", module file or None)`` of an entry's target (a string is kept).

    Raises:
        InputError: a callable defined inside a function (no name to import it by).
    """
    if isinstance(target, str):
        return target, None
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if module is None or "<locals>" in qualname or "<lambda>" in qualname:
        raise InputError(f"method target {target!r} cannot be built in a sealed process: define it at the top "
                         "level of a module (or run with --no-sealed)")
    return f"{module}:{qualname}", getattr(sys.modules.get(module), "__file__", None)


def _resolve(recipe: Recipe) -> Any:
    """The target callable of ``recipe``, imported in this (child) process."""
    from inpaintbench.core.registry import resolve_target

    module_name = recipe.target.partition(":")[0]
    if recipe.module_file is not None:
        try:
            module = __import__(module_name, fromlist=["_"])
            if getattr(module, "__file__", None) != recipe.module_file:
                raise ImportError("another module of that name")
        except ImportError:  # a module loaded by path in the harness: load it by path here
            import importlib.util

            spec = importlib.util.spec_from_file_location(module_name, recipe.module_file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    return resolve_target(recipe.target)


def build_from_recipe(recipe: Recipe) -> tuple[Method, AppliedAcceleration, str]:
    """Build the recipe's method as the registry builds it (options checked, ``name`` set),
    move it to its device, apply the acceleration; ``(method, applied, config hash)``."""
    from inpaintbench.core.registry import Entry, Registry

    entry = Entry(recipe.name, _resolve(recipe), defaults=dict(recipe.defaults))
    method = Registry("method", [entry]).create(recipe.name, **recipe.config).to(recipe.device)
    applied = recipe.acceleration.apply(method)
    return method, applied, accelerated_identity(recipe.name, method, applied)[1]


# ----------------------------------------------------------------------------- the child

def _send(conn: Any, header: dict[str, Any], array: np.ndarray | None = None) -> None:
    conn.send_bytes(json.dumps(header).encode())
    if array is not None:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        conn.send_bytes(buffer.getvalue())


def _plain_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Counters as JSON values: a float, or a list of floats (one per image)."""
    out = {}
    for key, value in stats.items():
        if isinstance(value, torch.Tensor):
            value = value.tolist()
        out[str(key)] = float(value) if isinstance(value, (int, float)) else [float(v) for v in value]
    return out


def _serve(conn: Any, recipe: Recipe) -> None:
    """The sealed child: build the method, then answer requests until told to stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the harness's: it stops the child
    torch.set_num_threads(recipe.num_threads)
    try:
        method, applied, chash = build_from_recipe(recipe)
    except BaseException as err:  # noqa: BLE001 - the harness records why, the run goes on
        _send(conn, {"status": "error", "error": f"{type(err).__name__}: {err}"})
        return
    _send(conn, {"status": "ready", "config_hash": chash})
    device = torch.device(recipe.device)
    while True:
        try:
            request = pickle.loads(conn.recv_bytes())  # from the harness: trusted
        except EOFError:
            return
        if request is None:
            return
        observation, seeds, warmup = (observation_on(request[0], device), request[1],
                                      None if request[2] is None else observation_on(request[2], device))
        try:
            restoration, seconds, peak, warmup_s = call_method(method, applied, observation, seeds, warmup, device)
            image = restoration.image
            header = {"status": "ok", "seconds": seconds, "peak": peak, "warmup_s": warmup_s,
                      "stats": _plain_stats(restoration.stats)}
            if not isinstance(image, torch.Tensor):
                _send(conn, {**header, "status": "bad-output",
                             "error": f"method returned {type(image).__name__}, not a tensor"})
                continue
            _send(conn, header, image.detach().to(torch.float32).cpu().numpy())
        except BaseException as err:  # noqa: BLE001 - a failing call is a result
            _send(conn, {"status": "error", "error": f"{type(err).__name__}: {err}"})


def observation_on(observation: Observation, device: torch.device | str) -> Observation:
    """``observation`` with its tensors on ``device``."""
    mask = None if observation.mask is None else observation.mask.to(device)
    return Observation(observation.task, observation.image.to(device), mask)


# ----------------------------------------------------------------------------- the harness side

#: Modules the fork server imports once, so that each child starts in milliseconds.
PRELOAD = ["inpaintbench.harness.sealed"]


def _context() -> Any:
    """The fork-server context (spawn where there is no fork server)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_fork_server() -> None:
    """Start the fork server now, in the background (it imports torch: seconds), so that it
    is ready by the first sealed call instead of delaying it."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        _context()
        with _main_hidden():
            forkserver.ensure_running()


@contextlib.contextmanager
def _main_hidden() -> Any:
    """Start a child without the user's main module: ``multiprocessing`` would import it in
    the child again (running an unguarded script, a whole benchmark, a second time) and a
    sealed child needs nothing of it (its method comes from the registry)."""
    import types

    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class SealedMethod:
    """A sealed child holding one method: started (and its method built) on construction.

    Args:
        recipe: how the child builds the method.
        planned_hash: the config hash the run planned with; a child whose method hashes
            otherwise (other weights on this machine) is refused.

    Raises:
        InputError: the method hashes otherwise than planned.
        WorkerFailed: the child could not build the method, or died while building it.
    """

    def __init__(self, recipe: Recipe, planned_hash: str | None = None):
        self.recipe = recipe
        self.warmed: set = set()
        context = _context()
        self._conn, child_conn = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(child_conn, recipe), daemon=True,
                                       name=f"inpaintbench-sealed-{recipe.name}")
        with _main_hidden():
            self.process.start()
        child_conn.close()
        header = self._answer(None)
        if header["status"] != "ready":
            self.close()
            raise WorkerFailed(f"could not build the method in its sealed process: {header.get('error')}")
        if planned_hash is not None and header.get("config_hash") != planned_hash:
            self.close()
            raise InputError(f"method {recipe.name!r} built in its sealed process hashes to "
                             f"{header.get('config_hash')}, the run planned {planned_hash}: its options or weight "
                             "files differ here")

    def call(self, observation: Observation, seeds: Seeds, warmup: Observation | None,
             timeout_s: float | None) -> tuple[Restoration, float, int | None, float]:
        """``(restoration, seconds, peak bytes, warm-up seconds)`` of one call in the child (what
        :func:`call_method` returns in process).

        Raises:
            CallTimeout: no answer within ``timeout_s`` (the child is killed).
            WorkerFailed: the method raised (named) or the child died.
            BadOutput: the method returned something other than a tensor.
        """
        message = pickle.dumps((observation_on(observation, "cpu"), seeds,
                                None if warmup is None else observation_on(warmup, "cpu")))
        try:
            self._conn.send_bytes(message)
        except (BrokenPipeError, OSError):
            pass  # the child is gone: _answer names its exit code
        try:
            header = self._answer(timeout_s)
        except KeyboardInterrupt:  # the run stops: so does its child, mid-call
            self.kill()
            raise
        if header["status"] == "error":
            raise WorkerFailed(header["error"])
        if header["status"] == "bad-output":
            raise BadOutput(header["error"])
        image = torch.from_numpy(np.load(io.BytesIO(self._recv(timeout_s)), allow_pickle=False))
        return Restoration(image, dict(header["stats"])), float(header["seconds"]), header["peak"], \
            float(header["warmup_s"])

    def _recv(self, timeout_s: float | None) -> bytes:
        """The child's next message; waits for the child or its death (and the timeout)."""
        ready = wait([self._conn, self.process.sentinel], timeout_s)
        if self._conn not in ready and not self._conn.poll():
            if not ready:
                self.kill()
                raise CallTimeout(f"call did not finish within call_timeout_s = {timeout_s:g} s; "
                                  "its sealed process was killed")
            self.process.join(5)
            raise WorkerFailed(f"the method's sealed process died without an answer (exit code "
                               f"{self.process.exitcode})")
        try:
            return self._conn.recv_bytes()
        except (EOFError, OSError):
            self.process.join(5)
            raise WorkerFailed(f"the method's sealed process died without an answer (exit code "
                               f"{self.process.exitcode})") from None

    def _answer(self, timeout_s: float | None) -> dict[str, Any]:
        """The child's next JSON header (plain data: nothing of it is executed)."""
        header = json.loads(self._recv(timeout_s).decode())
        if not isinstance(header, dict) or "status" not in header:
            raise WorkerFailed("the method's sealed process sent a malformed answer")
        return header

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        """End the child now."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self._conn.close()

    def close(self) -> None:
        """Ask the child to stop; kill it if it does not within a few seconds."""
        if self.process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self._conn.send_bytes(pickle.dumps(None))
            self.process.join(5)
        self.kill()
