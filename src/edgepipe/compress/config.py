"""The registry of compression methods: one small config per method, each validated where
it is made, and the functions that find a method's config by name.

Each method's config lives in its folder (``int8/config.py``: int8 static, int8 dynamic and
fp16; ``int4/config.py``: int4-weight; ``lowbit/config.py``: wNaM; ``binary/config.py``; ``lowrank/config.py``); this module
registers them in :data:`METHODS` (``edgepipe.compress`` imports it, so the registry is full
whenever any part of compress is imported). A config says what it
produces; :func:`edgepipe.compress.compress` applies any of them through its ``backends``.
Configs round-trip through JSON (:meth:`CompressConfig.to_dict` / :func:`config_from_dict`),
so the manifest records exactly what ran.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgepipe.compress.binary.config import BinaryConfig
from edgepipe.compress.config_base import METHODS, CompressConfig, register
from edgepipe.compress.config_training import TrainingOptions
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int8.config import (
    CALIBRATIONS,
    Fp16Config,
    Int8DynamicConfig,
    Int8StaticConfig,
)
from edgepipe.compress.lowbit.config import (
    LOW_BIT_EXAMPLES,
    LOW_BIT_METHOD,
    LOW_BIT_WIDTHS,
    LowBitConfig,
)
from edgepipe.compress.lowrank.config import LowRankConfig
from edgepipe.errors import InputError

# The registry's entries, in the order the CLI lists them (post-training first): wNaM's usual
# members by name, then one line per method class. A new method is its folder (config and
# backend) plus one entry here.
for _name in LOW_BIT_EXAMPLES:
    METHODS[_name] = LowBitConfig
for _method in (LowRankConfig, BinaryConfig, Int8StaticConfig, Int8DynamicConfig, Fp16Config,
                Int4WeightConfig):
    register(_method)


def method_names() -> tuple[str, ...]:
    """Every method name the CLI offers: the registered ones (wNaM's usual members among
    them; any other N, M is also taken by :func:`make_config`), post-training ones first."""
    return tuple(sorted(METHODS, key=lambda name: issubclass(METHODS[name], TrainingOptions)))


def config_class(method: str) -> type[CompressConfig]:
    """The config class of ``method`` (``wNaM``: LowBitConfig); KeyError if none."""
    return LowBitConfig if LOW_BIT_METHOD.match(str(method)) else METHODS[method]


def method_formats(method: str) -> tuple[str, ...]:
    """The formats ``method`` can write (its config class's backends)."""
    return tuple(config_class(method).backends)


def config_from_dict(document: dict[str, Any]) -> CompressConfig:
    """A config from :meth:`CompressConfig.to_dict`'s output (e.g. read from a manifest)."""
    data = dict(document)
    method = data.pop("method", None)
    if method not in METHODS:
        raise InputError(f"Unknown compression method {method!r}.",
                         hint=f"methods: {', '.join(method_names())}.", reference="unknown-method")
    return make_config(method, **data)


def make_config(method: str, **options: Any) -> CompressConfig:
    """The config of ``method`` from keyword options; an option the method lacks is an error."""
    family = LOW_BIT_METHOD.match(str(method))
    if family:  # wNaM: N and M are the defaults of weight_bits and act_bits
        options.setdefault("weight_bits", int(family[1]))
        options.setdefault("act_bits", int(family[2]))
    elif method not in METHODS:
        raise InputError(f"Unknown compression method {method!r}.",
                         hint=f"methods: {', '.join(method_names())} (wNaM: any N, M).",
                         reference="unknown-method")
    cls = config_class(method)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(
            f"{', '.join(unknown)} do{'es' if len(unknown) == 1 else ''} not apply to "
            f"--method {method}.",
            hint=f"--method {method} takes: {', '.join(sorted(known))}.",
            reference="option-not-for-method")
    for key in ("formats", "exclude"):
        if key in options and isinstance(options[key], list):
            options[key] = tuple(options[key])
    return cls(**options)


__all__ = ["CALIBRATIONS", "LOW_BIT_EXAMPLES", "LOW_BIT_METHOD", "LOW_BIT_WIDTHS", "METHODS", "BinaryConfig",
           "CompressConfig", "Fp16Config", "Int4WeightConfig", "Int8DynamicConfig", "Int8StaticConfig",
           "LowBitConfig", "LowRankConfig", "TrainingOptions", "config_class",
           "config_from_dict", "make_config", "method_formats", "method_names", "register"]
