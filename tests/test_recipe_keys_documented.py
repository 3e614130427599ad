"""Every key a recipe takes is documented in docs/guide/run.md.

The keys come from the code that validates a recipe (the pydantic models of
``edgepipe.pipeline.recipe``, walked from ``Recipe``), and the keys of a variant's
``options``: the fields of ``SplitTraining`` for ``method: split`` and of each compression
method's config class. A key counts as documented when the guide has a table row for it
(a line starting ``| `key` |``).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from pydantic import BaseModel

from edgepipe.compress.config import METHODS, config_class
from edgepipe.pipeline.recipe import Recipe
from edgepipe.split.train import SplitTraining

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "run.md"


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``Variant``, ``list[TargetSpec]``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def recipe_keys(model: type[BaseModel] = Recipe, prefix: str = "") -> set[str]:
    """Every key of ``model`` and of the models below it, as dotted paths."""
    keys = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        keys.add(path)
        for inner in _models_in(field.annotation):
            keys |= recipe_keys(inner, path + ".")
    return keys


def option_keys() -> set[str]:
    """The keys a variant's ``options`` takes, for every method (``formats`` comes from the
    variant's own key, and split's ``seed`` from ``data.seed``)."""
    split = {f.name for f in dataclasses.fields(SplitTraining)} - {"seed"}
    methods = {f.name for method in METHODS for f in dataclasses.fields(config_class(method))}
    return split | (methods - {"formats"})


def documented() -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", GUIDE.read_text(encoding="utf-8"), re.M))


def test_the_walk_finds_every_section() -> None:
    keys = recipe_keys()
    for key in ("version", "model.spec", "data.seed", "variants.bottleneck", "targets.remote",
                "budget.max_drop", "profile.per_layer"):
        assert key in keys
    assert {"distill_epochs", "calibration", "rank_multiple", "binary_activations"} <= option_keys()


def test_every_recipe_key_is_in_the_guide() -> None:
    missing = sorted(key for key in recipe_keys() if key.rsplit(".", 1)[-1] not in documented())
    assert not missing, f"recipe keys missing from {GUIDE.name}: {', '.join(missing)}"


def test_every_option_key_is_in_the_guide() -> None:
    missing = sorted(option_keys() - documented())
    assert not missing, f"variant options missing from {GUIDE.name}: {', '.join(missing)}"
