"""The Ray executor: units run by Ray actors, on one machine or a cluster (extra ``[ray]``).

Each actor is one worker process holding a :class:`~inpaintbench.harness.unit_runner.UnitRunner`,
so it keeps a loaded model across the units of one method (the dispatcher hands it those
first). An actor asks Ray for the GPUs a unit declares (``num_gpus``: 1 per actor on CUDA, 0
on the CPU) and for ``num_threads`` CPUs. Actors write their units into the results folder
themselves, which must therefore be one every node sees (NFS, Lustre, a cluster's scratch);
units are claimed with ``flock`` there, and the atomic renames keep a result set clean even
where the file system's locks are weak (a unit is then at worst computed twice and written
once). An actor that dies (node lost, killed, out of memory) surfaces as a
``RayActorError``: the dispatcher starts a new actor and retries the unit.

Connecting: ``--ray-address auto`` (or ``ray://host:10001``, or ``$RAY_ADDRESS``) joins a
running cluster; without an address a local one is started, sized to this machine. See the
README (Ray cluster, Slurm).
"""

from __future__ import annotations

from typing import Any

from inpaintbench.core.errors import InputError
from inpaintbench.harness.executors import RunAborted, WorkerDied, WorkerSpec
from inpaintbench.harness.unit_runner import UnitOutcome
from inpaintbench.store.folder import WorkUnit


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise InputError("--executor ray needs Ray: pip install 'inpaintbench[ray]' (or pass --workers N for local worker processes)") from err
    return ray


class _UnitActor:
    """The body of a Ray actor: builds its runner on first use and runs units."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.runner = None

    def run(self, unit: WorkUnit, wait: bool, attempt: int) -> tuple[str, Any]:
        from inpaintbench.core.errors import InpaintBenchError

        try:
            if self.runner is None:
                self.runner = self.spec.build_runner()
            return "done", self.runner.run(unit, wait=wait, attempt=attempt)
        except InpaintBenchError as err:  # stops the run (bad data, full disk), named
            return "abort", str(err)
        except Exception as err:  # noqa: BLE001 - an unexpected harness error stops the run, named
            return "abort", f"{type(err).__name__}: {err}"


def _placeable_actors(resources: dict[str, float], *, num_cpus: int, num_gpus: float) -> int:
    """How many actors asking for ``num_cpus`` CPUs and ``num_gpus`` GPUs a cluster with
    ``resources`` (``ray.cluster_resources()``) holds at once: more would wait forever."""
    fits = [int(resources.get("CPU", 0) // num_cpus)] if num_cpus else []
    if num_gpus:
        fits.append(int(resources.get("GPU", 0) // num_gpus))
    return min(fits) if fits else 0


class RayPool:
    """``size`` Ray actors (see the module docstring).

    Args:
        size: actors to start; None: as many as the cluster holds (its CPUs / ``num_cpus``, its
            GPUs / ``num_gpus``); more than it holds is refused in one line.
        spec: the workers' :class:`WorkerSpec` (device ``"cuda"``: Ray sets each actor's
            visible GPU, so it uses ``cuda:0`` of what it sees).
        num_gpus: GPUs per actor; ``num_cpus`` CPUs per actor (its torch threads).
        address: a cluster to join; None starts (or reuses) a local one.
    """

    def __init__(self, size: int | None, spec: WorkerSpec, *, num_gpus: float, num_cpus: int, address: str | None):
        self.ray = import_ray()
        if not self.ray.is_initialized():
            try:
                self.ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise InputError(f"--ray-address {address!r}: cannot connect to a Ray cluster ({err})") from err
        resources = self.ray.cluster_resources()
        placeable = _placeable_actors(resources, num_cpus=num_cpus, num_gpus=num_gpus)
        size = size or max(1, placeable)
        if size > placeable:  # an actor that cannot be placed would leave its unit waiting forever
            have = f"{resources.get('CPU', 0):g} CPUs" + (f" and {resources.get('GPU', 0):g} GPUs" if num_gpus else "")
            raise InputError(f"--workers {size} Ray actors of {num_cpus} CPU(s)" + (f" and {num_gpus:g} GPU" if num_gpus else "")
                             + f" each do not fit the cluster ({have}: room for {placeable}); pass --workers "
                             f"{max(placeable, 1)} or fewer --num-threads")
        self.size = size
        self._actor_class = self.ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)(_UnitActor)
        self._spec = spec
        self._actors: dict[int, Any] = {}
        self._pending: dict[Any, int] = {}

    def start(self, slot: int) -> None:
        old = self._actors.pop(slot, None)
        if old is not None:
            self.ray.kill(old)
        self._actors[slot] = self._actor_class.remote(self._spec)

    def submit(self, slot: int, unit: WorkUnit, wait: bool, attempt: int) -> None:
        self._pending[self._actors[slot].run.remote(unit, wait, attempt)] = slot

    def next_result(self) -> tuple[int, UnitOutcome | WorkerDied]:
        ready, _ = self.ray.wait(list(self._pending), num_returns=1)
        slot = self._pending.pop(ready[0])
        errors = self.ray.exceptions
        lost = tuple(getattr(errors, name) for name in ("RayActorError", "WorkerCrashedError", "NodeDiedError",
                                                         "ObjectLostError", "OwnerDiedError") if hasattr(errors, name))
        try:
            kind, payload = self.ray.get(ready[0])
        except lost as err:  # the worker (or its node) is gone: retry elsewhere
            return slot, WorkerDied(f"Ray {type(err).__name__}: {str(err).splitlines()[0]}")
        except errors.RayError as err:  # anything else Ray reports stops the run in one line
            raise RunAborted(f"Ray {type(err).__name__}: {str(err).splitlines()[0]}") from None
        if kind == "abort":
            raise RunAborted(payload)
        return slot, payload

    def close(self) -> None:
        for actor in self._actors.values():
            self.ray.kill(actor)
        self._actors.clear()
        self._pending.clear()
