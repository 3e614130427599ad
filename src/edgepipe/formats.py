"""The one home of the artifact vocabulary: each format's name, suffixes, runtime, exporter,
session opener, and whether edgepipe exports to it and serves it.

Everything else (the CLI's choices, ExportConfig's and the recipe's validation, the
suffix an exporter writes, the runtime that opens a file, the tails ``serve`` can run)
asks this module; nothing restates the mapping. Adding a format is one exporter module,
one opener, and one :func:`register` call (or one entry in :data:`_BUILTIN`).

Nothing heavy is imported here: exporters and openers are dotted paths, imported only
when used (:func:`load`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Format:
    """One artifact format.

    ``suffix`` is the main file's; ``companions`` the suffixes of files that must sit beside
    it (OpenVINO's ``.bin``; a large ONNX file's ``.onnx.data`` is optional and not listed).
    ``runtime`` names the runtime that opens it (the name a Session reports). ``exporter``
    is the module with ``export(job) -> Exported`` (None: edgepipe reads the format but does
    not write it). ``opener`` is ``module:function``, called as
    ``function(path, threads, spin=..., trust_pickle=...)`` and returning a Session.
    ``support_tool`` is ``module:Class`` of the converter's operator check (None: the check
    reports "not-checked"). ``servable``: ``edgepipe serve`` can run a split tail in it.
    ``requires``: the top-level modules of the optional backends (extras) its exporter and
    runtime import; a format whose backends are missing fails alone with backend-missing.
    ``validator`` is ``module:function``, called as ``function(path, sniffed, head,
    trust_pickle=...)`` before any runtime reads a file of the format (edgepipe.model.files
    ``validate_artifact``); it raises ``{name}-invalid`` (or pickle-refused) with
    ``repair_hint`` as the advice. None: only the file's presence and size are checked.
    """

    name: str
    label: str
    suffix: str
    runtime: str
    runtime_label: str
    opener: str
    exporter: str | None = None
    companions: tuple[str, ...] = ()
    support_tool: str | None = None
    servable: bool = False
    requires: tuple[str, ...] = ()
    validator: str | None = None
    repair_hint: str = "export it again."

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The main suffix and every companion's."""
        return (self.suffix, *self.companions)

    @property
    def exportable(self) -> bool:
        return self.exporter is not None


_BUILTIN = (
    Format("onnx", "ONNX", ".onnx", "onnxruntime", "ONNX Runtime",
           "edgepipe.runtime.onnx_runtime:open_session", exporter="edgepipe.export.onnx",
           support_tool="edgepipe.export.support_tools:OnnxTool", servable=True,
           validator="edgepipe.model.files:check_onnx_file",
           repair_hint="export it again (`edgepipe export MODEL --format onnx`) and keep any "
           ".onnx.data file beside it."),
    Format("tflite", "TFLite", ".tflite", "litert", "LiteRT",
           "edgepipe.runtime.litert_runtime:open_session", exporter="edgepipe.export.tflite",
           support_tool="edgepipe.export.support_tools:LiteRTTool",
           requires=("litert_torch", "ai_edge_litert"),
           validator="edgepipe.model.files:check_tflite_file",
           repair_hint="export it again (`edgepipe export MODEL --format tflite`); a file cut "
           "short by a copy or download is the usual cause."),
    Format("openvino", "OpenVINO IR", ".xml", "openvino", "OpenVINO",
           "edgepipe.runtime.openvino_runtime:open_session", exporter="edgepipe.export.openvino",
           companions=(".bin",), support_tool="edgepipe.export.support_tools:OpenVINOTool",
           servable=True, requires=("openvino",),
           validator="edgepipe.model.files:check_openvino_file",
           repair_hint="export it again (`edgepipe export MODEL --format openvino`) and keep "
           "the .xml and its .bin together."),
    Format("executorch", "ExecuTorch", ".pte", "executorch", "ExecuTorch",
           "edgepipe.runtime.executorch_runtime:open_session",
           exporter="edgepipe.export.executorch", requires=("executorch",), servable=True,
           validator="edgepipe.model.files:check_pte_file",
           repair_hint="export it again (`edgepipe export MODEL --format executorch`); a file "
           "cut short by a copy or download is the usual cause."),
    Format("pt2", "torch.export", ".pt2", "torch", "torch",
           "edgepipe.runtime.torch_runtime:open_session",
           validator="edgepipe.model.files:check_pt2_file",
           repair_hint="save it with torch.export.save(torch.export.export(model, args), path)."),
)

# name -> Format, in the order help texts list them
REGISTRY: dict[str, Format] = {f.name: f for f in _BUILTIN}


def register(fmt: Format) -> Format:
    """Add (or replace) a format; its name, suffix and runtime must not clash with another."""
    for other in REGISTRY.values():
        if other.name != fmt.name and (other.suffix == fmt.suffix or other.runtime == fmt.runtime):
            raise ValueError(f"format {fmt.name!r} clashes with {other.name!r} "
                             "(same suffix or runtime)")
    REGISTRY[fmt.name] = fmt
    return fmt


def all_formats() -> tuple[Format, ...]:
    return tuple(REGISTRY.values())


def export_formats() -> tuple[str, ...]:
    """Names of the formats edgepipe writes (the choices of ``--format``)."""
    return tuple(f.name for f in REGISTRY.values() if f.exportable)


def served_runtimes() -> tuple[str, ...]:
    """Runtimes ``edgepipe serve`` can run a tail in (the choices of ``--runtime``)."""
    return tuple(f.runtime for f in REGISTRY.values() if f.servable)


def get(name: str) -> Format:
    """The format called ``name`` (KeyError if none)."""
    return REGISTRY[name]


def by_suffix(suffix: str) -> Format | None:
    """The format whose main file has ``suffix`` (case-insensitive), or None."""
    suffix = suffix.lower()
    return next((f for f in REGISTRY.values() if f.suffix == suffix), None)


def by_runtime(runtime: str) -> Format:
    """The format run by ``runtime`` (KeyError if none)."""
    found = next((f for f in REGISTRY.values() if f.runtime == runtime), None)
    if found is None:
        raise KeyError(runtime)
    return found


def suffix(name: str) -> str:
    """The main suffix of format ``name`` (``onnx`` -> ``.onnx``)."""
    return REGISTRY[name].suffix


def runtime_of_suffix() -> dict[str, str]:
    """``{".onnx": "onnxruntime", ...}`` for every format, built from the registry."""
    return {f.suffix: f.runtime for f in REGISTRY.values()}


def describe_suffixes() -> str:
    """``.onnx (ONNX Runtime), .tflite (LiteRT), ...`` for hints."""
    return ", ".join(f"{f.suffix} ({f.runtime_label})" for f in REGISTRY.values())


def describe_artifacts() -> str:
    """``.onnx (ONNX), .tflite (TFLite), ... or .pt2 (torch.export)`` for help texts."""
    named = [f"{f.suffix} ({f.label})" for f in REGISTRY.values()]
    return ", ".join(named[:-1]) + " or " + named[-1] if len(named) > 1 else "".join(named)


def describe_exports() -> str:
    """``ONNX, TFLite and/or OpenVINO IR``: the formats edgepipe writes, for help texts."""
    named = [f.label for f in REGISTRY.values() if f.exportable]
    return ", ".join(named[:-1]) + " and/or " + named[-1] if len(named) > 1 else "".join(named)


def load(path: str) -> Any:
    """The object a ``module`` or ``module:attribute`` path names, imported now."""
    module, _, attribute = path.partition(":")
    found = importlib.import_module(module)
    return getattr(found, attribute) if attribute else found


__all__ = ["REGISTRY", "Format", "all_formats", "by_runtime", "by_suffix", "describe_artifacts",
           "describe_exports", "describe_suffixes",
          
           "export_formats", "get", "load", "register", "runtime_of_suffix", "served_runtimes",
           "suffix"]
