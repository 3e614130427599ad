"""No untyped document crosses a package boundary: a public function or method whose name is
used in another top-level package of src/edgepipe takes and returns typed values
(dataclasses with to_dict/from_dict), not ``dict[str, Any]`` (docs/architecture.md,
"Typed documents"). ``to_dict``/``from_dict`` themselves are the edge where a document
becomes JSON and back, so they may; a value that is JSON by nature (a cached step result,
an error's details) says so with ``edgepipe.json_types.JsonObject``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "edgepipe"
UNTYPED = re.compile(r"\b(?:dict|Dict|Mapping|MutableMapping)\[str, (?:Any|object)\]")
EDGES = {"to_dict", "from_dict", "to_json", "from_json"}


def _package(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _aliases(tree: ast.Module) -> set[str]:
    """Module-level names bound to an untyped dict type (``Json = dict[str, Any]``)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and UNTYPED.search(ast.unparse(node.value)):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and node.value is not None \
                and isinstance(node.target, ast.Name) and UNTYPED.search(ast.unparse(node.value)):
            names.add(node.target.id)
    return names


def _untyped_signatures() -> list[tuple[str, str, str, bool]]:
    """(package, name, where, is a method) of every public def with an untyped dict in its signature."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        aliases = _aliases(tree)
        pattern = UNTYPED if not aliases else re.compile(
            UNTYPED.pattern + "|" + "|".join(rf"\b{re.escape(a)}\b" for a in aliases))

        def visit(node: ast.AST, owner: str, private: bool, path: Path = path,
                  pattern: re.Pattern[str] = pattern) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    visit(child, owner + child.name + ".", private or child.name.startswith("_"))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = child.name
                    if private or name in EDGES or (name.startswith("_")
                                                    and name != "__init__"):
                        continue
                    args = child.args
                    notes = [a.annotation for a in (*args.posonlyargs, *args.args,
                                                    *args.kwonlyargs, args.vararg, args.kwarg)
                             if a is not None] + [child.returns]
                    if any(n is not None and pattern.search(ast.unparse(n)) for n in notes):
                        where = f"{path.relative_to(SRC)}:{child.lineno} {owner}{name}"
                        method = bool(owner) and name != "__init__"
                        public = owner[:-1].split(".")[-1] if name == "__init__" else name
                        found.append((_package(path), public, where, method))
        visit(tree, "", False)
    return found


def _imported_names() -> dict[str, set[str]]:
    """Top-level package -> the names other packages import from it (``from edgepipe.p.m
    import name``), or reach as an attribute of one of its modules (``m.name``)."""
    imported: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        here = _package(path)
        tree = ast.parse(path.read_text(), str(path))
        modules = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.startswith("edgepipe."):
                package = node.module.split(".")[1]
                if package != here:
                    for alias in node.names:
                        imported.setdefault(package, set()).add(alias.name)
                        modules[alias.asname or alias.name] = package
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("edgepipe.") and alias.name.split(".")[1] != here:
                        modules[alias.asname or alias.name.split(".")[-1]] = alias.name.split(".")[1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in modules:
                imported.setdefault(modules[node.value.id], set()).add(node.attr)
    return imported


def test_no_untyped_dict_crosses_a_package():
    sources = {path: path.read_text() for path in SRC.rglob("*.py")}
    imported = _imported_names()
    crossing = []
    for package, name, where, method in _untyped_signatures():
        if method:      # called as .name( from another package
            called = re.compile(rf"\.{re.escape(name)}\(")
            used = any(_package(path) != package and called.search(text)
                       for path, text in sources.items())
        else:
            used = name in imported.get(package, set())
        if used:
            crossing.append(where)
    assert not crossing, (f"{len(crossing)} public signatures used from another package take "
                          "or return dict[str, Any]:\n" + "\n".join(crossing))
