"""int8 (static, dynamic) and fp16: the config (``config.py``) and one backend per format,
each imported only when used: ``ort`` (ONNX, onnxruntime.quantization), ``openvino``
(OpenVINO IR, NNCF), ``litert`` (TFLite, litert-torch PT2E)."""
