"""The layers of docs/architecture.md: a package imports only packages of its own layer or
below, at module level and inside functions alike."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "edgepipe"

LAYERS = [
    {"errors", "error_references", "json_types", "tensors", "formats", "documents", "units",
     "progress", "native_logs", "training_settings",
     "__init__"},
    {"model", "zoo", "data"},
    {"runtime", "system", "training"},
    {"analysis"},
    {"rundir", "recorded", "export", "evaluate", "devices"},
    {"profiling"},
    {"compress", "split", "serve"},
    {"pipeline", "cli", "api", "__main__"},
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.startswith("edgepipe.")]
    return found


def test_every_package_has_a_layer():
    packages = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SRC.glob("*")
                if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())}
    assert packages <= set(LAYER), sorted(packages - set(LAYER))


def test_no_package_imports_a_higher_layer():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        source = path.relative_to(SRC).parts[0].removesuffix(".py")
        for line, module in _imports(path):
            target = module.split(".")[1]
            if LAYER[target] > LAYER[source]:
                upward.append(f"{path.relative_to(SRC)}:{line} ({source}, layer "
                              f"{LAYER[source]}) imports {module} (layer {LAYER[target]})")
    assert not upward, "\n".join(upward)


def _module_name(path: Path) -> str:
    parts = ("edgepipe",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The edgepipe modules ``path`` imports when it runs (module level or inside functions;
    not under ``if TYPE_CHECKING:``). ``from a import b`` names module a.b when that is one."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name in modules}


def test_no_import_circles():
    """No two modules import each other, directly or around a loop, even from inside a
    function (a function-level import that only hides a circle is still a circle)."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: _runtime_imports(path, set(paths)) - {name} for name, path in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)
