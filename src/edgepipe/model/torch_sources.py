"""Torch MODEL specs: .pt2 programs, pickled modules (only when trusted), torchvision
architectures, the bundled models and ``package.module:factory`` / ``FILE.py:factory``
callables."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from edgepipe.errors import InputError, ModelError, ShapeError, UnsafePickleError, first_line
from edgepipe.json_types import JsonObject
from edgepipe.model.loaded import SPEC_HINT, TRUST_FLAG, LoadedModel, merge_inputs
from edgepipe.tensors import TensorSpec, format_shape

if TYPE_CHECKING:
    import torch

# Default input sizes for torchvision architectures that do not take 224x224.
_TORCHVISION_SIZES = {"inception_v3": 299}


def load_pt2(spec: str, path: Path, inputs: list[TensorSpec] | None,
             trust_pickle: bool = False) -> LoadedModel:
    """A torch.export archive; its members are checked first (:mod:`edgepipe.model.files`):
    one that torch would unpickle is refused unless ``trust_pickle``."""
    import torch

    from edgepipe.model.files import validate_artifact

    validate_artifact(path, trust_pickle=trust_pickle)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelError(
            f"'{path}' is not a readable torch.export program: {first_line(exc)}",
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
    resolved = merge_inputs(graph_inputs, inputs, source="the exported program")
    module = program.module()
    return LoadedModel(spec=spec, kind="torch", inputs=resolved, module=module, files=[path])


def _is_static_dim(dim: Any) -> bool:
    try:
        int(dim)
        return True
    except (TypeError, ValueError):
        return False


def load_pickled_module(
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
            hint=SPEC_HINT,
            reference="model-spec",
        )
    try:
        with importable_cwd(path.resolve().parent):
            module = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        in_main = "__main__" in str(exc)
        raise ModelError(
            f"Could not unpickle '{path}': {first_line(exc)}",
            hint="the model's class was defined in the script that saved it (__main__), so "
            "no module can provide it: move the class into a file such as mymodel.py, or save "
            "the state dict and give FILE.py:factory with --weights." if in_main else
            "the classes the pickle refers to must be importable from the current "
            "directory, the file's folder or PYTHONPATH.",
            reference="pickle-failed",
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"'{path}' holds a {type(module).__name__}, not an nn.Module.",
            hint=f"a state dict goes to --weights with the architecture as MODEL; {SPEC_HINT}",
            reference="weights-not-model",
        )
    return torch_loaded(spec, module, inputs, None, files=[path],
                         options={"trust_pickle": True})


def load_torchvision(
    spec: str, name: str, inputs: list[TensorSpec] | None, model_args: JsonObject
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
            f"torchvision could not build {name!r} with {model_args}: {first_line(exc)}",
            hint="check the --model-arg values against the architecture's signature.",
            reference="model-construction",
        ) from exc
    size = _TORCHVISION_SIZES.get(name, 224)
    default = (1, 3, size, size)
    if name.startswith(("raft", "fasterrcnn", "maskrcnn", "keypointrcnn", "retinanet",
                        "fcos", "ssd", "r3d", "r2plus1d", "mc3", "s3d", "mvit", "swin3d")):
        default = None  # detection / video / flow: the user must say
    return torch_loaded(spec, module, inputs, default, options={"model_args": model_args})


def load_builtin(
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
    return torch_loaded(spec, module, inputs, default_shape, files=files)


@contextlib.contextmanager
def importable_cwd(*folders: Path) -> Iterator[None]:
    """The current directory (and ``folders``, first) on ``sys.path`` for the duration of a
    load, as ``python`` gives a script its own folder: where a factory's module, the modules
    it imports and the classes a trusted pickle names are found without ``PYTHONPATH=.``.
    Only the entries added here are removed afterwards."""
    added = []
    for folder in (Path.cwd(), *folders):
        entry = str(folder)
        if entry not in sys.path:
            sys.path.insert(0, entry)
            added.append(entry)
    try:
        yield
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def load_factory(
    spec: str, target: str, inputs: list[TensorSpec] | None, model_args: JsonObject
) -> LoadedModel:
    """``package.module:factory``: the module imported (the current directory importable),
    the factory called with ``model_args``."""
    module_name, attr = target.split(":", 1)
    with importable_cwd():
        try:
            pymodule = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ModelError(
                f"Cannot import {module_name!r} for the factory spec '{spec}': "
                f"{first_line(exc)}",
                hint="run edgepipe from the folder that holds the module, or add that folder "
                "to PYTHONPATH; a single file can be named as FILE.py:factory. " + SPEC_HINT,
                reference="factory-import",
            ) from exc
        except Exception as exc:
            raise ModelError(
                f"Importing {module_name!r} raised {type(exc).__name__}: {first_line(exc)}",
                hint="fix the module so that it imports cleanly (run --debug for the traceback).",
                reference="factory-import",
            ) from exc
        return _call_factory(spec, pymodule, repr(module_name), attr, inputs, model_args)


def load_file_factory(
    spec: str, file: str, attr: str, inputs: list[TensorSpec] | None, model_args: JsonObject
) -> LoadedModel:
    """``FILE.py:factory``: the file (relative to the current directory) imported under a
    private module name, its folder and the current directory importable while it loads,
    and the factory called with ``model_args``. Like ``package.module:factory`` it is the
    user's own code, named explicitly, and runs as such."""
    path = Path(file).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    if not path.is_file():
        raise ModelError(
            f"No Python file at '{file}' for the factory spec '{spec}'"
            + (" (it is a folder)." if path.is_dir() else "."),
            hint=f"FILE.py is read relative to the current directory ({Path.cwd()}); check "
            "the path, or run edgepipe from the folder that holds the file.",
            reference="model-not-found",
        )
    path = path.resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"_edgepipe_user_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None  # a .py file
    pymodule = importlib.util.module_from_spec(module_spec)
    # kept in sys.modules, so that its classes can be found again (pickling a checkpoint)
    sys.modules[name] = pymodule
    with importable_cwd(path.parent):
        try:
            module_spec.loader.exec_module(pymodule)
        except BaseException as exc:
            del sys.modules[name]
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: not an import error
            raise ModelError(
                f"Importing '{file}' raised {type(exc).__name__}{_where(exc, path)}: "
                f"{first_line(exc)}",
                hint="fix the file so that it imports cleanly (`python "
                f"{file}` shows the same error; --debug shows the traceback).",
                reference="factory-import",
            ) from exc
        return _call_factory(spec, pymodule, f"'{file}'", attr, inputs, model_args)


def _where(exc: BaseException, path: Path) -> str:
    """`` (line N)``: the last line of ``path`` the error passed through, if any."""
    line = exc.lineno if isinstance(exc, SyntaxError) and exc.filename == str(path) else None
    trace = exc.__traceback__
    while trace is not None:
        if Path(trace.tb_frame.f_code.co_filename) == path:
            line = trace.tb_lineno
        trace = trace.tb_next
    return f" at line {line}" if line else ""


def _call_factory(spec: str, pymodule: ModuleType, label: str, attr: str,
                  inputs: list[TensorSpec] | None, model_args: JsonObject) -> LoadedModel:
    """The factory ``attr`` of ``pymodule`` (called ``label`` in messages), called with
    ``model_args``; its result checked to be an nn.Module."""
    import torch

    factory = getattr(pymodule, attr, None)
    if factory is None or not callable(factory):
        names = [n for n in dir(pymodule) if not n.startswith("_") and callable(getattr(pymodule, n))]
        close = difflib.get_close_matches(attr, names, n=3)
        own = [n for n in names if getattr(getattr(pymodule, n), "__module__", None)
               == pymodule.__name__][:8]
        raise ModelError(
            f"{label} has no callable named {attr!r}.",
            hint=(f"did you mean {', '.join(close)}?" if close else
                  "name a function or class in the module that returns an nn.Module"
                  + (f" (it defines {', '.join(own)})." if own else ".")),
            reference="factory-missing",
        )
    try:
        module = factory(**model_args)
    except Exception as exc:
        raise ModelError(
            f"The factory '{spec}' raised {type(exc).__name__}: {first_line(exc)}",
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
    return torch_loaded(spec, module, inputs, None, files=files,
                         options={"model_args": model_args} if model_args else {})


def torch_loaded(
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
