"""`inpaintbench list`: methods, datasets, mask families, trainers, metrics and suites."""

from __future__ import annotations

import argparse

from inpaintbench.core.registry import dataset_registry, mask_registry, method_registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to ``sub``."""
    parser = sub.add_parser("list", help="list methods, datasets, mask families, metrics and suites")
    parser.add_argument("what", nargs="?", default="all",
                        choices=["all", "methods", "datasets", "masks", "trainers", "metrics", "suites"])
    parser.add_argument("--check", action="store_true",
                        help="say whether each method can be built here and, if not, why (weights and packages "
                             "are checked, not loaded: a few seconds)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inpaintbench.harness.suite import bundled_suites

    from inpaintbench.core.registry import trainer_registry

    registries = {"methods": method_registry(), "datasets": dataset_registry(), "masks": mask_registry(),
                  "trainers": trainer_registry()}
    wanted = [args.what] if args.what != "all" else [*registries, "metrics", "suites"]
    for what in wanted:
        if what == "suites":
            print("suites:\n" + "\n".join(f"  {s}" for s in bundled_suites()))
            continue
        if what == "metrics":
            print(metrics_listing())
            continue
        registry = registries[what]
        print(f"{what}:")
        checked = availability(registry) if what == "methods" and args.check else {}
        for name in registry.names():
            entry = registry.entry(name)
            status = ""
            if name in checked:
                ok, reason = checked[name]
                status = "  [available]" if ok else f"  [unavailable: {reason}]"
            group = f" ({entry.group})" if entry.group else ""
            trained = f" [trained on {entry.trained_on}]" if getattr(entry, "trained_on", "") else ""
            print(f"  {name:<22}{group:<19} {entry.summary}{trained}{status}")
    return 0


def availability(registry) -> dict[str, tuple[bool, str]]:
    """``name -> (available, reason)`` for every entry of ``registry``.

    Built-in entries (the catalogue's, unchanged) and entries that are objects of this
    process are asked here: each built-in method answers with a cheap ``check_available``
    (no network built, no diffusers / TensorFlow imported) or is a classical method whose
    build is cheap, so a child process would only add its own import of torch. Entries named
    by a ``module:attribute`` target from elsewhere (plugins) are probed in a child process
    (:func:`~inpaintbench.core.probing.probe_in_children`): a plugin that ends its process at
    import is listed unavailable, and its noise stays there.
    """
    from inpaintbench.core.probing import probe_in_children
    from inpaintbench.core.registry import builtin_entries

    names = registry.names()
    by_name = {name: registry.entry(name) for name in names}
    builtin = builtin_entries("methods") if registry.kind == "method" else ()
    remote = [(n, e.target, dict(e.defaults)) for n, e in by_name.items()
              if isinstance(e.target, str) and e not in builtin]
    found = probe_in_children(registry.kind, remote, children=1) if remote else {}
    found.update({n: registry.availability(n) for n in names if n not in found})
    return {name: found[name] for name in names}


def metrics_listing() -> str:
    """The metric tables as text: per-image metrics (record key, direction, what they are computed
    on, the network they need) and the set-level metrics of kept outputs."""
    from inpaintbench.metrics.table import METRICS, SET_METRICS

    lines = ["metrics (per image, in every record):"]
    for m in METRICS:
        needs = (f"  [needs LPIPS {m.lpips_net}: suite lpips_net = \"{m.lpips_net}\"]" if m.needs_lpips and m.lpips_net != "alex"
                 else "  [needs LPIPS weights]" if m.needs_lpips else "  [needs DISTS_pytorch + VGG16 weights: suite dists = true]" if m.needs_dists else "")
        lines.append(f"  {m.name:<15}{m.arrow} {m.title:<16} {m.description} ({m.output}, {m.region}){needs}")
    lines.append("metrics of a set of kept outputs (suite option fid = true; 2015-12-05 Inception features):")
    for m in SET_METRICS:
        lines.append(f"  {m.name:<15}{m.arrow} {m.title:<16} {m.description} (meaningful from {m.meaningful_from:,} images)")
    return "\n".join(lines)
