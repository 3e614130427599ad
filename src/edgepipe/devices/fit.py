"""``targets check ARTIFACT T``: does a .tflite fit a microcontroller, by how much, how fast.

Memory figures come from TFLite Micro itself (:mod:`edgepipe.devices.tflm`) and the
target's catalog file; latency and energy are estimated from MACs, the clock and the
kernel library's cycles per MAC, and labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.devices.catalog import get_target
from edgepipe.devices.estimator import Estimate, mcu_estimate
from edgepipe.devices.schema import DeviceEntry, Figure
from edgepipe.devices.tflm import measure_arena, model_ops, op_macs, precision_of, read_model
from edgepipe.errors import TargetError


@dataclass(frozen=True)
class Budget:
    """One memory (flash or SRAM): what the model needs, what the device has, and the parts
    of the need (model or arena, and the runtime's own share) with their sources."""

    need_bytes: int
    have: Figure | None
    what: str
    parts: dict[str, Any]

    @property
    def have_bytes(self) -> int | None:
        return None if self.have is None else int(self.have.value)

    @property
    def fits(self) -> bool | None:
        """None when the catalog has no figure to compare with."""
        return None if self.have_bytes is None else self.have_bytes - self.need_bytes >= 0

    def to_dict(self) -> dict[str, Any]:
        if self.have is None:
            out: dict[str, Any] = {"need_bytes": self.need_bytes, "have_bytes": None,
                                   "fits": None,
                                   "why": f"the catalog has no {self.what} figure"}
        else:
            margin = int(self.have.value) - self.need_bytes
            out = {"need_bytes": self.need_bytes, "have_bytes": int(self.have.value),
                   "fits": margin >= 0, "margin_bytes": margin,
                   "margin_pct": 100.0 * margin / self.have.value,
                   "have_source": self.have.describe()}
        return {**out, "parts": self.parts}


@dataclass(frozen=True)
class FitResult:
    """What ``edgepipe targets check`` says: whether a .tflite fits a microcontroller
    (flash, SRAM, operators, TFLite Micro runs it), why not, and the estimated latency."""

    artifact: str
    target: DeviceEntry
    fits: bool
    reasons: tuple[str, ...]
    precision: str
    arena: dict[str, Any]
    flash: Budget
    sram: Budget
    operators: dict[str, Any]
    macs: int
    estimate: Estimate
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact,
                "target": {"name": self.target.name, "title": self.target.title},
                "fits": self.fits, "reasons": list(self.reasons), "precision": self.precision,
                "arena": self.arena, "flash": self.flash.to_dict(), "sram": self.sram.to_dict(),
                "operators": self.operators, "macs": self.macs,
                "estimate": self.estimate.to_dict(), "warnings": list(self.warnings)}


def check_fit(artifact: str | Path, target: DeviceEntry | str) -> FitResult:
    """Arena, flash and SRAM against ``target`` (a catalog entry, or a name looked up once);
    operators; estimated latency/energy."""
    if isinstance(target, str):
        target = get_target(target)
    if target.kind != "mcu" or target.mcu is None:
        raise TargetError(
            f"{target.name} is not a microcontroller; `targets check` asks whether a model "
            "fits one.", hint="use `edgepipe profile ARTIFACT --target "
            f"{target.name}` for latency and memory on it; MCUs in the catalog: "
            + ", ".join(mcu_names()) + ".", reference="not-an-mcu")
    data = read_model(artifact)
    ops = model_ops(data)
    from edgepipe.devices.tflm import tflm_kernels

    kernels = tflm_kernels()
    missing = sorted({op["op"] for op in ops if op["custom"] or op["op"] not in kernels})
    arena = measure_arena(data)
    mcu = target.mcu
    arena_bytes = arena["verified_arena_bytes"] or arena["arena_bytes"]
    flash = Budget(len(data) + int(mcu.runtime_overhead_flash_bytes.value),
                   target.memory.flash_bytes if target.memory else None, "flash",
                   {"model_bytes": len(data),
                    "runtime_bytes": mcu.runtime_overhead_flash_bytes.value,
                    "runtime_source": mcu.runtime_overhead_flash_bytes.describe()})
    sram = Budget(arena_bytes + int(mcu.runtime_overhead_sram_bytes.value),
                  target.sram_for_arena, "SRAM",
                  {"arena_bytes": arena_bytes,
                   "runtime_bytes": mcu.runtime_overhead_sram_bytes.value,
                   "runtime_source": mcu.runtime_overhead_sram_bytes.describe()})
    precision = precision_of(ops, data)
    macs = sum(op_macs(op) for op in ops)
    runs = arena.get("runs") is not False
    fits = bool(flash.fits) and bool(sram.fits) and not missing and runs
    reasons = [f"{name} needs {b.need_bytes:,} bytes, has {b.have_bytes:,}"
               for name, b in (("flash", flash), ("SRAM", sram)) if b.fits is False]
    if missing:
        reasons.append("operators without a TFLite Micro kernel: " + ", ".join(missing))
    if not runs:
        reasons.append(f"TFLite Micro cannot run it: {arena['verification']}")
    return FitResult(
        artifact=str(artifact), target=target, fits=fits, reasons=tuple(reasons),
        precision=precision,
        arena={**arena, "label": "measured",
               "how": "TFLite Micro's allocation report on the host (same runtime code)"},
        flash=flash, sram=sram,
        operators={"count": len(ops), "used": sorted({op["op"] for op in ops}),
                   "unsupported": missing, "kernels_known": len(kernels)},
        macs=macs, estimate=mcu_estimate(target, macs, precision),
        warnings=() if precision == "int8" else (
            "a float32 model: CMSIS-NN's optimised kernels are int8 only, so the "
            "reference float kernels would run; the estimate uses the fp32 MAC rate",))


def mcu_names() -> list[str]:
    from edgepipe.devices.catalog import load_catalog

    return sorted(n for n, t in load_catalog(detect_host=False).items() if t.kind == "mcu")


def require_fit(result: FitResult) -> None:
    """``--require-fit``: a model that does not fit is an error (exit 1)."""
    if not result.fits:
        raise TargetError(f"{Path(result.artifact).name} does not fit "
                          f"{result.target.name}: " + "; ".join(result.reasons),
                          hint="quantize to int8, lower the input resolution, or pick a "
                          "bigger target (`edgepipe targets list`).", reference="does-not-fit")
