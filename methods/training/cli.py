"""``inpaintbench train <method>``: train a learned method with the shared loop.

Each trainable method is one row of :data:`TRAINERS`: its name, the factory of its
:class:`~inpaintbench.methods.training.loop.TrainTask` (``"module:attribute"``, imported lazily)
and its default config file. A config file is TOML with three tables::

    [task]   keyword arguments of the task factory
    [data]   dataset = registry name, split, and any other dataset keyword arguments
    [train]  the fields of TrainConfig

Command-line flags override the file.
"""

from __future__ import annotations

import argparse
import importlib
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from inpaintbench.methods import CONFIG_DIR



class Trainer(NamedTuple):
    """A trainable method.

    Attributes:
        task_factory: ``"module:attribute"`` building the task from the ``[task]`` table
            (its ``from_dict`` when it has one, else called with the table as keywords).
        default_config: the TOML file used without ``--config``.
        train_fn: ``"module:attribute"`` of the loop; the shared torch loop for every method
            except the TensorFlow GAN, whose loop mirrors it.
    """

    task_factory: str
    default_config: Path
    train_fn: str = "inpaintbench.methods.training.loop:train"


#: name -> trainer; adding a learned method is one line here.
TRAINERS: dict[str, Trainer] = {
    "ddpm": Trainer("inpaintbench.methods.diffusion.ddpm:DDPMTask", CONFIG_DIR / "ddpm-mnist.toml"),
    "mask-predictor": Trainer("inpaintbench.methods.feedforward.mask_predictor:MaskPredictorTask", CONFIG_DIR / "mask-predictor-mnist.toml"),
    "lama": Trainer("inpaintbench.methods.feedforward.lama:LamaTask", CONFIG_DIR / "lama-mnist.toml"),
    "gan": Trainer("inpaintbench.methods.feedforward.gan_train:GANTask", CONFIG_DIR / "gan-mnist.toml",
                   "inpaintbench.methods.feedforward.gan_train:train_gan"),
    "gan-fc": Trainer("inpaintbench.methods.feedforward.gan_train:GANTask", CONFIG_DIR / "gan-fc-mnist.toml",
                      "inpaintbench.methods.feedforward.gan_train:train_gan"),
}


def _resolve(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` command (one sub-command per entry of :data:`TRAINERS`) to an
    argparse ``subparsers`` object; each sub-command's handler is stored as ``func``."""
    train = subparsers.add_parser("train", help="train a learned method with the shared training loop")
    methods = train.add_subparsers(dest="method", required=True, metavar="METHOD")
    for name, trainer in TRAINERS.items():
        sub = methods.add_parser(name, help=f"train {name} (default config {trainer.default_config.name})")
        _add_common_flags(sub, trainer)
        sub.set_defaults(func=run_train, trainer_name=name)
    return train


def _add_common_flags(parser: argparse.ArgumentParser, trainer: Trainer) -> None:
    parser.add_argument("--config", type=Path, default=trainer.default_config,
                        help=f"TOML with [task], [data], [train] tables (default: {trainer.default_config})")
    parser.add_argument("--dataset", help="dataset registry name (overrides [data].dataset)")
    parser.add_argument("--data-root", help="dataset root folder (e.g. ../shared/data)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, final/)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--num-threads", type=int)
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from OUT/checkpoint when present (default: on)")


def load_config(path: Path) -> dict[str, dict[str, Any]]:
    """The ``[task]``, ``[data]`` and ``[train]`` tables of a train config file."""
    from inpaintbench.api import InputError

    if not Path(path).is_file():
        raise InputError(f"train config {path} does not exist")
    with open(path, "rb") as f:
        data = tomllib.load(f)
    unknown = sorted(set(data) - {"task", "data", "train"})
    if unknown:
        raise InputError(f"{path}: unknown tables {unknown}; expected [task], [data], [train]")
    return {key: dict(data.get(key, {})) for key in ("task", "data", "train")}


def run_train(args: argparse.Namespace) -> Path:
    """Build the task, dataset and TrainConfig from ``args`` and run the training loop;
    returns the exported ``final`` folder."""
    from inpaintbench.api import InputError
    from inpaintbench.methods.training.loop import TrainConfig
    from inpaintbench.registry import dataset_registry

    trainer = TRAINERS[args.trainer_name]
    cfg = load_config(args.config)
    factory = _resolve(trainer.task_factory)
    task = factory.from_dict(cfg["task"]) if hasattr(factory, "from_dict") else factory(**cfg["task"])
    train = _resolve(trainer.train_fn)

    data = dict(cfg["data"])
    name = args.dataset or data.pop("dataset", None)
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
    print(f"training {args.trainer_name} on {name} ({len(dataset)} images) -> {args.out}")
    final = train(task, dataset, config, args.out, resume=args.resume)
    print(f"exported {final}")
    return final


def main(argv: list[str] | None = None) -> None:
    """``python -m inpaintbench.methods.training.cli METHOD ...`` (same flags as ``inpaintbench train``)."""
    parser = argparse.ArgumentParser(prog="inpaintbench")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    argv = list(argv) if argv is not None else None
    import sys

    args_list = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(["train", *args_list])
    args.func(args)


if __name__ == "__main__":
    main()
