"""Operator support per format, decided before any conversion starts.

The torch model is captured once with ``torch.export`` on the sample inputs. For each
format (see :mod:`edgepipe.export.support_tools` for what each rests on):

1. **Screen** (fast): each distinct ATen op of the graph is looked up in the format's own
   table; an op it lacks is decomposed with the decomposition table that format's converter
   runs (traced on meta tensors: no weights are touched) and what it decomposes into is
   looked up in turn.
2. **Confirm** (only when the screen finds something): the tool's exact path is run on the
   whole model (its own decompositions and lookup; for OpenVINO a partial conversion of
   the TorchScript graph). A refusal rests on this step, never on the screen alone; when
   the confirmation itself fails, the format is reported as not checked and not refused.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgepipe import formats as registry
from edgepipe.errors import UnsupportedError, root_cause
from edgepipe.export.base import log
from edgepipe.export.support_screen import screen
from edgepipe.export.support_tools import ROOT, ConverterInfo, node_layer
from edgepipe.model import LoadedModel


@dataclass
class UnsupportedOp:
    """One op a format cannot handle, the layers that use it and the graph ops behind it."""

    op: str
    layers: list[str]
    modules: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)  # graph ops that decompose into ``op``

    def line(self) -> str:
        via = f" (from {', '.join(self.via)})" if self.via and self.via != [self.op] else ""
        modules = f" ({', '.join(self.modules)})" if self.modules else ""
        return f"{self.op}{via} used by {', '.join(self.layers)}{modules}"


@dataclass
class FormatSupport:
    """One format's verdict: ``supported``, ``unsupported`` or ``not-checked``, and why."""

    format: str
    status: str
    basis: str
    tool: ConverterInfo | None = None  # None: the check did not get as far as the converter
    unsupported: list[UnsupportedOp] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ops: int = 0
    seconds: float = 0.0

    @property
    def supported(self) -> bool | None:
        return None if self.status == "not-checked" else self.status == "supported"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tool": self.tool.to_dict() if self.tool else {},
                "supported": self.supported}


@dataclass
class SupportReport:
    """Every requested format's verdict on one model."""

    model: str
    graph: str
    formats: list[FormatSupport]
    seconds: float = 0.0

    @property
    def unsupported(self) -> list[FormatSupport]:
        return [f for f in self.formats if f.status == "unsupported"]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "graph": self.graph, "seconds": round(self.seconds, 3),
                "all_supported": all(f.supported for f in self.formats),
                "formats": {f.format: f.to_dict() for f in self.formats}}

    def raise_if_unsupported(self) -> None:
        """UnsupportedError naming every op, its layers and its format; nothing if all pass."""
        if self.unsupported:
            raise self.unsupported_error()

    def unsupported_error(self, formats: list[str] | None = None) -> UnsupportedError:
        """The error naming the ops each refusing format (of ``formats``) lacks."""
        refused = [v for v in self.unsupported if formats is None or v.format in formats]
        lines = []
        for verdict in refused:
            tool = f"{verdict.tool.name} {verdict.tool.version}" if verdict.tool else ""
            lines.append(f"{verdict.format} ({tool}):")
            lines += [f"  {op.line()}" for op in verdict.unsupported]
        others = [f.format for f in self.formats if f not in refused]
        names = ", ".join(f.format for f in refused)
        hint = (f"export {' and '.join(others)} without {names}, or " if others
                else "export another format, or ")
        return UnsupportedError(
            "Operators the converter of a requested format cannot handle, found before "
            "converting anything:\n"
            + "\n".join(lines),
            hint=hint + f"replace the layers named above with ops {names} supports; "
            f"'edgepipe inspect MODEL --format {refused[0].format}' shows the same check.",
            reference="unsupported-operators", details=self.to_dict())


def check_support(loaded: LoadedModel, formats: tuple[str, ...] | list[str],
                  samples: list[np.ndarray] | None = None,
                  opset: int | None = None) -> SupportReport:
    """Which ops of ``loaded`` each of ``formats`` cannot handle (see the module docstring)."""
    started = time.perf_counter()
    if loaded.kind != "torch" or loaded.module is None:
        verdicts = [FormatSupport(fmt, "not-checked", "", notes=[
            "the source is an ONNX file; the check reads torch graphs"]) for fmt in formats]
        return SupportReport(loaded.spec, "", verdicts, time.perf_counter() - started)
    import torch

    from edgepipe.analysis.from_export import export_program

    arrays = samples if samples is not None else _runnable_samples(loaded)
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    try:
        with torch.no_grad():
            program, method = export_program(loaded.module, tensors)
    except Exception as exc:  # the converters may still manage (ONNX falls back to TorchScript)
        reason = f"torch.export could not capture the model: {root_cause(exc)}"
        verdicts = [FormatSupport(fmt, "not-checked", "", notes=[reason]) for fmt in formats]
        return SupportReport(loaded.spec, "", verdicts, time.perf_counter() - started)
    verdicts = []
    for fmt in formats:
        path = registry.get(fmt).support_tool
        if path is None:
            verdicts.append(FormatSupport(fmt, "not-checked", "", notes=[
                f"edgepipe has no operator check for {fmt}"]))
            continue
        tool_class = registry.load(path)
        tool = tool_class(opset) if fmt == "onnx" else tool_class()
        verdicts.append(_check_format(tool, loaded.module, program, tensors))
    return SupportReport(loaded.spec, method, verdicts, time.perf_counter() - started)


def _runnable_samples(loaded: LoadedModel) -> list[np.ndarray]:
    """Seeded random inputs, or zeros when the model fails on those (token ids out of an
    embedding's range): a converter that traces the model runs it on them."""
    from edgepipe.model import run_torch

    arrays = loaded.sample_inputs()
    try:
        run_torch(loaded.module, arrays)
    except Exception:
        return [np.zeros_like(a) for a in arrays]
    return arrays


def _check_format(tool: Any, module: Any, program: Any, tensors: list[Any]) -> FormatSupport:
    started = time.perf_counter()
    verdict = FormatSupport(tool.format, "supported", tool.basis)
    try:
        verdict.tool = tool.describe()
        suspects, verdict.ops = screen(tool, program)
    except Exception as exc:  # a converter missing or changed: say so, refuse nothing
        log.debug("support screen failed for %s", tool.format, exc_info=True)
        verdict.status = "not-checked"
        verdict.notes.append(f"the screen failed: {root_cause(exc)}")
        verdict.seconds = time.perf_counter() - started
        return verdict
    if suspects:
        try:
            findings = tool.confirm(module, program, tensors)
        except Exception as exc:
            log.debug("support confirmation failed for %s", tool.format, exc_info=True)
            verdict.status = "not-checked"
            verdict.notes.append(f"the screen flagged {', '.join(suspects)}, and the exact "
                                 f"check could not run: {root_cause(exc)}")
            verdict.seconds = time.perf_counter() - started
            return verdict
        verdict.unsupported = _group(findings, suspects)
        if not verdict.unsupported:
            verdict.notes.append(f"the screen flagged {', '.join(suspects)}; the converter's "
                                 "exact path handles it")
        if tool.format == "onnx":
            _apply_torchscript_fallback(tool, verdict)
        verdict.status = "unsupported" if verdict.unsupported else "supported"
    verdict.seconds = time.perf_counter() - started
    return verdict


def _group(findings: list[tuple[str, str, str]],
           suspects: dict[str, list[Any]]) -> list[UnsupportedOp]:
    """Findings of the exact check, one entry per op with every layer using it."""
    grouped: dict[str, UnsupportedOp] = {}
    for op, path, cls in findings:
        entry = grouped.setdefault(op, UnsupportedOp(op, []))
        layer = path or ROOT
        if layer not in entry.layers:
            entry.layers.append(layer)
        if cls and cls not in entry.modules:
            entry.modules.append(cls)
    by_layer: dict[str, set[str]] = {}
    for nodes in suspects.values():
        for node in nodes:
            by_layer.setdefault(node_layer(node)[0], set()).add(str(node.target))
    for entry in grouped.values():
        entry.via = sorted(set().union(*[by_layer.get(layer, set()) for layer in entry.layers]))
    return list(grouped.values())



def _apply_torchscript_fallback(tool: Any, verdict: FormatSupport) -> None:
    """Ops the dynamo exporter lacks but edgepipe's TorchScript fallback has a symbolic for."""
    kept = []
    for entry in verdict.unsupported:
        # The TorchScript exporter sees the ops as the model calls them, not decomposed.
        if all(map(tool.fallback_has, entry.via or [entry.op])):
            verdict.notes.append(f"the dynamo exporter has no translation for {entry.op}; the "
                                 "TorchScript exporter has a symbolic for it, so export goes "
                                 "through edgepipe's TorchScript fallback")
        else:
            kept.append(entry)
    verdict.unsupported = kept
