"""int4-weight: 4-bit weight-only compression with each runtime's own tool: the config
(``config.py``), the per-layer record every backend fills (``layers.py``) and one backend per
format, imported only when used: ``ort`` (ONNX, MatMulNBits), ``openvino`` (NNCF
``compress_weights``), ``litert`` (TFLite, ai-edge-quantizer), ``executorch`` (torchao, lowered to XNNPACK)."""
