"""The reference side of a per-layer comparison: every leaf module's output in torch."""

from __future__ import annotations

from typing import Any

import numpy as np


def torch_activations(module: Any, sample: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Output of every leaf module on its last call, ordered by that call.

A module called twice (one ReLU reused) is compared where its last call ran, since the
artifact's boundary for it is the last node it made.
"""
    import torch

    captured: dict[str, np.ndarray] = {}
    handles = []
    for name, child in module.named_modules():
        if name and not any(True for _ in child.children()):
            def hook(_module: Any, _inputs: Any, output: Any, name: str = name) -> None:
                if isinstance(output, torch.Tensor):  # re-inserted: ordered by last call
                    captured.pop(name, None)
                    captured[name] = output.detach().cpu().numpy().copy()
            handles.append(child.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in sample])
    finally:
        for handle in handles:
            handle.remove()
    return captured
