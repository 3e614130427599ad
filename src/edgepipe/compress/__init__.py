"""Compression: one config per method, one verb (:func:`compress`) for all of them.

Backends, one module per format, imported only when used: ``ort_quant`` (ONNX: int8
static, int8 dynamic, fp16), ``openvino_quant`` (fp16; NNCF int8 later), ``litert_quant``
(fp16; PT2E int8 later), ``brevitas_quant`` (ONNX: wNaM low-bit, PTQ or QAT).
"""

from edgepipe.compress.api import BACKENDS, PLANNED, CompressResult, compress
from edgepipe.compress.config import (
    CALIBRATIONS,
    METHODS,
    CompressConfig,
    Fp16Config,
    Int8DynamicConfig,
    Int8StaticConfig,
    LowBitConfig,
    config_from_dict,
    make_config,
)

__all__ = ["BACKENDS", "CALIBRATIONS", "METHODS", "PLANNED", "CompressConfig",
           "CompressResult", "Fp16Config", "Int8DynamicConfig", "Int8StaticConfig",
           "LowBitConfig", "compress", "config_from_dict", "make_config"]
