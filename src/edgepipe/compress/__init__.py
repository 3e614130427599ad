"""Compression: one config per method, one verb (:func:`compress`) for all of them.

Backends, one module per format, imported only when used: ``ort_quant`` (ONNX: int8
static, int8 dynamic, fp16), ``openvino_quant`` (NNCF int8, fp16), ``litert_quant``
(PT2E int8, fp16), ``brevitas_quant`` (ONNX: wNaM low-bit, PTQ or QAT), ``binary`` (ONNX + packed weights:
binarized weights and activations, trained by distillation).
"""

from edgepipe.compress.api import BACKENDS, CompressResult, compress
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

__all__ = ["BACKENDS", "CALIBRATIONS", "METHODS", "BinaryConfig", "CompressConfig",
           "CompressResult", "Fp16Config", "Int8DynamicConfig", "Int8StaticConfig",
           "LowBitConfig", "compress", "config_from_dict", "make_config"]


