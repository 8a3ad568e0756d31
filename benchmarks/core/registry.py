"""One registry mechanism for methods, datasets and mask families.

Entries are lazy: an entry names its target as ``"module:attribute"`` and nothing is imported
until the entry is built, so listing methods never imports TensorFlow or diffusers. Other
packages add entries through the entry-point groups ``inpaintbench.methods``,
``inpaintbench.datasets`` and ``inpaintbench.core.masks``; an entry point may load to an
:class:`Entry` or directly to a class / factory.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from inpaintbench.core.errors import InpaintBenchError, InputError, MethodUnavailable
from inpaintbench.core.notices import warn


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
        trained_on: for learned methods, what their default weights were trained on (data,
            size, channels) and which committed weights serve other images; shown by ``list``.
    """

    name: str
    target: str | Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    group: str = ""
    tiny: Mapping[str, Any] = field(default_factory=dict)
    trained_on: str = ""

    def resolve(self) -> Callable[..., Any]:
        """Import and return the target callable (raises ImportError if an extra is missing).

        A string target is ``"module:attribute"`` (the attribute may be dotted; an entry
        point's ``[extras]`` are ignored). A target that is itself an :class:`Entry` (a plugin's
        entry point may load to one) resolves to that entry's target with its defaults.
        """
        if callable(self.target):
            target = self.target
        else:
            module_name, _, attr = self.target.partition(":")
            target = importlib.import_module(module_name.strip())
            for part in attr.split("[")[0].strip().split("."):
                target = getattr(target, part)
        if isinstance(target, Entry):
            inner = target.resolve()
            return functools.partial(inner, **target.defaults) if target.defaults else inner
        return target


def _plural(kind: str) -> str:
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def check_options(kind: str, name: str, factory: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` when ``options`` do not fit ``factory``'s signature: an unknown
    option (with "did you mean"), or a required one missing. Factories taking ``**kwargs``
    check their own options and only get the missing-option check."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check against
        return
    named = [p for p in signature.parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepted = [p.name for p in named]
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        unknown = [key for key in options if key not in accepted]
        if unknown:
            close = difflib.get_close_matches(unknown[0], accepted, n=2, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise InputError(f"{kind} {name!r} has no option {unknown[0]!r}.{hint} Its options: "
                             f"{', '.join(accepted) or 'none'}")
    missing = [p.name for p in named if p.default is p.empty and p.name not in options]
    if missing:
        raise InputError(f"{kind} {name!r} needs the option(s) {', '.join(repr(m) for m in missing)} "
                         f"(e.g. {missing[0]} = ... in its suite table)")
    hints = _type_hints(factory)
    for key, value in options.items():
        allowed = _plain_types(hints.get(key))
        if allowed is not None and not _fits(value, allowed):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise InputError(f"{kind} {name!r} option {key!r} must be {names}, got {value!r} "
                             f"({type(value).__name__}); write it without quotes if it is a number")


def _type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """The evaluated annotations of ``factory`` (a class's ``__init__``); empty when they cannot
    be evaluated (a plugin annotating with names it does not import is not refused for it)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unevaluable annotations: nothing to check against
        return {}


def _plain_types(hint: Any) -> tuple[type, ...] | None:
    """The plain types an annotation allows (``int``, ``float``, ``bool``, ``str``, paths, None
    and unions of them), or None when it says more than that (then nothing is checked)."""
    if hint is None:
        return None
    parts = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    allowed: list[type] = []
    for part in parts:
        if part in (int, float, bool, str, type(None)):
            allowed.append(part)
        elif part in (os.PathLike, Path) or typing.get_origin(part) is os.PathLike:
            allowed += [str, os.PathLike]
        else:
            return None
    return tuple(dict.fromkeys(allowed))


def _fits(value: Any, allowed: tuple[type, ...]) -> bool:
    """Whether ``value`` is of one of ``allowed`` (an int passes for a float; a bool only for a bool)."""
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and (int in allowed or float in allowed):
        return True
    return isinstance(value, tuple(t for t in allowed if t not in (bool, int)))


class Registry:
    """Named entries of one kind (``"method"``, ``"dataset"`` or ``"mask"``)."""

    def __init__(self, kind: str, entries: Iterable[Entry]):
        self.kind = kind
        self.plural = _plural(kind)
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
                f"unknown {self.kind} {name!r}.{hint} Run `inpaintbench list` to see all {self.plural}."
            ) from None

    def _factory(self, name: str) -> tuple[Entry, Callable[..., Any]]:
        entry = self.entry(name)
        try:
            return entry, entry.resolve()
        except ImportError as err:
            raise MethodUnavailable(
                f"{self.kind} {name!r} needs a package that is not installed ({err}); "
                "install the matching extra, e.g. pip install -e '.[diffusion]' or '.[tf]'"
            ) from err
        except (Exception, SystemExit) as err:  # a plugin module that raises on import or names nothing
            raise MethodUnavailable(f"{self.kind} {name!r} could not be loaded from {entry.target!r}: "
                                    f"{type(err).__name__}: {err}") from err

    def create(self, name: str, **overrides: Any) -> Any:
        """Build the entry ``name`` with its defaults updated by ``overrides``.

        The options are checked against the target's signature before it is called
        (:func:`check_options`), and a ``TypeError`` / ``ValueError`` of the constructor
        becomes an :class:`~inpaintbench.core.errors.InputError` naming the entry and the options.

        Raises:
            UnknownName: ``name`` is not registered.
            MethodUnavailable: the target's optional extra or its weights are missing, or a
                plugin's module cannot be imported.
            InputError: unknown, missing or bad options.
        """
        entry, factory = self._factory(name)
        options = {**entry.defaults, **overrides}
        check_options(self.kind, name, factory, options)
        try:
            obj = factory(**options)
        except InpaintBenchError:
            raise
        except (TypeError, ValueError) as err:
            given = ", ".join(f"{k}={v!r}" for k, v in overrides.items()) or "its defaults"
            raise InputError(f"{self.kind} {name!r} cannot be built with {given}: {type(err).__name__}: {err}") from err
        try:
            obj.name = name
        except AttributeError:  # e.g. a frozen object: keep its own name
            pass
        return obj

    def availability(self, name: str, **overrides: Any) -> tuple[bool, str]:
        """``(True, "")`` if ``name`` builds here (with its defaults updated by ``overrides``),
        else ``(False, reason)``; never raises for a registered name (a broken plugin, a
        constructor that crashes: the reason says so).

        A target with a ``check_available(**config)`` callable (a method that would load a
        checkpoint the user did not ask to load just to be listed) is asked instead of built;
        it raises :class:`~inpaintbench.core.errors.MethodUnavailable` with the reason.
        """
        try:
            entry, factory = self._factory(name)
            probe = getattr(factory, "check_available", None)
            if callable(probe):
                probe(**{**entry.defaults, **overrides})
            else:
                self.create(name, **overrides)
        except MethodUnavailable as err:
            return False, str(err)
        except UnknownName:
            raise
        except (Exception, SystemExit) as err:  # noqa: BLE001 - a listing must survive any broken entry
            return False, f"{type(err).__name__}: {err}"
        return True, ""


#: The built-in catalogue, data rather than code (see its header for the keys).
CATALOG_FILE = Path(__file__).with_name("catalog.toml")


@cache
def builtin_entries(kind: str) -> tuple[Entry, ...]:
    """The built-in entries of ``kind`` (``"methods"``, ``"datasets"``, ``"masks"`` or
    ``"trainers"``) read from :data:`CATALOG_FILE`, in registration order."""
    with open(CATALOG_FILE, "rb") as handle:
        catalog = tomllib.load(handle)
    texts = catalog.get("trained_on", {})
    entries = []
    for item in catalog[kind]:
        item = dict(item)
        if item.get("trained_on") in texts:
            item["trained_on"] = texts[item["trained_on"]]
        entries.append(Entry(**item))
    return tuple(entries)


def _broken_plugin(reason: str) -> Callable[..., Any]:
    def refuse(**_: Any) -> Any:
        raise MethodUnavailable(reason)
    return refuse


def _plugin_entries(group: str, *, lazy: bool = True) -> list[Entry]:
    """The entries of an entry-point group.

    ``lazy`` (methods, datasets, mask families): nothing is imported here; an entry's target
    is the entry point's ``module:attribute``, imported when the entry is built, exactly like
    a built-in entry, so a broken plugin (missing module, import error, constructor that
    raises) is listed as unavailable with its reason and never touches runs that do not use
    it. Otherwise (trainers, whose entries carry settings read before building) the entry
    point is loaded here, and one that fails becomes an entry that is unavailable with the
    reason.
    """
    found = []
    for ep in entry_points(group=group):
        if lazy:
            found.append(Entry(name=ep.name, target=ep.value, group="plugin", summary=f"plugin {ep.value}"))
            continue
        try:
            obj = ep.load()
        except (Exception, SystemExit) as err:  # noqa: BLE001 - one broken plugin must not break the others
            reason = f"plugin {ep.name!r} ({ep.value}) could not be loaded: {type(err).__name__}: {err}"
            found.append(Entry(name=ep.name, target=_broken_plugin(reason), group="plugin", summary=reason))
            continue
        found.append(obj if isinstance(obj, Entry) else Entry(name=ep.name, target=obj, group="plugin"))
    return found


def _with_plugins(kind: str, builtins: Iterable[Entry], plugins: Iterable[Entry]) -> Registry:
    """A registry of ``builtins`` and the ``plugins`` whose names are free (a plugin cannot
    replace a built-in or an earlier plugin: it is ignored with a warning)."""
    entries = list(builtins)
    taken = {e.name for e in entries}
    for entry in plugins:
        if entry.name in taken:
            warn(f"plugin {kind} {entry.name!r} ({entry.target}) is ignored: that name is already registered")
            continue
        taken.add(entry.name)
        entries.append(entry)
    return Registry(kind, entries)


@cache
def method_registry() -> Registry:
    """All methods: the built-in catalogue plus ``inpaintbench.methods`` entry points."""
    return _with_plugins("method", builtin_entries("methods"), _plugin_entries("inpaintbench.methods"))


@cache
def dataset_registry() -> Registry:
    """All datasets: built-ins plus ``inpaintbench.datasets`` entry points."""
    return _with_plugins("dataset", builtin_entries("datasets"), _plugin_entries("inpaintbench.datasets"))


@cache
def mask_registry() -> Registry:
    """All mask families: built-ins plus ``inpaintbench.core.masks`` entry points."""
    return _with_plugins("mask family", builtin_entries("masks"), _plugin_entries("inpaintbench.core.masks"))


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
    return _with_plugins("trainer", builtin_entries("trainers"), _plugin_entries("inpaintbench.trainers", lazy=False))
