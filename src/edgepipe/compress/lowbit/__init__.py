"""Low-bit quantization (``wNaM``): the config (``config.py``) and the Brevitas backend
(``brevitas.py``: ONNX QCDQ, post-training or quantization-aware)."""
