"""``load_model``: a MODEL spec string -> a :class:`LoadedModel`."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from edgepipe.errors import InputError, ModelError, ShapeError, WeightsError
from edgepipe.json_types import JsonObject
from edgepipe.model.files import validate_artifact
from edgepipe.model.loaded import SPEC_HINT, LoadedModel, check_forward
from edgepipe.model.onnx_source import load_onnx
from edgepipe.model.torch_sources import (
    importable_cwd,
    load_builtin,
    load_factory,
    load_file_factory,
    load_pickled_module,
    load_pt2,
    load_torchvision,
)
from edgepipe.model.weights import load_weights
from edgepipe.tensors import Dim, TensorSpec, sized


def load_model(
    spec: str,
    *,
    weights: str | Path | None = None,
    input_shape: tuple[Dim, ...] | None = None,
    inputs: list[TensorSpec] | None = None,
    model_args: JsonObject | None = None,
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

    if spec.lower().startswith("hf:"):
        if weights_path is not None or model_args:
            raise InputError(
                "--weights and --model-arg do not apply to a Hugging Face folder (its "
                "config.json and weights are in the folder).",
                hint="drop --weights / --model-arg.", reference="conflicting-options")
        from edgepipe.model.hf import load_hf  # imports torch and transformers

        loaded = load_hf(spec, inputs, trust_pickle)
        if check:
            check_forward(loaded)
        return loaded

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
            loaded = load_onnx(spec, Path(target), inputs)
            return loaded if inputs else _with_recorded_axes(loaded, Path(target))
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
    elif kind == "file-factory":
        file, attr = target.rsplit(":", 1)
        loaded = load_file_factory(spec, file, attr, inputs, model_args)
    else:
        loaded = load_factory(spec, target, inputs, model_args)

    if weights_path is not None:
        assert loaded.module is not None
        with importable_cwd() if trust_pickle else contextlib.nullcontext():
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
    file_factory = re.fullmatch(r"(.+\.py):([A-Za-z_]\w*)", spec, flags=re.IGNORECASE)
    if file_factory:
        return "file-factory", spec
    suffix = Path(spec).suffix.lower()
    if suffix == ".py":
        raise ModelError(
            f"'{spec}' is a Python file; edgepipe needs the function in it that builds the "
            "model.",
            hint=f"name the factory after a colon: {spec}:FACTORY (e.g. {spec}:build), a "
            "function or class that returns the nn.Module.",
            reference="model-spec",
        )
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
                hint="give the architecture as MODEL (FILE.py:factory, package.module:factory or "
                "torchvision:NAME) "
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


MODEL_KINDS_HINT = ("give a MODEL spec string, a LoadedModel from edgepipe.load_model, or a "
                    "torch.nn.Module with example_inputs (a tensor, an array, or a tuple of "
                    "them).")


def as_loaded(model: Any, example_inputs: Any = None, *, name: str | None = None,
              check: bool = True) -> LoadedModel:
    """A :class:`LoadedModel` from what a Python caller has: a MODEL spec string (or path),
    a LoadedModel (returned as is), or an in-memory ``torch.nn.Module``.

    ``example_inputs`` (a tensor or ndarray, or a tuple / list of them, one per input of
    ``forward``) give a module's input specs: their shapes, batch dimension included, as
    fixed as the built-in and torchvision specs are, and their dtypes. One input is named
    ``input``; several take the names of ``forward``'s parameters. With a spec string they
    override the shapes the spec would get (as ``--input`` does). The module is put in eval
    mode and, with ``check``, run once on zeros of those shapes.
    """
    if isinstance(model, LoadedModel):
        if example_inputs is not None:
            raise InputError(
                f"example_inputs were given with the already loaded model '{model.spec}'.",
                hint="give example_inputs with the nn.Module or spec itself, or load it with "
                "edgepipe.load_model(spec, inputs=[TensorSpec(...)]).",
                reference="conflicting-options")
        return model
    if isinstance(model, (str, Path)):
        specs = example_specs(example_inputs) if example_inputs is not None else None
        return load_model(str(model), inputs=specs, check=check)
    torch = _torch_if_module(model)
    if torch is None:
        raise InputError(f"edgepipe cannot use a {type(model).__name__} as a model.",
                         hint=MODEL_KINDS_HINT, reference="model-type")
    if example_inputs is None:
        raise ShapeError(
            f"The nn.Module {type(model).__name__} was given without example_inputs, so its "
            "input shapes are unknown.",
            hint="pass example_inputs=torch.randn(1, 3, 32, 32) (a tuple for several inputs), "
            "shaped as one batch the model takes.",
            reference="example-inputs-needed")
    specs = example_specs(example_inputs, _forward_names(model))
    label = name or type(model).__name__
    loaded = LoadedModel(spec=label, kind="torch", inputs=specs, module=model,
                         options={"source": "in-memory nn.Module",
                                  "class": f"{type(model).__module__}."
                                           f"{type(model).__qualname__}",
                                  "state_sha256": _state_sha256(model)})
    model.eval()
    if check:
        check_forward(loaded)
    return loaded


def example_specs(example_inputs: Any, names: list[str] | None = None) -> list[TensorSpec]:
    """Input specs from example inputs: one tensor / array, or a tuple / list of them."""
    from edgepipe.tensors import normalize_dtype

    items = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [
        example_inputs]
    if not items:
        raise ShapeError("example_inputs is empty.", hint="give one tensor per model input.",
                         reference="bad-example-inputs")
    specs = []
    for i, item in enumerate(items):
        shape, dtype = getattr(item, "shape", None), getattr(item, "dtype", None)
        if shape is None or dtype is None:
            raise ShapeError(
                f"example input {i} is a {type(item).__name__}, not a tensor or array.",
                hint="give torch tensors or numpy arrays (a tuple of them for several inputs).",
                reference="bad-example-inputs")
        if len(items) == 1:
            label = "input"
        else:
            label = names[i] if names and i < len(names) else f"input_{i}"
        specs.append(TensorSpec(label, tuple(int(d) for d in shape), normalize_dtype(str(dtype))))
    return specs


def _torch_if_module(model: Any) -> Any:
    """The torch module when ``model`` is an ``nn.Module`` (torch imported only if it is
    already: a module cannot exist without it), else None."""
    import sys

    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(model, torch.nn.Module) else None


def _forward_names(module: Any) -> list[str]:
    """The positional parameters of ``module.forward`` (the names several inputs get)."""
    import inspect

    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _state_sha256(module: Any) -> str:
    """A hash of a module's parameters and buffers (names, dtypes, shapes, values): what
    identifies an in-memory model in the manifest, where a spec would name a file."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{value.dtype}:{tuple(tensor.shape)}".encode())
        if value.numel():
            digest.update(value.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _with_recorded_axes(loaded: LoadedModel, path: Path) -> LoadedModel:
    """An ONNX artifact whose source recorded dynamic axes (a text encoder's sequence):
    its inputs at their nominal sizes, the axes kept (and recorded again by whatever is
    made from it)."""
    from edgepipe.model.axes import recorded_axes

    axes = recorded_axes(path, loaded.inputs)
    if axes:
        loaded.inputs = sized(loaded.inputs, axes)
        loaded.dynamic_axes = axes
        loaded.options["dynamic_axes"] = [axis.to_dict() for axis in axes]
    return loaded
