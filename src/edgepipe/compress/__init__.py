"""Compression: one config per method, one verb (:func:`compress`) for all of them.

Backends, one module per format, imported only when used: ``ort_quant`` (ONNX: int8
static, int8 dynamic, fp16), ``openvino_quant`` (fp16; NNCF int8 later), ``litert_quant``
(fp16; PT2E int8 later).
"""

from edgepipe.compress.api import BACKENDS, CompressResult, compress
from edgepipe.compress.config import (
    CALIBRATIONS,
    METHODS,
    CompressConfig,
    Fp16Config,
    Int8DynamicConfig,
    Int8StaticConfig,
    config_from_dict,
    make_config,
)

__all__ = ["BACKENDS", "CALIBRATIONS", "METHODS", "CompressConfig",
           "CompressResult", "Fp16Config", "Int8DynamicConfig", "Int8StaticConfig", "compress",
           "config_from_dict", "make_config"]
