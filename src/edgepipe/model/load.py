"""``load_model``: a MODEL spec string -> a :class:`LoadedModel`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgepipe.errors import InputError, ModelError, WeightsError
from edgepipe.model.files import validate_artifact
from edgepipe.model.loaded import SPEC_HINT, LoadedModel, check_forward
from edgepipe.model.onnx_source import load_onnx
from edgepipe.model.torch_sources import (
    load_builtin,
    load_factory,
    load_pickled_module,
    load_pt2,
    load_torchvision,
)
from edgepipe.model.weights import load_weights
from edgepipe.tensors import Dim, TensorSpec


def load_model(
    spec: str,
    *,
    weights: str | Path | None = None,
    input_shape: tuple[Dim, ...] | None = None,
    inputs: list[TensorSpec] | None = None,
    model_args: dict[str, Any] | None = None,
    trust_pickle: bool = False,
    check: bool = True,
) -> LoadedModel:
    """Load a MODEL spec (see the module docstring) with its input specs.

    ``input_shape`` is the one-float-input shorthand; ``inputs`` names several inputs.
    Where the format records its inputs (ONNX, .pt2) they are taken from the graph and an
    explicit shape only fills or overrides dimensions of the same rank. With ``check``, a
    torch model is run once on zero inputs so that a shape it cannot take fails here, with
    the model's own error, rather than deep inside a later step.
    """
    spec = str(spec).strip()
    if not spec:
        raise InputError("The MODEL spec is empty.", hint=SPEC_HINT, reference="model-spec")
    if input_shape is not None and inputs:
        raise InputError(
            "Both --input-shape and --input were given.",
            hint="use --input-shape for one float input, or --input once per input.",
            reference="conflicting-options",
        )
    if input_shape is not None:
        inputs = [TensorSpec("input", tuple(input_shape), "float32")]
    model_args = dict(model_args or {})
    weights_path = Path(weights) if weights is not None else None
    if weights_path is not None and not weights_path.is_file():
        raise WeightsError(
            f"No weights file at '{weights_path}'.",
            hint="check the path given to --weights.",
            reference="weights-not-found",
        )

    kind, target = _classify(spec)
    if kind in ("onnx", "pt2"):
        if weights_path is not None:
            raise InputError(
                f"--weights does not apply to a {kind} model (its weights are in the file).",
                hint="drop --weights.",
                reference="conflicting-options",
            )
        if kind == "onnx":
            validate_artifact(target)
            return load_onnx(spec, Path(target), inputs)
        # An exported program is already specialised to eval or train mode; it has no eval().
        loaded = load_pt2(spec, Path(target), inputs, trust_pickle)
        if check:
            check_forward(loaded)
        return loaded

    if kind == "pickle":
        loaded = load_pickled_module(spec, Path(target), inputs, trust_pickle)
    elif kind == "torchvision":
        loaded = load_torchvision(spec, target, inputs, model_args)
    elif kind == "builtin":
        loaded = load_builtin(spec, target, inputs, weights_path)
    else:
        loaded = load_factory(spec, target, inputs, model_args)

    if weights_path is not None:
        assert loaded.module is not None
        load_weights(loaded.module, weights_path, trust_pickle=trust_pickle)
        loaded.weights = weights_path
    assert loaded.module is not None
    loaded.module.eval()
    if check:
        check_forward(loaded)
    return loaded


def _classify(spec: str) -> tuple[str, str]:
    lower = spec.lower()
    if lower.startswith("torchvision:"):
        return "torchvision", spec.split(":", 1)[1]
    if lower.startswith("builtin:"):
        return "builtin", spec.split(":", 1)[1]
    suffix = Path(spec).suffix.lower()
    if suffix in (".onnx", ".pt2", ".pt", ".pth", ".safetensors", ".tflite", ".xml", ".bin"):
        path = Path(spec)
        if not path.exists():
            raise ModelError(
                f"No file at '{spec}'.",
                hint="check the path; " + SPEC_HINT,
                reference="model-not-found",
            )
        if path.is_dir():
            raise ModelError(f"'{spec}' is a folder, not a model file.", hint=SPEC_HINT,
                             reference="model-not-found")
        if suffix == ".onnx":
            return "onnx", spec
        if suffix == ".pt2":
            return "pt2", spec
        if suffix in (".pt", ".pth"):
            return "pickle", spec
        if suffix == ".safetensors":
            raise ModelError(
                f"'{spec}' holds weights only; it has no architecture.",
                hint="give the architecture as MODEL (torchvision:NAME or package.module:factory) "
                f"and this file as --weights {spec}.",
                reference="weights-not-model",
            )
        raise ModelError(
            f"'{spec}' is a deployment artifact ({suffix}), not a source model.",
            hint="edgepipe takes .onnx, .pt2 or a torch architecture as MODEL; "
            "use 'edgepipe eval' or 'edgepipe profile' on artifacts.",
            reference="model-spec",
        )
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):
        return "factory", spec
    if Path(spec).exists():
        raise ModelError(
            f"Cannot tell what kind of model '{spec}' is from its name.",
            hint=SPEC_HINT,
            reference="model-spec",
        )
    raise ModelError(
        f"'{spec}' is not a file and not a model spec edgepipe knows.",
        hint=SPEC_HINT,
        reference="model-not-found",
    )
