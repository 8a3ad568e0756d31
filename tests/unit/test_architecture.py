"""The layers of ARCHITECTURE.md, checked on the source: every import of the package (lazy ones
inside functions and ``TYPE_CHECKING`` blocks included) read with ``ast``, the ``package-dir``
mapping of pyproject.toml applied."""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Layers of the harness package, lowest first: a module may import its own layer and those before it.
LAYERS = ("core", "metrics", "store", "harness|report", "cli")
#: Modules over this many lines need a reason in their docstring (the word "long").
MAX_LINES = 650


def _package_dirs() -> dict[str, str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-dir"]


def _modules() -> dict[str, Path]:
    """``{dotted module name: file}`` of every installed module (perf/ and gpu/ are not installed)."""
    mods = {}
    for package, folder in _package_dirs().items():
        root = REPO / folder
        for path in root.rglob("*.py"):
            rel = path.relative_to(root)
            if rel.parts[0] in ("perf", "gpu") and folder == "benchmarks":
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if name not in mods or folder != "benchmarks":  # a mapped sub-package wins over a same-named folder
                mods[name] = path
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_package else name.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].add(target)
    return edges


def _cycles(edges: dict[str, set[str]], nodes) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    mods = _modules()
    return mods, _imports(mods)


def test_no_import_cycle_between_files(graph):
    mods, edges = graph
    assert _cycles(edges, mods) == []


def test_no_two_folders_import_each_other(graph):
    mods, edges = graph
    folder = {m: p.parent.relative_to(REPO).as_posix() for m, p in mods.items()}
    pairs = {(folder[a], folder[b]) for a, bs in edges.items() for b in bs if folder[a] != folder[b]}
    assert sorted((a, b) for a, b in pairs if (b, a) in pairs and a < b) == []


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "inpaintbench" or len(parts) < 2:
        return None
    for rank, names in enumerate(LAYERS):
        if parts[1] in names.split("|"):
            return rank
    return None


def test_each_layer_imports_only_the_layers_before_it(graph):
    _, edges = graph
    wrong = []
    for a, bs in edges.items():
        for b in bs:
            la, lb = _layer(a), _layer(b)
            if la is None or lb is None:
                continue
            if lb > la or (lb == la and a.split(".")[1] != b.split(".")[1]):  # harness and report never meet
                wrong.append(f"{a} -> {b}")
    assert wrong == []


def test_methods_baselines_and_datasets_import_no_harness_layer(graph):
    _, edges = graph
    allowed = {"core", "metrics", "methods", "baselines", "datasets"}
    wrong = [f"{a} -> {b}" for a, bs in edges.items() for b in bs
             if (a.split(".") + [""])[1] in ("methods", "baselines", "datasets") and (b.split(".") + [""])[1] not in allowed]
    assert wrong == []


def test_modules_are_short_or_say_why(graph):
    mods, _ = graph
    long = []
    for name, path in mods.items():
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "long" not in doc.lower():
                long.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
    assert long == []


def test_the_checker_sees_a_planted_cycle_and_a_layer_violation():
    """The checks above can fail: a cycle and an upward import are found in a planted graph."""
    edges = {"inpaintbench.core.a": {"inpaintbench.store.b"}, "inpaintbench.store.b": {"inpaintbench.core.a"}}
    assert _cycles(edges, edges) == [["inpaintbench.core.a", "inpaintbench.store.b"]]
    assert _layer("inpaintbench.store.b") > _layer("inpaintbench.core.a")
    assert _layer("inpaintbench.report.x") == _layer("inpaintbench.harness.y")
