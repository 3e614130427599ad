"""The layers of docs/architecture.md: a package imports only packages of its own layer or
below, at module level and inside functions alike."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "edgepipe"

LAYERS = [
    {"errors", "tensors", "formats", "__init__"},
    {"model", "zoo", "data"},
    {"runtime", "system", "training"},
    {"analysis"},
    {"rundir", "export", "evaluate", "profiles"},
    {"targets"},
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
