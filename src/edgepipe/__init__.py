"""edgepipe: take a trained neural network to the edge.

The public Python API: the verbs of the command line as functions, their configs and the
typed results they return, and the errors they raise. Names are imported when first used,
so ``import edgepipe`` (and ``edgepipe --help``) stays fast and imports no torch::

    import edgepipe

    result = edgepipe.export_model(model, "out", example_inputs=torch.randn(1, 3, 32, 32))
    print(result.artifacts[0]["name"])

A MODEL is a spec string, a LoadedModel or a ``torch.nn.Module`` with ``example_inputs``;
DATA is a spec string, a Dataset / Splits, or arrays ``(x, y)``. See docs/python-api.md.
The verbs are named ``*_model`` (``export_model``, ``compress_model``, ...): ``edgepipe.export``,
``edgepipe.compress`` and the like are the packages that implement them.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgepipe.errors import EdgepipeError

__version__ = "0.1.0"

# public name -> "module:attribute"
_NAMES = {
    # verbs
    "load_model": "edgepipe.model.load:load_model",
    "export_model": "edgepipe.api:export",
    "compress_model": "edgepipe.api:compress",
    "evaluate_model": "edgepipe.api:evaluate",
    "profile_model": "edgepipe.api:profile",
    "split_model": "edgepipe.api:split",
    "load_data": "edgepipe.data:load_data",
    "split_data": "edgepipe.api:split_data",
    "as_loaded": "edgepipe.model.load:as_loaded",
    "as_dataset": "edgepipe.data:as_dataset",
    # configs
    "ExportConfig": "edgepipe.export.config:ExportConfig",
    "make_config": "edgepipe.compress.config:make_config",
    "CompressConfig": "edgepipe.compress.config_base:CompressConfig",
    "Int8StaticConfig": "edgepipe.compress.int8.config:Int8StaticConfig",
    "Int8DynamicConfig": "edgepipe.compress.int8.config:Int8DynamicConfig",
    "Fp16Config": "edgepipe.compress.int8.config:Fp16Config",
    "LowBitConfig": "edgepipe.compress.lowbit.config:LowBitConfig",
    "LowRankConfig": "edgepipe.compress.lowrank.config:LowRankConfig",
    "BinaryConfig": "edgepipe.compress.binary.config:BinaryConfig",
    "SplitConfig": "edgepipe.split.api:SplitConfig",
    "SplitTraining": "edgepipe.split.train:SplitTraining",
    # models, data and results
    "LoadedModel": "edgepipe.model.loaded:LoadedModel",
    "TensorSpec": "edgepipe.tensors:TensorSpec",
    "Dataset": "edgepipe.data:Dataset",
    "Splits": "edgepipe.data:Splits",
    "ExportResult": "edgepipe.export.api:ExportResult",
    "CompressResult": "edgepipe.compress.results:CompressResult",
    "EvalResult": "edgepipe.evaluate:EvalResult",
    "SplitResult": "edgepipe.split.api:SplitResult",
    "Profile": "edgepipe.profiling.profile:Profile",
    # errors
    "InputError": "edgepipe.errors:InputError",
    "ModelError": "edgepipe.errors:ModelError",
    "WeightsError": "edgepipe.errors:WeightsError",
    "UnsafePickleError": "edgepipe.errors:UnsafePickleError",
    "ShapeError": "edgepipe.errors:ShapeError",
    "DataError": "edgepipe.errors:DataError",
    "UnsupportedError": "edgepipe.errors:UnsupportedError",
    "ToleranceError": "edgepipe.errors:ToleranceError",
    "TargetError": "edgepipe.errors:TargetError",
    "BackendMissingError": "edgepipe.errors:BackendMissingError",
}

__all__ = ["EdgepipeError", "__version__", *_NAMES]


def __getattr__(name: str) -> Any:
    target = _NAMES.get(name)
    if target is None:
        raise AttributeError(f"module 'edgepipe' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
