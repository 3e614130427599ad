"""Modules that are also verbs: ``edgepipe.export(...)`` calls :func:`edgepipe.api.export`.

``edgepipe.export``, ``edgepipe.compress``, ``edgepipe.evaluate`` and ``edgepipe.split`` name
both a module of edgepipe and a verb of its Python API. Python binds a package's attribute
to its submodule whenever the submodule is imported, so a function of the same name would
be replaced by the module the first time anything imported it. Instead each of those modules
is made callable: the attribute is always the module, and calling it runs the verb.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class VerbModule(types.ModuleType):
    """A module that, called, runs the function of :mod:`edgepipe.api` named like it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        verb = getattr(importlib.import_module("edgepipe.api"), self.__name__.rsplit(".", 1)[-1])
        return verb(*args, **kwargs)


def make_verb(name: str) -> None:
    """Make the module ``name`` (already in sys.modules: call it from the module itself)
    callable as the verb of :mod:`edgepipe.api` with its last name."""
    sys.modules[name].__class__ = VerbModule
