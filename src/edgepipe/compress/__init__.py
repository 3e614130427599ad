"""Compression: one config per method, one verb (:func:`compress`) for all of them.

One folder per method family, each with its config and its backends (one module per
format, imported only when used): ``int8/`` (int8 static, int8 dynamic, fp16: ``ort`` for
ONNX, ``openvino`` for NNCF, ``litert`` for PT2E), ``lowbit/`` (wNaM with Brevitas, PTQ or
QAT), ``binary/`` (ONNX + packed weights: binarized weights and activations, trained by
distillation), ``lowrank/`` (SVD / Tucker-2 factorization). The shared machinery (the verb
in ``api``, the results, the budget, samples, checkpoints, distillation) sits here.
"""

import importlib
from typing import Any

from edgepipe.compress.config import (
    CALIBRATIONS,
    METHODS,
    BinaryConfig,
    CompressConfig,
    Fp16Config,
    Int8DynamicConfig,
    Int8StaticConfig,
    LowBitConfig,
    config_from_dict,
    make_config,
)

# The verb and its result, imported on first use: the configs (and the CLI's --method
# choices, which read METHODS) need none of the export, runtime and backend imports the verb
# brings, so ``edgepipe --help`` stays fast. (compress.api imports only submodules of this
# package, never the package itself: no import circle.)
_LAZY = {"BACKENDS": "edgepipe.compress.api", "compress": "edgepipe.compress.api",
         "compress_splits": "edgepipe.compress.api",
         "CompressResult": "edgepipe.compress.results"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgepipe.compress' has no attribute {name!r}")


__all__ = ["BACKENDS", "CALIBRATIONS", "METHODS", "BinaryConfig", "CompressConfig",
           "CompressResult", "Fp16Config", "Int8DynamicConfig", "Int8StaticConfig",
           "LowBitConfig", "compress", "compress_splits", "config_from_dict", "make_config"]


