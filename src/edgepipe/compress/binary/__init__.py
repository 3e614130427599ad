"""Binarization: the config (``config.py``), the backend (``backend.py``: train, export,
pack) and its parts: ``layers`` (binary blocks), ``build`` (binarize a module, calibrate,
deploy), ``pack`` (the packed weights file), ``measure`` (storage, operations, latency)."""
