"""Each format's converter, asked what it can handle: its op table, its decompositions, and
its exact path for confirming a refusal. Used by :mod:`edgepipe.export.support`.

- ONNX: the dynamo exporter's ``ONNXRegistry`` (onnxscript's torchlib) and the decomposition
  table the exporter builds from it; an op the dynamo exporter lacks is also looked up in
  the TorchScript exporter's symbolic registry, since edgepipe falls back to it.
- TFLite: litert-torch's lowering registry (``litert_torch.backend.lowerings``) and its
  pre-lowering decomposition table.
- OpenVINO: the frontend has no Python list for the TorchScript path edgepipe converts
  through (its op table is C++ only). The screen uses the FX op list that OpenVINO's
  torch.compile backend partitions by (``torchdynamo.op_support``) with OpenVINO's export
  decompositions; a refusal is confirmed by a partial conversion of the TorchScript graph.

Every import of a converter is inside a function: they take seconds.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import Any

# A finding of a tool's exact path: (op the tool lacks, module path or "", module class or "").
Finding = tuple[str, str, str]

# torch.export bookkeeping, dropped by every converter before it looks ops up.
IGNORED_OPS = ("aten._assert_tensor_metadata", "aten._assert_scalar", "aten._assert_async",
               "aten.sym_constrain_range", "aten.sym_constrain_range_for_size")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Converters print and warn; none of it belongs on stdout (``--json``) or stderr."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
            contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class ConverterInfo:
    """The converter an operator check rests on: its name and version."""

    name: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"tool": self.name, "version": self.version}


ROOT = "forward()"  # the layer name of ops the model's own forward calls outside any module


def ignored(op: Any) -> bool:
    return str(op).startswith(IGNORED_OPS)


def node_layer(node: Any) -> tuple[str, str]:
    """The module path (``ROOT`` outside any module) and class name an FX node ran in."""
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    path, cls = stack[-1] if stack else ("", "")
    return path or ROOT, str(cls).rsplit(".", 1)[-1]


def program_findings(program: Any, known: Any) -> list[Finding]:
    """Ops of an ExportedProgram's graph that ``known(op)`` refuses, with their layers."""
    import torch

    found = []
    for node in program.graph.nodes:
        target = node.target
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        if ignored(target) or known(target):
            continue
        found.append((str(target), *node_layer(node)))
    return found


class OnnxTool:
    """torch.onnx's dynamo exporter (torchlib registry) with the TorchScript fallback."""

    format = "onnx"
    basis = ("torch.onnx dynamo exporter: ONNXRegistry.from_torchlib() and its ONNX-friendly "
             "decomposition table; ops it lacks are looked up in the TorchScript exporter's "
             "symbolic registry (edgepipe's fallback)")

    def __init__(self, opset: int | None = None) -> None:
        self.opset = opset

    def describe(self) -> ConverterInfo:
        return ConverterInfo("torch.onnx + onnxscript torchlib",
                             f"torch {version('torch').split('+')[0]}, "
                             f"onnxscript {version('onnxscript')}")

    def known(self, op: Any) -> bool:
        return _onnx_registry().is_registered(op)

    def table(self) -> dict[Any, Any]:
        return _onnx_table()

    def confirm(self, module: Any, program: Any, samples: list[Any]) -> list[Finding]:
        from torch.onnx._internal.exporter import _fx_passes

        registry = _onnx_registry()
        with quiet():
            decomposed = _fx_passes.decompose_with_registry(program, registry)
        return program_findings(decomposed, registry.is_registered)

    def fallback_has(self, op_name: str) -> bool:
        """Whether the TorchScript exporter has a symbolic for ``aten.NAME.overload``."""
        import torch.onnx
        from torch.onnx._internal.torchscript_exporter import registration

        namespace, _, rest = op_name.partition(".")
        if namespace != "aten" or not rest:
            return False
        opset = self.opset or torch.onnx._constants.ONNX_DEFAULT_OPSET
        return registration.registry.is_registered_op(f"aten::{rest.split('.')[0]}", opset)


@lru_cache(maxsize=1)
def _onnx_registry() -> Any:
    from torch.onnx._internal.exporter import _registration

    with quiet():
        return _registration.ONNXRegistry.from_torchlib()


@lru_cache(maxsize=1)
def _onnx_table() -> dict[Any, Any]:
    from torch.onnx._internal.exporter import _decomp

    ops = set(_decomp.get_onnx_implemented_overloads(_onnx_registry()))
    return _decomp.create_onnx_friendly_decomposition_table(ops)


class LiteRTTool:
    """litert-torch: its lowering registry and decomposition tables."""

    format = "tflite"
    basis = ("litert-torch lowering registry (litert_torch.backend.lowerings) after its "
             "pre-lowering decompositions (fx_infra.decomp.pre_lower_decomp)")

    def describe(self) -> ConverterInfo:
        return ConverterInfo("litert-torch", version("litert-torch"))

    def known(self, op: Any) -> bool:
        return _litert()[0].lookup(op) is not None

    def table(self) -> dict[Any, Any]:
        return _litert()[1].decomp.pre_lower_decomp()

    def confirm(self, module: Any, program: Any, samples: list[Any]) -> list[Finding]:
        """litert-torch's own steps up to the lowering: decompose, its FX passes, decompose."""
        lowerings, fx_infra = _litert()
        program = copy.deepcopy(program)  # its passes edit the graph in place
        with quiet():
            program = fx_infra.safe_run_decompositions(
                program, fx_infra.decomp.pre_convert_decomp(), can_skip=False)
            with contextlib.suppress(Exception):  # private API: a missing pass is no refusal
                from litert_torch._convert.core import _run_convert_passes

                program = _run_convert_passes(program)
            program = fx_infra.safe_run_decompositions(
                program, fx_infra.decomp.pre_lower_decomp(), can_skip=False)
        return program_findings(program, lambda op: lowerings.lookup(op) is not None)


@lru_cache(maxsize=1)
def _litert() -> tuple[Any, Any]:
    with quiet():
        import litert_torch  # noqa: F401  (registers every lowering)
        from litert_torch import fx_infra
        from litert_torch.backend import lowerings
    return lowerings, fx_infra


class OpenVINOTool:
    """OpenVINO's PyTorch frontend: FX op list for the screen, TorchScript for the verdict."""

    format = "openvino"
    basis = ("OpenVINO PyTorch frontend. It exposes no op list for the TorchScript path "
             "edgepipe converts through; the screen uses the FX op list of its torch.compile "
             "backend (torchdynamo.op_support) after its export decompositions, and a refusal "
             "is confirmed by a partial conversion (convert_partially) of the TorchScript graph")

    def describe(self) -> ConverterInfo:
        from edgepipe.runtime.openvino_runtime import import_openvino

        return ConverterInfo("openvino.frontend.pytorch",
                             import_openvino().get_version().split("-")[0])

    def known(self, op: Any) -> bool:
        return f"torch.ops.{op}" in _openvino_fx_list()

    def table(self) -> dict[Any, Any]:
        return _openvino_table()

    def confirm(self, module: Any, program: Any, samples: list[Any]) -> list[Finding]:
        """Ops left as framework nodes by the TorchScript frontend (what convert_model uses)."""
        from openvino.frontend import FrontEndManager
        from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

        with quiet():
            decoder = TorchScriptPythonDecoder(module, example_input=tuple(samples))
            frontend = FrontEndManager().load_by_framework("pytorch")
            model = frontend.convert_partially(frontend.load(decoder))
        found = []
        for op in model.get_ordered_ops():
            if "FrameworkNode" not in op.get_type_name():
                continue
            name = op.get_friendly_name()
            match = re.search(r"(\w+::\w+)", name)
            if match is None:  # a constant the frontend keeps as a framework node
                continue
            path = name.removeprefix("__module.").split("/", 1)[0] if name.startswith(
                "__module.") else ""
            found.append((match.group(1), path, ""))
        return found


@lru_cache(maxsize=1)
def _openvino_fx_list() -> frozenset[str]:
    with quiet():
        from openvino.frontend.pytorch.torchdynamo.op_support import OperatorSupport

        return frozenset(OperatorSupport({})._support_dict)


@lru_cache(maxsize=1)
def _openvino_table() -> dict[Any, Any]:
    from torch.export.decomp_utils import CustomDecompTable

    with quiet():
        from openvino.frontend.pytorch.torchdynamo.export_decompositions import (
            ops_to_not_decompose,
        )
    table = CustomDecompTable()
    for op in ops_to_not_decompose():
        with contextlib.suppress(KeyError):
            table.pop(op)
    return dict(table.items())

