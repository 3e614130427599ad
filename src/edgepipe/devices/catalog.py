"""The device catalog: one YAML file per target under ``devices/catalog/``, plus the user's.

``load_catalog()`` reads and validates every file (a bad file is an error naming the
file and the key); ``get_target(name)`` returns one target, with close matches when the
name is unknown. ``host`` is filled in at run time from this machine (see
:mod:`edgepipe.devices.host`). Files whose name starts with ``_`` are not devices (the
estimator's calibration lives there).

A user catalog is a folder of files of the same schema: ``--catalog DIR`` or the
``EDGEPIPE_CATALOG`` environment variable (the option wins). Its targets are added to the
bundled ones; a user file named like a bundled target is an error naming both files
(``target-name-clash``), never a silent override.
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import InputError, TargetError

CATALOG_DIR = Path(__file__).parent / "catalog"
CATALOG_ENV = "EDGEPIPE_CATALOG"


def load_target_file(path: Path) -> DeviceEntry:
    """One device file, validated; errors name the file and the key."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"Cannot read target file '{path}': {exc}",
                         hint="fix the YAML syntax.", reference="bad-target-file") from exc
    if not isinstance(data, dict):
        raise InputError(f"Target file '{path}' does not hold a mapping.",
                         hint="a target file is a YAML mapping (name, title, kind, ...).",
                         reference="bad-target-file")
    try:
        target = DeviceEntry.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise InputError(f"Target file '{path.name}' is invalid: {problems}",
                         hint="see edgepipe/devices/schema.py for the fields and their types.",
                         reference="bad-target-file",
                         details={"file": str(path), "errors": [_problem(e) for e in exc.errors()]}
                         ) from exc
    if target.name != path.stem:
        raise InputError(f"Target file '{path.name}' names itself {target.name!r}.",
                         hint=f"rename the file to {target.name}.yaml or set name: {path.stem}.",
                         reference="bad-target-file")
    return target


def _problem(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"key '{key}': {error['msg']}"


def target_files(directory: Path) -> list[Path]:
    """The device files of a catalog folder (``*.yaml``, not those starting with ``_``)."""
    return sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("_"))


@lru_cache(maxsize=4)
def _static_catalog(directory: str) -> dict[str, DeviceEntry]:
    return {target.name: target for target in map(load_target_file, target_files(Path(directory)))}


# The user catalog of the recipe being run (its `catalog:` key), see :func:`using`.
_RECIPE_CATALOG: ContextVar[Path | None] = ContextVar("recipe_catalog", default=None)


@contextmanager
def using(folder: Path | str | None) -> Iterator[None]:
    """Within the block, ``folder`` is the user catalog when no ``--catalog`` is given (a
    recipe's ``catalog:`` key; it wins over ``$EDGEPIPE_CATALOG``)."""
    token = _RECIPE_CATALOG.set(None if folder in (None, "") else Path(folder))
    try:
        yield
    finally:
        _RECIPE_CATALOG.reset(token)


def user_catalog_dir(option: Path | str | None = None) -> Path | None:
    """The user catalog folder: ``option`` (``--catalog``), else the recipe's ``catalog:``
    (:func:`using`), else ``$EDGEPIPE_CATALOG``, else None. A folder that is not there is
    an error (``bad-catalog-dir``)."""
    recipe = _RECIPE_CATALOG.get()
    given = option if option not in (None, "") else recipe or os.environ.get(CATALOG_ENV) or None
    if given is None:
        return None
    folder = Path(given).expanduser()
    if not folder.is_dir():
        said = "--catalog" if option not in (None, "") else (
            "the recipe's catalog:" if recipe else f"${CATALOG_ENV}")
        raise InputError(f"{said} {given}: no such folder.",
                         hint="give a folder of target YAML files (`edgepipe targets add FILE "
                         "--catalog DIR` creates it)" + (
                             f", or unset {CATALOG_ENV}" if said.startswith("$") else "") + ".",
                         reference="bad-catalog-dir")
    return folder


def user_targets(folder: Path, bundled: dict[str, DeviceEntry],
                 bundled_dir: Path = CATALOG_DIR) -> dict[str, DeviceEntry]:
    """The targets of a user catalog folder, each validated; one named like a bundled
    target is an error naming both files."""
    found = {}
    for path in target_files(folder):
        target = load_target_file(path)
        if target.name in bundled:
            raise clash_error(path, bundled_dir / f"{target.name}.yaml")
        found[target.name] = target
    return found


def clash_error(user_file: Path, bundled_file: Path) -> InputError:
    """The error for a user file that has a bundled target's name."""
    return InputError(
        f"Target file '{user_file}' is named {user_file.stem!r}, like the bundled target "
        f"'{bundled_file}'; a user target cannot replace a bundled one.",
        hint=f"rename the file and its `name:` (e.g. {user_file.stem}-mine), or remove it.",
        reference="target-name-clash",
        details={"file": str(user_file), "bundled": str(bundled_file)})


def _catalog(directory: Path | None, user: Path | str | None) -> dict[str, DeviceEntry]:
    bundled_dir = directory or CATALOG_DIR
    bundled = _static_catalog(str(bundled_dir))
    folder = user_catalog_dir(user)
    if folder is None:
        return dict(bundled)
    return {**bundled, **user_targets(folder, bundled, bundled_dir)}


def load_catalog(directory: Path | None = None, *, detect_host: bool = True,
                 user: Path | str | None = None) -> dict[str, DeviceEntry]:
    """Every target of the catalog by name, the user catalog's included (``user``, else
    ``$EDGEPIPE_CATALOG``); ``host`` detected unless ``detect_host`` is False."""
    targets = _catalog(directory, user)
    if detect_host:
        from edgepipe.devices.host import detected

        for name, target in targets.items():
            if target.detect:
                targets[name] = detected(target)
    return targets


def get_target(name: str, directory: Path | None = None, *,
               user: Path | str | None = None) -> DeviceEntry:
    """The target called ``name`` (bundled, or in the user catalog: ``user``, else
    ``$EDGEPIPE_CATALOG``); an unknown name lists the close ones."""
    static = _catalog(directory, user)
    key = name.strip().lower()
    if key not in static:
        close = difflib.get_close_matches(key, list(static), n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(close)}? " if close else "") + \
            "`edgepipe targets list` shows every target."
        raise TargetError(f"No target called {name!r}.", hint=hint, reference="unknown-target",
                          details={"close_matches": close, "known": sorted(static)})
    target = static[key]
    if target.detect:
        from edgepipe.devices.host import detected

        return detected(target)
    return target


class _Plain:
    """A flat frozen dataclass whose JSON form is its fields."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Problem(_Plain):
    """One target file that does not validate, and why."""

    file: str
    message: str
    reference: str


@dataclass(frozen=True)
class Validation:
    """What ``edgepipe targets validate`` found: the files read, the targets they define
    and the problems (none when every file is valid)."""

    files: tuple[str, ...]
    targets: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"files": list(self.files), "targets": list(self.targets),
                "problems": [p.to_dict() for p in self.problems]}


def validate_targets(path: Path) -> Validation:
    """Check a target file, or every target file of a folder, against the schema and the
    bundled names; every problem is collected, not only the first."""
    if path.is_dir():
        files = target_files(path)
    elif path.is_file():
        files = [path]
    else:
        raise InputError(f"{path}: no such file or folder.",
                         hint="give a target YAML file or a folder of them.",
                         reference="bad-catalog-dir")
    if not files:
        raise InputError(f"{path} holds no target files (*.yaml).",
                         hint="a target is one YAML file named after the target.",
                         reference="bad-catalog-dir")
    bundled = _static_catalog(str(CATALOG_DIR))
    names, problems = [], []
    for file in files:
        try:
            found = check_user_file(file, bundled)
        except InputError as exc:
            problems.append(Problem(str(file), exc.message, exc.reference))
        else:
            names.append(found.name)
    return Validation(tuple(map(str, files)), tuple(names), tuple(problems))


def check_user_file(file: Path, bundled: dict[str, DeviceEntry] | None = None) -> DeviceEntry:
    """A user target file, validated, whose name is not a bundled target's."""
    if file.suffix != ".yaml":
        raise InputError(f"Target file '{file}' does not end in .yaml.",
                         hint=f"name it {file.stem}.yaml.", reference="bad-target-file")
    target = load_target_file(file)
    if target.name in (bundled if bundled is not None else _static_catalog(str(CATALOG_DIR))):
        raise clash_error(file, CATALOG_DIR / f"{target.name}.yaml")
    return target


@dataclass(frozen=True)
class AddedTarget(_Plain):
    """A target file copied into the user catalog (``edgepipe targets add``)."""

    name: str
    file: str
    replaced: bool


def add_target(file: Path, folder: Path, *, force: bool = False) -> AddedTarget:
    """Validate ``file`` and copy it into the user catalog ``folder`` (created if needed);
    an existing file of that name is replaced only with ``force``."""
    target = check_user_file(file)
    destination = folder / f"{target.name}.yaml"
    existed = destination.exists()
    if existed and not force:
        raise InputError(f"The user catalog already has '{destination}'.",
                         hint="pass --force to replace it, or rename the target.",
                         reference="target-exists", details={"file": str(destination)})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / f".{target.name}.yaml.{os.getpid()}.tmp"
        shutil.copyfile(file, staged)
        os.replace(staged, destination)
    except OSError as exc:
        raise InputError(f"Cannot write '{destination}': {exc.strerror or exc}.",
                         hint="pick a user catalog folder you can write to.",
                         reference="bad-catalog-dir") from exc
    return AddedTarget(target.name, str(destination), existed)
