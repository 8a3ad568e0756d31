"""One registry mechanism for methods, datasets and mask families.

Entries are lazy: an entry names its target as ``"module:attribute"`` and nothing is imported
until the entry is built, so listing methods never imports TensorFlow or diffusers. Other
packages add entries through the entry-point groups ``inpaintbench.methods``,
``inpaintbench.datasets`` and ``inpaintbench.masks``; an entry point may load to an
:class:`Entry` or directly to a class / factory.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Mapping

from inpaintbench.api import InpaintBenchError, MethodUnavailable


class UnknownName(InpaintBenchError, KeyError):
    """A name that is not registered; the message carries a "did you mean" hint."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    """A registered, not yet built, thing.

    Attributes:
        name: the registry key users type.
        target: ``"package.module:attribute"`` or a callable; called with the merged kwargs.
        defaults: keyword arguments of the call; user overrides are merged over them.
        summary: one line for ``inpaintbench list``.
        group: a family label for listings and reports (``classical``, ``diffusion``...).
        tiny: overrides that make the entry quick enough for the contract tests (e.g. a few
            diffusion steps); never used by benchmark runs.
    """

    name: str
    target: str | Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    group: str = ""
    tiny: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self) -> Callable[..., Any]:
        """Import and return the target callable (raises ImportError if an extra is missing)."""
        if callable(self.target):
            return self.target
        module_name, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attr)


class Registry:
    """Named entries of one kind (``"method"``, ``"dataset"`` or ``"mask"``)."""

    def __init__(self, kind: str, entries: Iterable[Entry]):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            if entry.name in self._entries:
                raise ValueError(f"{kind} {entry.name!r} is registered twice")
            self._entries[entry.name] = entry

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Entry:
        """The entry called ``name``; :class:`UnknownName` with close matches otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownName(
                f"unknown {self.kind} {name!r}.{hint} Run `inpaintbench list` to see all {self.kind}s."
            ) from None

    def create(self, name: str, **overrides: Any) -> Any:
        """Build the entry ``name`` with its defaults updated by ``overrides``.

        Raises:
            UnknownName: ``name`` is not registered.
            MethodUnavailable: the target's optional extra or its weights are missing.
        """
        entry = self.entry(name)
        try:
            factory = entry.resolve()
        except ImportError as err:
            raise MethodUnavailable(
                f"{self.kind} {name!r} needs a package that is not installed ({err}); "
                "install the matching extra, e.g. pip install -e '.[diffusion]' or '.[tf]'"
            ) from err
        obj = factory(**{**entry.defaults, **overrides})
        try:
            obj.name = name
        except AttributeError:  # e.g. a frozen object: keep its own name
            pass
        return obj

    def availability(self, name: str) -> tuple[bool, str]:
        """``(True, "")`` if ``name`` builds here, else ``(False, reason)``; never raises for
        a missing extra or missing weights."""
        try:
            self.create(name)
        except MethodUnavailable as err:
            return False, str(err)
        return True, ""


def _plugin_entries(group: str) -> list[Entry]:
    found = []
    for ep in entry_points(group=group):
        obj = ep.load()
        found.append(obj if isinstance(obj, Entry) else Entry(name=ep.name, target=obj, group="plugin"))
    return found


@cache
def method_registry() -> Registry:
    """All methods: the built-in catalogue plus ``inpaintbench.methods`` entry points."""
    from inpaintbench.catalog import METHODS

    return Registry("method", [*METHODS, *_plugin_entries("inpaintbench.methods")])


@cache
def dataset_registry() -> Registry:
    """All datasets: built-ins plus ``inpaintbench.datasets`` entry points."""
    from inpaintbench.catalog import DATASETS

    return Registry("dataset", [*DATASETS, *_plugin_entries("inpaintbench.datasets")])


@cache
def mask_registry() -> Registry:
    """All mask families: built-ins plus ``inpaintbench.masks`` entry points."""
    from inpaintbench.catalog import MASKS

    return Registry("mask family", [*MASKS, *_plugin_entries("inpaintbench.masks")])


#: The loop of a trainer whose entry names none (e.g. a plugin that loads to a bare task factory).
TORCH_LOOP = "inpaintbench.methods.training.loop:train"


def resolve_target(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import a ``"package.module:attribute"`` target the way :meth:`Entry.resolve` does (a
    callable is returned as is); raises ImportError if an extra is missing."""
    return Entry(name=str(target), target=target).resolve()


@cache
def trainer_registry() -> Registry:
    """All trainers of ``inpaintbench train``: the built-in catalogue plus ``inpaintbench.trainers``
    entry points.

    A trainer entry's ``target`` is its task factory (built from the config's ``[task]``
    table: its ``from_dict`` when it has one, else called with the table as keywords); its
    ``defaults`` are not keyword arguments of that call but the trainer's settings:
    ``config``, the default config file (a name in ``inpaintbench.methods.CONFIG_DIR`` or a
    path; absent: ``--config`` is required), and ``loop``, the training loop
    ``(task, dataset, TrainConfig, out_dir, *, resume) -> final folder`` (a target as above;
    absent: :data:`TORCH_LOOP`). An entry point may load to such an :class:`Entry` or to a
    bare task factory (torch loop, no default config).
    """
    from inpaintbench.catalog import TRAINERS

    return Registry("trainer", [*TRAINERS, *_plugin_entries("inpaintbench.trainers")])
