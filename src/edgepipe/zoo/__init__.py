"""edgepipe's bundled reference models: ``digits-cnn`` and ``digits-mlp`` trained on
``builtin:digits``, ``fashion-mnist-cnn`` on ``builtin:fashion-mnist`` (no download).

``builtin_model("digits-cnn")`` returns the module with its committed weights
(``<name>.safetensors`` beside this file) and its default input shape; ``<name>.json``
records how the weights were trained (``python -m edgepipe.zoo.train`` makes both).
Torch is imported only when a model is built, so listing the names stays cheap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepipe.errors import ModelError, WeightsError

if TYPE_CHECKING:
    from torch import nn

MODELS: dict[str, tuple[int, ...]] = {"digits-cnn": (1, 3, 32, 32), "digits-mlp": (1, 64),
                                      "fashion-mnist-cnn": (1, 1, 28, 28)}
ZOO_DIR = Path(__file__).parent


def weights_path(name: str) -> Path:
    """Where the committed weights of a built-in model live."""
    return ZOO_DIR / f"{_check_name(name)}.safetensors"


def training_record(name: str) -> dict[str, Any]:
    """The JSON training record of a built-in model (seed, epochs, accuracy, split...)."""
    path = ZOO_DIR / f"{_check_name(name)}.json"
    if not path.is_file():
        raise ModelError(f"No training record for {name!r} at '{path}'.",
                         hint="run 'python -m edgepipe.zoo.train' to train the built-in models.",
                         reference="builtin-weights-missing")
    return json.loads(path.read_text())


def build(name: str, num_classes: int = 10) -> nn.Module:
    """A freshly initialised built-in architecture (no weights loaded)."""
    if _check_name(name) == "digits-cnn":
        from edgepipe.zoo.digits_cnn import DigitsCNN

        return DigitsCNN(num_classes)
    if name == "fashion-mnist-cnn":
        from edgepipe.zoo.fashion_cnn import FashionCNN

        return FashionCNN(num_classes)
    from edgepipe.zoo.digits_mlp import DigitsMLP

    return DigitsMLP(num_classes)


def builtin_model(name: str, pretrained: bool = True) -> tuple[nn.Module, tuple[int, ...]]:
    """A built-in model (in eval mode) and its default input shape.

    With ``pretrained`` the committed safetensors weights are loaded (no pickle, no
    download); without, the weights are freshly initialised.
    """
    module = build(name)
    if pretrained:
        from safetensors.torch import load_file

        path = weights_path(name)
        if not path.is_file():
            raise WeightsError(
                f"The weights of the built-in model {name!r} are missing ('{path}').",
                hint="reinstall edgepipe, or run 'python -m edgepipe.zoo.train' to train them.",
                reference="builtin-weights-missing",
            )
        module.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    module.eval()
    return module, MODELS[name]


def _check_name(name: str) -> str:
    if name not in MODELS:
        raise ModelError(f"No built-in model named {name!r}.",
                         hint=f"built-in models: {', '.join(MODELS)}.",
                         reference="unknown-builtin-model")
    return name
