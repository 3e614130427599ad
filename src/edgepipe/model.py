"""MODEL specs -> a loaded model (a torch ``nn.Module`` or an ONNX file) and its inputs.

Specs (DESIGN.md §3):

- ``path/model.onnx``                 an ONNX file (external data beside it is fine)
- ``path/model.pt2``                  a ``torch.export`` ExportedProgram
- ``torchvision:NAME``                a torchvision architecture, random weights unless ``weights``
- ``package.module:factory``          a callable returning an ``nn.Module`` (cwd and PYTHONPATH)
- ``builtin:digits-cnn``              edgepipe's bundled digits CNN with its trained weights
- ``path/model.pt`` / ``.pth``        a pickled whole module: refused unless ``trust_pickle``

State dicts are read with ``weights_only=True`` or from ``.safetensors``; pickled code is
never run unless the user passes the trust flag.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edgepipe.errors import (
    InputError,
    ModelError,
    ShapeError,
    UnsafePickleError,
    WeightsError,
)
from edgepipe.tensors import Dim, TensorSpec, format_shape

if TYPE_CHECKING:
    import torch

TRUST_FLAG = "--trust-pickle"
ModelKind = Literal["torch", "onnx"]

# Default input sizes for torchvision architectures that do not take 224x224.
_TORCHVISION_SIZES = {"inception_v3": 299}


@dataclass
class LoadedModel:
    """A model ready to use: a torch module or an ONNX file, plus its input specs."""

    spec: str
    kind: ModelKind
    inputs: list[TensorSpec]
    module: torch.nn.Module | None = None
    onnx_path: Path | None = None
    weights: Path | None = None
    files: list[Path] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short name for file names and reports (``resnet18``, ``model``)."""
        tail = re.split(r"[:/\\]", self.spec.rstrip("/\\"))[-1]
        stem = tail.rsplit(".", 1)[0] if "." in tail and not tail.startswith(".") else tail
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "model"

    def sample_inputs(self, batch: int = 1, seed: int = 0) -> list[np.ndarray]:
        """Seeded random inputs, one array per input, dynamic batch filled by ``batch``."""
        return [spec.sample(batch, seed + i) for i, spec in enumerate(self.inputs)]

    def source_sha256(self) -> str:
        """A hash that identifies the model: its files, or its spec, options and weights."""
        digest = hashlib.sha256()
        digest.update(json.dumps({"spec": self.spec, "options": self.options}, sort_keys=True,
                                 default=str).encode())
        for path in [*self.files, *([self.weights] if self.weights else [])]:
            digest.update(file_sha256(path).encode())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        """The model as it was loaded, for manifests and ``--json`` output."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "weights": str(self.weights) if self.weights else None,
            "inputs": [s.to_dict() for s in self.inputs],
            "options": self.options,
            "sha256": self.source_sha256(),
        }


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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
        raise InputError("The MODEL spec is empty.", hint=_SPEC_HINT, reference="model-spec")
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
            return _load_onnx(spec, Path(target), inputs)
        # An exported program is already specialised to eval or train mode; it has no eval().
        loaded = _load_pt2(spec, Path(target), inputs)
        if check:
            check_forward(loaded)
        return loaded

    if kind == "pickle":
        loaded = _load_pickled_module(spec, Path(target), inputs, trust_pickle)
    elif kind == "torchvision":
        loaded = _load_torchvision(spec, target, inputs, model_args)
    elif kind == "builtin":
        loaded = _load_builtin(spec, target, inputs, weights_path)
    else:
        loaded = _load_factory(spec, target, inputs, model_args)

    if weights_path is not None:
        assert loaded.module is not None
        load_weights(loaded.module, weights_path, trust_pickle=trust_pickle)
        loaded.weights = weights_path
    assert loaded.module is not None
    loaded.module.eval()
    if check:
        check_forward(loaded)
    return loaded


_SPEC_HINT = (
    "give a path to a .onnx or .pt2 file, torchvision:NAME, builtin:digits-cnn, "
    "or package.module:factory."
)


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
                hint="check the path; " + _SPEC_HINT,
                reference="model-not-found",
            )
        if path.is_dir():
            raise ModelError(f"'{spec}' is a folder, not a model file.", hint=_SPEC_HINT,
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
            hint=_SPEC_HINT,
            reference="model-spec",
        )
    raise ModelError(
        f"'{spec}' is not a file and not a model spec edgepipe knows.",
        hint=_SPEC_HINT,
        reference="model-not-found",
    )


# ---------------------------------------------------------------- ONNX


def _load_onnx(spec: str, path: Path, inputs: list[TensorSpec] | None) -> LoadedModel:
    import onnx

    if path.stat().st_size == 0:
        raise ModelError(
            f"'{path}' is empty (0 bytes).",
            hint="the file was not written completely; export it again.",
            reference="onnx-invalid",
        )
    try:
        proto = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise ModelError(
            f"'{path}' is not a valid ONNX model: {_first_line(exc)}",
            hint="the file may be truncated or not ONNX at all; export it again "
            "(and keep any .onnx.data file beside it).",
            reference="onnx-invalid",
        ) from exc
    graph_inputs = onnx_input_specs(proto)
    resolved = _merge_inputs(graph_inputs, inputs, source="the ONNX graph")
    files = [path] + _onnx_external_files(proto, path.parent)
    return LoadedModel(spec=spec, kind="onnx", inputs=resolved, onnx_path=path, files=files)


def onnx_input_specs(proto: Any) -> list[TensorSpec]:
    """Input specs of an ONNX ModelProto (initializers listed as inputs are skipped)."""
    from onnx import helper

    initializers = {init.name for init in proto.graph.initializer}
    specs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        specs.append(_value_info_spec(value, helper))
    return specs


def onnx_output_specs(proto: Any) -> list[TensorSpec]:
    """Output specs of an ONNX ModelProto."""
    from onnx import helper

    return [_value_info_spec(value, helper) for value in proto.graph.output]


def _value_info_spec(value: Any, helper: Any) -> TensorSpec:
    tensor_type = value.type.tensor_type
    dims: list[Dim] = []
    for i, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or f"dim{i}")
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
    return TensorSpec(value.name, tuple(dims), dtype)


def _onnx_external_files(proto: Any, folder: Path) -> list[Path]:
    locations = set()
    for init in proto.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                locations.add(entry.value)
    return [folder / loc for loc in sorted(locations)]


def _merge_inputs(
    graph: list[TensorSpec], given: list[TensorSpec] | None, *, source: str
) -> list[TensorSpec]:
    """Fill or override the graph's input specs with the user's, checking rank and count."""
    if not given:
        return graph
    if len(given) == 1 and len(graph) == 1:
        pairs = [(graph[0], given[0])]
    else:
        by_name = {g.name: g for g in given}
        unknown = sorted(set(by_name) - {g.name for g in graph})
        if unknown or len(given) != len(graph):
            raise ShapeError(
                f"The model has {len(graph)} input(s) "
                f"({', '.join(g.name for g in graph)}); the options name "
                f"{', '.join(g.name for g in given)}.",
                hint="give --input NAME:SHAPE:DTYPE once for each input, with the names above.",
            )
        pairs = [(g, by_name[g.name]) for g in graph]
    merged = []
    for graph_spec, user_spec in pairs:
        if graph_spec.rank != user_spec.rank:
            raise ShapeError(
                f"Input {graph_spec.name!r} has rank {graph_spec.rank} in {source} "
                f"({format_shape(graph_spec.shape)}); the shape given has rank "
                f"{user_spec.rank} ({format_shape(user_spec.shape)}).",
                hint=f"give a shape of {graph_spec.rank} dimensions, like "
                f"{format_shape([d if isinstance(d, int) else 1 for d in graph_spec.shape])}.",
            )
        for i, (g, u) in enumerate(zip(graph_spec.shape, user_spec.shape, strict=True)):
            if isinstance(g, int) and isinstance(u, int) and g != u:
                raise ShapeError(
                    f"Input {graph_spec.name!r} has dimension {i} fixed to {g} in {source}; "
                    f"the shape given says {u} ({format_shape(user_spec.shape)}).",
                    hint=f"use {format_shape(graph_spec.shape)}, or re-export the model with "
                    "that dimension dynamic.",
                )
        merged.append(TensorSpec(graph_spec.name, user_spec.shape, graph_spec.dtype))
    return merged


# ---------------------------------------------------------------- torch


def _load_pt2(spec: str, path: Path, inputs: list[TensorSpec] | None) -> LoadedModel:
    import torch

    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelError(
            f"'{path}' is not a readable torch.export program: {_first_line(exc)}",
            hint="save it with torch.export.save(torch.export.export(model, args), path).",
            reference="pt2-invalid",
        ) from exc
    graph_inputs = []
    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            value = node.meta.get("val")
            if value is None or not hasattr(value, "shape"):
                continue
            shape = tuple(int(d) if _is_static_dim(d) else str(d) for d in value.shape)
            dtype = str(value.dtype).removeprefix("torch.")
            graph_inputs.append(TensorSpec(node.name, shape, dtype))
    resolved = _merge_inputs(graph_inputs, inputs, source="the exported program")
    module = program.module()
    return LoadedModel(spec=spec, kind="torch", inputs=resolved, module=module, files=[path])


def _is_static_dim(dim: Any) -> bool:
    try:
        int(dim)
        return True
    except (TypeError, ValueError):
        return False


def _load_pickled_module(
    spec: str, path: Path, inputs: list[TensorSpec] | None, trust_pickle: bool
) -> LoadedModel:
    import torch

    if not trust_pickle:
        try:
            content = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UnsafePickleError(
                f"'{path}' is a pickled Python object; loading it would run code stored in "
                "the file, so edgepipe refuses it.",
                hint=f"if you trust the file, pass {TRUST_FLAG}; better, save the model with "
                "torch.export (.pt2) or save its state dict and pass it with --weights.",
            ) from exc
        if isinstance(content, dict):
            raise ModelError(
                f"'{path}' holds a state dict (weights only), not a model.",
                hint=f"give the architecture as MODEL and this file as --weights {path}.",
                reference="weights-not-model",
            )
        raise ModelError(
            f"'{path}' holds a {type(content).__name__}, not a model.",
            hint=_SPEC_HINT,
            reference="model-spec",
        )
    try:
        module = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(
            f"Could not unpickle '{path}': {_first_line(exc)}",
            hint="the classes the pickle refers to must be importable from the current "
            "directory or PYTHONPATH.",
            reference="pickle-failed",
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"'{path}' holds a {type(module).__name__}, not an nn.Module.",
            hint=f"a state dict goes to --weights with the architecture as MODEL; {_SPEC_HINT}",
            reference="weights-not-model",
        )
    return _torch_loaded(spec, module, inputs, None, files=[path],
                         options={"trust_pickle": True})


def _load_torchvision(
    spec: str, name: str, inputs: list[TensorSpec] | None, model_args: dict[str, Any]
) -> LoadedModel:
    from torchvision import models

    available = models.list_models()
    if name not in available:
        close = difflib.get_close_matches(name.lower(), available, n=4, cutoff=0.5)
        raise ModelError(
            f"torchvision has no architecture named {name!r}.",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + "'python -c \"import torchvision; print(torchvision.models.list_models())\"' "
            "lists them all.",
            reference="unknown-torchvision-model",
        )
    if "weights" in model_args:
        raise InputError(
            "Pretrained weights are not downloaded by edgepipe.",
            hint="pass a local state dict with --weights FILE instead of a weights model-arg.",
            reference="no-downloads",
        )
    try:
        module = models.get_model(name, weights=None, **model_args)
    except Exception as exc:
        raise ModelError(
            f"torchvision could not build {name!r} with {model_args}: {_first_line(exc)}",
            hint="check the --model-arg values against the architecture's signature.",
            reference="model-construction",
        ) from exc
    size = _TORCHVISION_SIZES.get(name, 224)
    default = (1, 3, size, size)
    if name.startswith(("raft", "fasterrcnn", "maskrcnn", "keypointrcnn", "retinanet",
                        "fcos", "ssd", "r3d", "r2plus1d", "mc3", "s3d", "mvit", "swin3d")):
        default = None  # detection / video / flow: the user must say
    return _torch_loaded(spec, module, inputs, default, options={"model_args": model_args})


def _load_builtin(
    spec: str, name: str, inputs: list[TensorSpec] | None, weights: Path | None
) -> LoadedModel:
    from edgepipe.zoo import MODELS, builtin_model, weights_path

    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=3, cutoff=0.3)
        raise ModelError(
            f"No built-in model named {name!r}.",
            hint=f"built-in models: {', '.join(MODELS)}"
            + (f" (did you mean {close[0]}?)" if close else "."),
            reference="unknown-builtin-model",
        )
    pretrained = weights is None
    module, default_shape = builtin_model(name, pretrained=pretrained)
    # The bundled weights file goes into files so that source_sha256 tells versions apart.
    files = [weights_path(name)] if pretrained else []
    return _torch_loaded(spec, module, inputs, default_shape, files=files)


def _load_factory(
    spec: str, target: str, inputs: list[TensorSpec] | None, model_args: dict[str, Any]
) -> LoadedModel:
    import torch

    module_name, attr = target.split(":", 1)
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        try:
            pymodule = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ModelError(
                f"Cannot import {module_name!r} for the factory spec '{spec}': "
                f"{_first_line(exc)}",
                hint="run edgepipe from the folder that holds the module, or add that folder "
                "to PYTHONPATH. " + _SPEC_HINT,
                reference="factory-import",
            ) from exc
        except Exception as exc:
            raise ModelError(
                f"Importing {module_name!r} raised {type(exc).__name__}: {_first_line(exc)}",
                hint="fix the module so that it imports cleanly (run --debug for the traceback).",
                reference="factory-import",
            ) from exc
    finally:
        if added:
            sys.path.remove(cwd)
    factory = getattr(pymodule, attr, None)
    if factory is None or not callable(factory):
        names = [n for n in dir(pymodule) if not n.startswith("_") and callable(getattr(pymodule, n))]
        close = difflib.get_close_matches(attr, names, n=3)
        raise ModelError(
            f"{module_name!r} has no callable named {attr!r}.",
            hint=(f"did you mean {', '.join(close)}?" if close else
                  "name a function or class in the module that returns an nn.Module."),
            reference="factory-missing",
        )
    try:
        module = factory(**model_args)
    except Exception as exc:
        raise ModelError(
            f"The factory '{spec}' raised {type(exc).__name__}: {_first_line(exc)}",
            hint="the factory is your code; run with --debug for the full traceback.",
            reference="factory-failed",
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"The factory '{spec}' returned a {type(module).__name__}, not an nn.Module.",
            hint="make the factory return the model (an nn.Module instance).",
            reference="factory-failed",
        )
    files = [Path(pymodule.__file__)] if getattr(pymodule, "__file__", None) else []
    return _torch_loaded(spec, module, inputs, None, files=files,
                         options={"model_args": model_args} if model_args else {})


def _torch_loaded(
    spec: str,
    module: torch.nn.Module,
    inputs: list[TensorSpec] | None,
    default_shape: tuple[int, ...] | None,
    *,
    files: list[Path] | None = None,
    options: dict[str, Any] | None = None,
) -> LoadedModel:
    if inputs:
        resolved = list(inputs)
        if default_shape is not None and len(resolved) == 1 and resolved[0].rank != len(default_shape):
            raise ShapeError(
                f"'{spec}' takes a {len(default_shape)}-D input "
                f"({format_shape(default_shape)}); the shape given has rank "
                f"{resolved[0].rank} ({format_shape(resolved[0].shape)}).",
                hint=f"use --input-shape {format_shape(default_shape)} "
                "(or another size of the same rank).",
            )
    elif default_shape is not None:
        resolved = [TensorSpec("input", tuple(default_shape), "float32")]
    else:
        raise ShapeError(
            f"edgepipe cannot tell the input shape of '{spec}' from the model.",
            hint="give it with --input-shape 1x3x224x224, or --input NAME:SHAPE:DTYPE for "
            "each input of a model with several.",
            reference="input-shape-needed",
        )
    return LoadedModel(spec=spec, kind="torch", inputs=resolved, module=module,
                       files=files or [], options=options or {})


def load_weights(module: torch.nn.Module, path: Path, *, trust_pickle: bool = False) -> None:
    """Load a state dict (.pt/.pth/.bin with weights_only, or .safetensors) into ``module``.

    A mismatch names the missing, unexpected and wrongly shaped keys.
    """
    import torch

    state = read_state_dict(path, trust_pickle=trust_pickle)
    expected = module.state_dict()
    if state and all(k.startswith("module.") for k in state) and not any(
        k.startswith("module.") for k in expected
    ):
        state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in set(state) & set(expected)
        if isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing from the file: {_list_keys(missing)}")
        if unexpected:
            parts.append(f"not in the model: {_list_keys(unexpected)}")
        if wrong_shape:
            parts.append(f"wrong shape: {_list_keys(wrong_shape)}")
        raise WeightsError(
            f"The weights in '{path}' do not match the model; " + "; ".join(parts) + ".",
            hint="check that MODEL is the architecture these weights were trained with "
            "(and its --model-arg values, e.g. num_classes).",
            details={"missing": missing, "unexpected": unexpected, "wrong_shape": wrong_shape},
        )
    module.load_state_dict(state, strict=True)


def read_state_dict(path: Path, *, trust_pickle: bool = False) -> dict[str, Any]:
    """Read a state dict without running pickled code (unless trusted)."""
    import torch

    path = Path(path)
    if path.stat().st_size == 0:
        raise WeightsError(f"The weights file '{path}' is empty (0 bytes).",
                           hint="save the state dict again.", reference="weights-invalid")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:
            raise WeightsError(f"'{path}' is not a readable safetensors file: {_first_line(exc)}",
                               hint="save it again with safetensors.torch.save_file.",
                               reference="weights-invalid") from exc
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:
        message = str(exc)
        if "weights_only" in message or "Unsupported global" in message or "pickle" in message.lower():
            raise UnsafePickleError(
                f"'{path}' holds pickled Python objects, not only tensors; loading it would "
                "run code stored in the file.",
                hint=f"save model.state_dict() instead, or pass {TRUST_FLAG} if you trust it.",
            ) from exc
        raise WeightsError(f"Cannot read weights from '{path}': {_first_line(exc)}",
                           hint="save them with torch.save(model.state_dict(), path) or "
                           "safetensors.", reference="weights-invalid") from exc
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = state.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if all(isinstance(v, torch.Tensor) for v in state.values()):
            return state
    raise WeightsError(
        f"'{path}' does not hold a state dict (a mapping of names to tensors).",
        hint="save it with torch.save(model.state_dict(), path).",
        reference="weights-invalid",
    )


def _list_keys(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_forward(loaded: LoadedModel) -> None:
    """Run a torch model once on zeros of its input shapes; wrap a failure as an error."""
    import torch

    assert loaded.module is not None
    try:
        args = [torch.zeros(s.concrete_shape(1), dtype=getattr(torch, s.dtype))
                for s in loaded.inputs]
    except ShapeError:
        return  # a dynamic non-batch dimension: nothing concrete to try
    try:
        with torch.inference_mode():
            loaded.module(*args)
    except Exception as exc:
        shapes = ", ".join(format_shape(s.shape) for s in loaded.inputs)
        raise ShapeError(
            f"'{loaded.spec}' failed on an input of shape {shapes}: "
            f"{type(exc).__name__}: {_first_line(exc)}",
            hint="check --input-shape (rank, channels, spatial size) against what the model "
            "takes; --debug shows the model's traceback.",
            reference="forward-failed",
        ) from exc


def run_torch(module: torch.nn.Module, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Run a torch module on numpy inputs; return its outputs as numpy arrays (flattened)."""
    import torch

    with torch.inference_mode():
        out = module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
    return [t.detach().cpu().numpy() for t in flatten_outputs(out)]


def flatten_outputs(out: Any) -> list[Any]:
    """Tensors of a model output (a tensor, tuple/list, or dict of them) in a fixed order."""
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in flatten_outputs(item)]
    if isinstance(out, dict):
        return [t for key in out for t in flatten_outputs(out[key])]
    if hasattr(out, "logits") and not hasattr(out, "shape"):
        return flatten_outputs(out.logits)
    return [out]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
