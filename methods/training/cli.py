"""``inpaintbench train <method>``: train a learned method with the suite's one training loop.

Trainable methods are the entries of :func:`inpaintbench.core.registry.trainer_registry` (the
``trainers`` of the built-in catalogue (``core/catalog.toml``) plus plugins of the entry-point group
``inpaintbench.trainers``): each names its task factory, its default config file and its loop.
A config file is TOML with three tables::

    [task]   keyword arguments of the task factory
    [data]   dataset = registry name, split, and any other dataset keyword arguments
    [train]  the fields of TrainConfig

Command-line flags override the file.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from inpaintbench.methods import CONFIG_DIR


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` command to an argparse ``subparsers`` object; its handler
    (:func:`run_train`) is stored as ``func``. The method name is resolved at run time
    through the trainer registry (did-you-mean hints, plugins), so building the parser
    imports no method."""
    from inpaintbench.core.registry import builtin_entries

    train = subparsers.add_parser("train", help="train a learned method with the shared training loop")
    train.add_argument("method", metavar="METHOD",
                       help=f"trainer name: {', '.join(e.name for e in builtin_entries('trainers'))}, or a plugin's "
                            "(entry-point group inpaintbench.trainers)")
    train.add_argument("--config", type=Path,
                       help="TOML with [task], [data], [train] tables (default: the trainer's, "
                            f"in {CONFIG_DIR})")
    train.add_argument("--dataset", help="dataset registry name (overrides [data].dataset)")
    train.add_argument("--data-root", help="dataset root folder (e.g. ../shared/data)")
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, final/)")
    train.add_argument("--steps", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="device, e.g. cpu or cuda")
    train.add_argument("--num-threads", type=int)
    train.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="continue from OUT/checkpoint when present (default: on)")
    train.set_defaults(func=run_train)
    return train


def load_config(path: Path) -> dict[str, dict[str, Any]]:
    """The ``[task]``, ``[data]`` and ``[train]`` tables of a train config file (each a dict,
    empty when the file has no such table); :class:`InputError` for a missing file or an
    unknown table."""
    from inpaintbench.core.errors import InputError

    if not Path(path).is_file():
        raise InputError(f"train config {path} does not exist")
    with open(path, "rb") as f:
        data = tomllib.load(f)
    unknown = sorted(set(data) - {"task", "data", "train"})
    if unknown:
        raise InputError(f"{path}: unknown tables {unknown}; expected [task], [data], [train]")
    return {key: dict(data.get(key, {})) for key in ("task", "data", "train")}


def _trainer_entry(name: str):
    from inpaintbench.core.registry import UnknownName, trainer_registry

    registry = trainer_registry()
    try:
        return registry.entry(name)
    except UnknownName as err:
        # The registry's hint points at `inpaintbench list`, which lists methods, datasets and
        # masks but not trainers: keep its did-you-mean part and name the trainers instead.
        hint = str(err).split(" Run `inpaintbench list`", 1)[0]
        raise UnknownName(f"{hint} Trainers: {', '.join(registry.names())}.") from None


def run_train(args: argparse.Namespace) -> Path:
    """Build the task, dataset and TrainConfig from ``args`` (the ``train`` command's flags)
    and run the trainer's loop; returns the exported ``final`` folder.

    Raises:
        UnknownName: ``args.method`` is not a trainer (the message has close matches).
        MethodUnavailable: the trainer needs an extra that is not installed.
        InputError: no config file, a bad config, or no dataset.
    """
    from inpaintbench.core.errors import InputError, MethodUnavailable
    from inpaintbench.methods.training.shell import TrainConfig
    from inpaintbench.core.registry import TORCH_LOOP, dataset_registry, resolve_target

    entry = _trainer_entry(args.method)
    config_path = args.config
    if config_path is None:
        if "config" not in entry.defaults:
            raise InputError(f"trainer {args.method!r} has no default config: pass --config")
        config_path = CONFIG_DIR / entry.defaults["config"]  # an absolute path stays as it is
    cfg = load_config(config_path)
    try:
        factory = entry.resolve()
        train = resolve_target(entry.defaults.get("loop", TORCH_LOOP))
    except ImportError as err:
        raise MethodUnavailable(
            f"trainer {args.method!r} needs a package that is not installed ({err}); "
            "install the matching extra, e.g. pip install -e '.[diffusion]' or '.[tf]'"
        ) from err
    task = factory.from_dict(cfg["task"]) if hasattr(factory, "from_dict") else factory(**cfg["task"])

    data = dict(cfg["data"])
    name = args.dataset or data.get("dataset")
    data.pop("dataset", None)
    if name is None:
        raise InputError("no dataset: pass --dataset or set [data].dataset in the config")
    if args.data_root is not None:
        data["root"] = args.data_root
    dataset = dataset_registry().create(name, **data)

    config = TrainConfig.from_dict(
        cfg["train"], steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        device=args.device, num_threads=args.num_threads,
    )
    print(f"training {args.method} on {name} ({len(dataset)} images) -> {args.out}")
    final = train(task, dataset, config, args.out, resume=args.resume)
    print(f"exported {final}")
    return final
