"""Imports in nectargan/ only point down the layers, and no modules import each other in a circle.

Every ``import`` statement counts, those inside functions and under ``TYPE_CHECKING``
too: a lazy import hides a circle from Python, not from a reader. The layers are
the table in docs/architecture.md; this test is what keeps that page true.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nectargan

PACKAGE = Path(nectargan.__file__).parent

# The layer of each top-level module or package of nectargan/ (higher imports lower).
# Units sharing a layer are siblings: they never import each other.
LAYERS: dict[str, int] = {
    "__init__": 0,  # only __version__
    "errors": 0,
    "experiment_layout": 0,
    "utils": 1,
    "scheduling": 2,
    "config": 3,
    "models": 4,
    "dataset": 4,
    "losses": 4,
    "metrics": 4,
    "visualizer": 4,
    "runs": 4,
    "trainers": 5,
    "inference": 6,
    "onnx": 7,  # ONNX export and inference build on inference/
    "review": 8,
    "toolbox": 9,
    "cli": 10,
    "__main__": 11,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(
    name: str, path: Path, known: set[str], typing_only: bool = True
) -> list[tuple[str, int]]:
    """``(module, line)`` for every import of one of ours in the file, at any depth.

    ``typing_only=False`` leaves out those under ``if TYPE_CHECKING:``: they name a
    type for an annotation and never run, so they make no circle (they still may
    not point up).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set() if typing_only else _typing_only_imports(tree)
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.level, node.module)
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return [(m, line) for m, line in found if m == "nectargan" or m.startswith("nectargan.")]


def _typing_only_imports(tree: ast.Module) -> set[ast.AST]:
    blocks = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    ]
    return {node for block in blocks for stmt in block.body for node in ast.walk(stmt)}


def _absolute(package: str, level: int, module: str | None) -> str:
    if not level:
        return module or ""
    parts = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(parts + ([module] if module else []))


def unit(module: str) -> str:
    """``nectargan.config.schema`` -> ``config``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph(typing_only: bool = True) -> dict[str, list[tuple[str, int]]]:
    modules = all_modules()
    known = set(modules)
    return {
        name: imported_modules(name, path, known, typing_only) for name, path in modules.items()
    }


def test_every_unit_of_the_package_has_a_layer():
    missing = sorted({unit(m) for m in all_modules()} - set(LAYERS))
    assert not missing, f"give these a layer in LAYERS and docs/architecture.md: {missing}"


def test_imports_only_point_down():
    wrong = []
    for source, targets in import_graph().items():
        for target, line in targets:
            a, b = unit(source), unit(target)
            if a != b and LAYERS[b] >= LAYERS[a]:
                kind = "a sibling" if LAYERS[b] == LAYERS[a] else "a higher layer"
                wrong.append(f"{source}:{line} imports {target} ({kind})")
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle():
    runtime = import_graph(typing_only=False)
    graph = {m: sorted({t for t, _ in targets}) for m, targets in runtime.items()}
    circles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert not circles, "\n".join(" <-> ".join(sorted(c)) for c in circles)


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (the graph is a few hundred nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, [])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def test_the_checks_see_a_circle_and_a_lazy_import(tmp_path):
    """The walk itself: an import inside a function counts, and a circle is found."""
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert [sorted(c) for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from ..cli import main\n    import nectargan.review\n")
    known = {"nectargan.cli.main"}
    found = imported_modules("nectargan.utils.lazy", source, known)
    assert found == [("nectargan.cli.main", 2), ("nectargan.review", 3)]


def test_the_architecture_page_shows_these_layers():
    """docs/architecture.md's layer table names every unit at the layer LAYERS gives it."""
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    documented: dict[str, int] = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in re.findall(r"`([^`]+)`", cells[1]):
                documented[name.removesuffix("/").removesuffix(".py")] = int(cells[0])
    assert documented == LAYERS
