"""Benchmark suites: which methods, datasets and mask families to cross, read from TOML.

A suite file looks like::

    [run]
    seed = 0
    n_images = 32
    batch_size = 32

    [[datasets]]
    name = "mnist-sample"

    [[masks]]
    name = "disc"                # the registry name
    label = "disc-0.3"           # how results and tables call it (default: the name)
    radius_fraction = 0.3        # every other key is a constructor argument

    [[methods]]
    name = "telea"

A bare string is shorthand for a table with just a name: ``masks = ["wide", "half"]``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from inpaintbench.core.errors import InputError
from inpaintbench.store.artifacts import safe_name
from inpaintbench.core.identity import config_hash

TASKS = ("inpainting", "super-resolution")


@dataclass(frozen=True)
class Spec:
    """One method, dataset or mask family of a suite: a registry name, a label and overrides."""

    name: str
    label: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Stable hash of name + overrides: part of every result's key."""
        return config_hash({"name": self.name, **self.config})

    @classmethod
    def parse(cls, item: str | dict[str, Any], where: str) -> "Spec":
        """A spec from a bare name or a TOML table with ``name`` (and optional ``label``)."""
        if isinstance(item, str):
            return cls(item, item)
        if not isinstance(item, dict) or "name" not in item:
            raise InputError(f"each entry of {where} needs a 'name', got {item!r}")
        config = {k: v for k, v in item.items() if k not in ("name", "label")}
        return cls(str(item["name"]), str(item.get("label", item["name"])), config)


@dataclass(frozen=True)
class Suite:
    """Everything a run needs to know.

    Attributes:
        name: the suite's name (file stem), shown in reports.
        task: ``"inpainting"`` or ``"super-resolution"`` (then ``scales`` replaces ``masks``).
        seed: suite seed; mask and method randomness derive from it and the sample id.
        n_images: images taken from each dataset (the first ``n_images``).
        batch_size: images per method call.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        n_examples: images per (dataset, mask, method) kept for the comparison grids.
        band_px: width of the boundary band around the holes, in pixels.
        lpips_net: LPIPS backbone (``alex``, the default, ``vgg``, ``squeeze``); its values are
            recorded under ``lpips``, ``lpips_vgg``, ``lpips_squeeze``.
        scales: super-resolution factors (task ``super-resolution`` only).
        num_threads: torch CPU threads during the run (None: torch's default).
        fid: keep every composited output (and the originals) so that the report adds FID and
            KID columns (:mod:`inpaintbench.fid`; about 0.85 s per image on a CPU, so off by default).
        dists: compute DISTS per sample (:mod:`inpaintbench.metrics.dists_metric`: the
            ``DISTS_pytorch`` package, VGG16 backbone from the LPIPS weights, recorded under
            ``dists``); off by default for its cost (one core, busy machine: 0.15 s per image at
            32 px, 3.1 s at 256 px, 27 and 19 times LPIPS (alex); :mod:`inpaintbench.metrics.options`).
        call_timeout_s: seconds one method call (one batch) may take; a call that runs longer
            is killed and its batch becomes error records (None: no limit). Calls then run in
            the method's sealed child process (see :mod:`inpaintbench.harness.sealed`).
        sealed: run every method in a sealed child process that never holds the ground truth
            (True), none (False), or as the default says (None: the methods of entry points;
            :mod:`inpaintbench.harness.sealed`). A call timeout always seals.

    Every value is checked when the suite is made (types included: ``seed = "0"`` is refused,
    not hashed as another seed), and so is every label: labels name folders and files.
    """

    name: str
    datasets: tuple[Spec, ...]
    methods: tuple[Spec, ...]
    masks: tuple[Spec, ...] = ()
    task: str = "inpainting"
    seed: int = 0
    n_images: int = 32
    batch_size: int = 16
    device: str = "auto"
    n_examples: int = 6
    band_px: int = 2
    lpips_net: str = "alex"
    scales: tuple[int, ...] = (2, 4)
    num_threads: int | None = None
    shard_size: int = 32
    fid: bool = False
    dists: bool = False
    call_timeout_s: float | None = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None
    memory_budget_gb: float | None = None
    sealed: bool | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"suite task must be one of {TASKS}, got {self.task!r}")
        where = f"suite {self.name!r}: [run]"
        for key, minimum, flag in (("seed", None, "--seed"), ("n_images", 1, "--n-images"),
                                   ("batch_size", 1, "--batch-size"), ("n_examples", 0, None),
                                   ("band_px", 0, None), ("num_threads", 1, "--num-threads"),
                                   ("shard_size", 1, "--shard-size")):
            value = getattr(self, key)
            if key == "num_threads" and value is None:
                continue
            also = f" ({flag})" if flag else ""
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"{where} {key}{also} must be an integer, got {value!r} "
                                 f"({type(value).__name__}); write it without quotes")
            if minimum is not None and value < minimum:
                raise InputError(f"{where} {key}{also} must be >= {minimum}, got {value!r}")
        timeout = self.call_timeout_s
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout > 0):
            raise InputError(f"{where} call_timeout_s (--call-timeout) must be a number of seconds > 0, got {timeout!r}")
        if self.sealed is not None and not isinstance(self.sealed, bool):
            raise InputError(f"{where} sealed (--sealed) must be true or false, got {self.sealed!r}")
        budget = self.memory_budget_gb
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0):
            raise InputError(f"{where} memory_budget_gb (--memory-budget-gb) must be a number of GiB > 0, "
                             f"got {budget!r}")
        for key in ("fid", "dists"):  # a quoted "false" would be true
            if not isinstance(getattr(self, key), bool):
                raise InputError(f"{where} {key} must be true or false, got {getattr(self, key)!r}")
        for key in ("device", "lpips_net"):
            if not isinstance(getattr(self, key), str):
                raise InputError(f"{where} {key} must be a string, got {getattr(self, key)!r}")
        from inpaintbench.metrics.lpips_metric import BACKBONE_FILES  # light: lpips itself loads lazily

        if self.lpips_net not in BACKBONE_FILES:  # refused here, before any method is built
            raise InputError(f"{where} lpips_net must be an LPIPS backbone ({', '.join(BACKBONE_FILES)}), "
                             f"got {self.lpips_net!r}")
        if not isinstance(self.scales, tuple) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 2 for s in self.scales):
            raise InputError(f"{where} scales must be integers >= 2, got {self.scales!r}")
        for kind, specs in (("method", self.methods), ("dataset", self.datasets), ("mask", self.masks)):
            for spec in specs:
                label = spec.label
                if not label or label.startswith(".") or any(ord(c) < 32 or ord(c) == 127 for c in label):
                    raise InputError(
                        f"suite {self.name!r}: {kind} label {label!r} cannot name a folder (labels name the "
                        "result files: no empty label, none starting with '.', no control characters); "
                        "pick another label")
        try:
            self.acceleration  # noqa: B018 - validates precision / channels_last / compile
        except InputError as err:
            raise InputError(f"{where} {err}") from None
        if not self.datasets or not self.methods or (self.task == "inpainting" and not self.masks):
            raise InputError(f"suite {self.name!r} needs at least one dataset, one method and one mask family")
        for kind, specs in (("method", self.methods), ("dataset", self.datasets), ("mask", self.masks)):
            labels = [s.label for s in specs]
            if len(set(labels)) != len(labels):
                raise InputError(f"suite {self.name!r} has two {kind}s with the same label: {labels}")
            files: dict[str, str] = {}
            for label in labels:  # examples, heat maps and unit files are named by safe_name(label)
                other = files.setdefault(safe_name(label), label)
                if other != label:
                    raise InputError(f"suite {self.name!r}: {kind} labels {other!r} and {label!r} would share the "
                                     f"file name {safe_name(label)!r} (labels name the result files); rename one")

    @property
    def acceleration(self):
        """The run's :class:`~inpaintbench.harness.acceleration.Acceleration` of its torch methods
        (``precision``, ``channels_last``, ``compile``, ``compile_mode``)."""
        from inpaintbench.harness.acceleration import Acceleration

        return Acceleration(precision=self.precision, channels_last=self.channels_last, compile=self.compile,
                            compile_mode=self.compile_mode)

    def conditions(self) -> tuple:
        """The task conditions of the suite, one per mask family (inpainting) or per scale
        (super-resolution): :class:`inpaintbench.core.conditions.Condition` objects."""
        from inpaintbench.core.conditions import MaskCondition, ScaleCondition

        if self.task == "super-resolution":
            return tuple(ScaleCondition(scale) for scale in self.scales)
        return tuple(MaskCondition(spec.name, spec.label, spec.config) for spec in self.masks)

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> "Suite":
        """A suite from parsed TOML (see the module docstring for the layout)."""
        unknown = set(data) - {"run", "datasets", "masks", "methods"}
        if unknown:
            raise InputError(f"suite {name!r}: unknown top-level keys {sorted(unknown)}")
        run = dict(data.get("run", {}))
        if "scales" in run:
            run["scales"] = tuple(run["scales"])
        fields = set(cls.__dataclass_fields__) - {"name", "datasets", "methods", "masks"}
        bad = set(run) - fields
        if bad:
            raise InputError(f"suite {name!r}: unknown [run] keys {sorted(bad)}; known: {sorted(fields)}")
        parse = lambda key: tuple(Spec.parse(item, f"[[{key}]]") for item in data.get(key, []))  # noqa: E731
        return cls(name=name, datasets=parse("datasets"), methods=parse("methods"), masks=parse("masks"), **run)

    def with_overrides(self, *, methods: Iterable[str] | None = None, datasets: Iterable[str] | None = None,
                       masks: Iterable[str] | None = None, dataset_options: dict[str, Any] | None = None,
                       data_root: str | None = None, **run: Any) -> "Suite":
        """A copy with some lists replaced by bare names and some [run] values replaced.

        A name already in the suite keeps its configured spec; ``None`` values are ignored.
        ``dataset_options`` (e.g. ``{"size": 64}``) are set on every dataset except the
        embedded sample, which takes no options.

        ``data_root`` (default ``$INPAINTBENCH_DATA_ROOT``) fills the datasets' roots: a suite
        with several datasets writes each root as a template, ``root = "{data_root}/celeba"``;
        a dataset without a root takes ``data_root`` itself, which is refused as ambiguous
        when two or more datasets would take it.
        """
        def pick(current: tuple[Spec, ...], names: Iterable[str] | None) -> tuple[Spec, ...]:
            if names is None:
                return current
            by_label = {s.label: s for s in current}
            return tuple(by_label.get(n, Spec(n, n)) for n in names)

        changes = {k: v for k, v in run.items() if v is not None}
        chosen = pick(self.datasets, datasets)
        if dataset_options:
            chosen = tuple(s if s.name == "mnist-sample" else Spec(s.name, s.label, {**s.config, **dataset_options})
                           for s in chosen)
        root = data_root or os.environ.get(DATA_ROOT_ENV)
        chosen = _fill_roots(self.name, chosen, root)
        chosen_methods, chosen_masks = pick(self.methods, methods), pick(self.masks, masks)
        if root is not None:  # the placeholder also names mask folders and checkpoints (paper suites)
            chosen_methods, chosen_masks = _substitute(chosen_methods, root), _substitute(chosen_masks, root)
        else:
            _require_no_placeholder(self.name, (*chosen_methods, *chosen_masks))
        return replace(self, methods=chosen_methods, datasets=chosen, masks=chosen_masks, **changes)


#: Environment variable giving ``--data-root`` when the flag is absent.
DATA_ROOT_ENV = "INPAINTBENCH_DATA_ROOT"
#: The placeholder a dataset's ``root`` may contain.
DATA_ROOT_PLACEHOLDER = "{data_root}"
#: Datasets shipped with the package or its dependencies: they read no root.
EMBEDDED_DATASETS = ("mnist-sample", "photos")


def _fill_roots(suite: str, specs: tuple[Spec, ...], data_root: str | None) -> tuple[Spec, ...]:
    """Put ``data_root`` into the datasets' roots (see :meth:`Suite.with_overrides`)."""
    needs_root = [s for s in specs if s.name not in EMBEDDED_DATASETS and "root" not in s.config]
    templated = [s for s in specs if DATA_ROOT_PLACEHOLDER in str(s.config.get("root", ""))]
    if data_root is not None and len(needs_root) > 1:
        raise InputError(f"--data-root is ambiguous for suite {suite!r}: datasets {[s.label for s in needs_root]} "
                         f"would all read {data_root}; give each a root in the suite file "
                         f'(root = "{DATA_ROOT_PLACEHOLDER}/<folder>") or pick one with --datasets')
    if templated and data_root is None:
        raise InputError(f"suite {suite!r} reads its data under a data root: pass --data-root (the folder holding "
                         f"{', '.join(str(s.config['root']).replace(DATA_ROOT_PLACEHOLDER + '/', '') for s in templated)}) "
                         f"or set ${DATA_ROOT_ENV}")
    if data_root is None:
        return specs
    out = []
    for spec in specs:
        config = dict(spec.config)
        if spec in templated:
            config["root"] = str(config["root"]).replace(DATA_ROOT_PLACEHOLDER, str(data_root))
        elif spec in needs_root:
            config["root"] = str(data_root)
        out.append(Spec(spec.name, spec.label, config))
    return tuple(out)


def _substitute(specs: tuple[Spec, ...], data_root: str) -> tuple[Spec, ...]:
    """``{data_root}`` replaced in every string value (nested tables included) of ``specs``."""
    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(DATA_ROOT_PLACEHOLDER, str(data_root))
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return tuple(Spec(s.name, s.label, fill(s.config)) for s in specs)


def _require_no_placeholder(suite: str, specs: tuple[Spec, ...]) -> None:
    used = [s.label for s in specs if DATA_ROOT_PLACEHOLDER in repr(s.config)]
    if used:
        raise InputError(f"suite {suite!r} reads {', '.join(used)} under a data root: pass --data-root or set "
                         f"${DATA_ROOT_ENV}")


def bundled_suites() -> list[str]:
    """Names of the suites shipped in the package (``inpaintbench/suites/*.toml``)."""
    folder = resources.files("inpaintbench") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_suite(name_or_path: str | os.PathLike) -> Suite:
    """Read a suite from a TOML file path, or by the name of a bundled suite (``default``)."""
    path = Path(name_or_path)
    bundled = resources.files("inpaintbench") / "suites" / f"{name_or_path}.toml"
    # A bundled name wins over a folder (or file without .toml) of the same name in the working
    # directory: `results/default`-style folders are common, suite files end in .toml.
    named = path.suffix != ".toml" and path.name == str(name_or_path) and bundled.is_file()
    if not named and (path.suffix == ".toml" or path.exists()):
        if not path.is_file():
            raise InputError(f"suite file {path} does not exist" if not path.exists() else
                             f"suite {path} is a folder, not a suite file; pass a .toml file or a bundled suite "
                             f"({', '.join(bundled_suites())})")
        text, name = path.read_text(encoding="utf-8"), path.stem
    else:
        if not bundled.is_file():
            raise InputError(f"no suite file {name_or_path!r}; bundled suites: {', '.join(bundled_suites())}")
        text, name = bundled.read_text(encoding="utf-8"), str(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"suite {name!r} is not valid TOML: {err}") from err
    return Suite.from_dict(name, data)
