"""Low-rank factorization: the config (``config.py``), the backend (``backend.py``) and its
parts: ``decompose`` (SVD, Tucker-2, energy), ``layers`` (candidates, factorized modules),
``ranks`` (rank selection), ``latency`` (ONNX Runtime timings per layer)."""
