"""What crosses the link for a split run directory, and where its tail is (no serving
stack imported here: the exporters and the device side read this too)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepipe import formats
from edgepipe.errors import InputError


@dataclass(frozen=True)
class Wire:
    """What crosses the link: codes of ``shape`` (batch first) as ``dtype``; the value a
    code stands for is ``(code - zero_point) * scale``."""

    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int
    bits: int
    cut: str
    # an entropy-coded split: the split step's wire.entropy, and its tables' file
    entropy: dict[str, Any] | None = field(default=None, compare=False)
    tables: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "scale": self.scale,
                "zero_point": self.zero_point, "bits": self.bits, "cut": self.cut,
                **({} if self.entropy is None else {"entropy": self.entropy})}

    def coder(self) -> Any:
        """The range coder of an entropy-coded split (None without one)."""
        if self.entropy is None or self.tables is None:
            return None
        from edgepipe.split.entropy import CodeTables, EntropyCoder

        return EntropyCoder(CodeTables.load(self.tables), tuple(self.shape[1:]))


def find_tail(path: Path, runtime: str) -> tuple[Path, Wire]:
    """The tail artifact for ``runtime`` in a split run directory (or the artifact given),
    and its wire format from the directory's manifest."""
    folder = path if path.is_dir() else path.parent
    manifest = folder / "manifest.json"
    steps = []
    if manifest.is_file():
        steps = [s for s in json.loads(manifest.read_text()).get("steps", [])
                 if s.get("step") == "split"]
    if not steps:
        raise InputError(f"{folder} is not the output of `edgepipe split` (no split step in "
                         f"{manifest.name}).",
                         hint="run `edgepipe split MODEL --at LAYER --bottleneck C --data D "
                              "-o OUT` and serve OUT.", reference="not-a-split-run")
    artifact = path if path.is_file() else folder / f"tail{formats.by_runtime(runtime).suffix}"
    if not artifact.is_file():
        found = sorted(p.name for p in folder.glob("tail.*"))
        raise InputError(f"{folder} has no {artifact.name} for {runtime}.",
                         hint=(f"it has {', '.join(found)}; " if found else "")
                         + "export the tail with " + " or ".join(
                             f"-f {f.name} ({f.runtime_label})" for f in formats.all_formats()
                             if f.servable) + ", or pick --runtime to match.",
                         reference="no-tail-artifact")
    result = steps[-1]["result"]
    wire = result.get("wire") or {}
    cut = result["cut"]
    shape = tuple(wire.get("shape") or (1, result["config"]["bottleneck"],
                                        *cut["shape"][2:]))
    entropy = wire.get("entropy")
    tables = None
    if entropy is not None:
        tables = folder / entropy["tables"]
        if not tables.is_file():
            raise InputError(f"{folder} is an entropy-coded split but has no {tables.name} "
                             "(the code tables both ends use).",
                             hint="copy it beside the tail, or run `edgepipe split` again.",
                             reference="no-tail-artifact")
    return artifact, Wire(shape=shape, dtype=wire.get("dtype", "int8"),
                          scale=wire.get("scale"), zero_point=int(wire.get("zero_point", -128)),
                          bits=int(result["config"]["bits"]), cut=cut["label"],
                          entropy=entropy, tables=tables)
