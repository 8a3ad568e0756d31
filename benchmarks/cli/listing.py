"""`inpaintbench list`: methods, datasets, mask families, trainers and suites."""

from __future__ import annotations

import argparse

from inpaintbench.core.registry import dataset_registry, mask_registry, method_registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("list", help="list methods, datasets, mask families and suites")
    parser.add_argument("what", nargs="?", default="all", choices=["all", "methods", "datasets", "masks", "trainers", "suites"])
    parser.add_argument("--check", action="store_true", help="try to build each method and say why one is unavailable")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.harness.suite import bundled_suites

    from inpaintbench.core.registry import trainer_registry

    registries = {"methods": method_registry(), "datasets": dataset_registry(), "masks": mask_registry(),
                  "trainers": trainer_registry()}
    wanted = [args.what] if args.what != "all" else [*registries, "suites"]
    for what in wanted:
        if what == "suites":
            print("suites:\n" + "\n".join(f"  {s}" for s in bundled_suites()))
            continue
        registry = registries[what]
        print(f"{what}:")
        for name in registry.names():
            entry = registry.entry(name)
            status = ""
            if what == "methods" and args.check:
                ok, reason = registry.availability(name)
                status = "  [available]" if ok else f"  [unavailable: {reason}]"
            group = f" ({entry.group})" if entry.group else ""
            trained = f" [trained on {entry.trained_on}]" if getattr(entry, "trained_on", "") else ""
            print(f"  {name:<22}{group:<19} {entry.summary}{trained}{status}")
    return 0
