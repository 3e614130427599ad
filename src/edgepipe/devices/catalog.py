"""The device catalog: one YAML file per target under ``devices/catalog/``.

``load_catalog()`` reads and validates every file (a bad file is an error naming the
file and the key); ``get_target(name)`` returns one target, with close matches when the
name is unknown. ``host`` is filled in at run time from this machine (see
:mod:`edgepipe.devices.host`). Files whose name starts with ``_`` are not devices (the
estimator's calibration lives there).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import InputError, TargetError

CATALOG_DIR = Path(__file__).parent / "catalog"


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


@lru_cache(maxsize=4)
def _static_catalog(directory: str) -> dict[str, DeviceEntry]:
    files = sorted(p for p in Path(directory).glob("*.yaml") if not p.name.startswith("_"))
    targets = {}
    for path in files:
        target = load_target_file(path)
        targets[target.name] = target
    return targets


def load_catalog(directory: Path | None = None, *, detect_host: bool = True) -> dict[str, DeviceEntry]:
    """Every target of the catalog by name; ``host`` detected unless ``detect_host`` is False."""
    targets = dict(_static_catalog(str(directory or CATALOG_DIR)))
    if detect_host:
        from edgepipe.devices.host import detected

        for name, target in targets.items():
            if target.detect:
                targets[name] = detected(target)
    return targets


def get_target(name: str, directory: Path | None = None) -> DeviceEntry:
    """The target called ``name``; an unknown name lists the close ones."""
    static = _static_catalog(str(directory or CATALOG_DIR))
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
