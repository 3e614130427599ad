"""``targets check ARTIFACT T``: does a .tflite fit a microcontroller, by how much, how fast.

Memory figures come from TFLite Micro itself (:mod:`edgepipe.targets.tflm`) and the
target's catalog file; latency and energy are estimated from MACs, the clock and the
kernel library's cycles per MAC, and labelled so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepipe.errors import TargetError
from edgepipe.targets.catalog import get_target
from edgepipe.targets.estimator import mcu_estimate
from edgepipe.targets.schema import Figure
from edgepipe.targets.tflm import measure_arena, model_ops, op_macs, precision_of, read_model


def _budget(need: int, have: Figure | None, what: str) -> dict[str, Any]:
    if have is None:
        return {"need_bytes": need, "have_bytes": None, "fits": None,
                "why": f"the catalog has no {what} figure"}
    margin = int(have.value) - need
    return {"need_bytes": need, "have_bytes": int(have.value), "fits": margin >= 0,
            "margin_bytes": margin, "margin_pct": 100.0 * margin / have.value,
            "have_source": have.describe()}


def check_fit(artifact: str | Path, target_name: str) -> dict[str, Any]:
    """Arena, flash and SRAM against ``target_name``; operators; estimated latency/energy."""
    target = get_target(target_name)
    if target.kind != "mcu" or target.mcu is None:
        raise TargetError(
            f"{target.name} is not a microcontroller; `targets check` asks whether a model "
            "fits one.", hint="use `edgepipe profile ARTIFACT --target "
            f"{target.name}` for latency and memory on it; MCUs in the catalog: "
            + ", ".join(mcu_names()) + ".", reference="not-an-mcu")
    data = read_model(artifact)
    ops = model_ops(data)
    from edgepipe.targets.tflm import tflm_kernels

    kernels = tflm_kernels()
    missing = sorted({op["op"] for op in ops if op["custom"] or op["op"] not in kernels})
    arena = measure_arena(data)
    mcu = target.mcu
    flash_need = len(data) + int(mcu.runtime_overhead_flash_bytes.value)
    sram_need = (arena["verified_arena_bytes"] or arena["arena_bytes"]) + \
        int(mcu.runtime_overhead_sram_bytes.value)
    flash = _budget(flash_need, target.memory.flash_bytes if target.memory else None, "flash")
    sram = _budget(sram_need, target.sram_for_arena, "SRAM")
    flash["parts"] = {"model_bytes": len(data),
                      "runtime_bytes": mcu.runtime_overhead_flash_bytes.value,
                      "runtime_source": mcu.runtime_overhead_flash_bytes.describe()}
    sram["parts"] = {"arena_bytes": arena["verified_arena_bytes"] or arena["arena_bytes"],
                     "runtime_bytes": mcu.runtime_overhead_sram_bytes.value,
                     "runtime_source": mcu.runtime_overhead_sram_bytes.describe()}
    precision = precision_of(ops, data)
    macs = sum(op_macs(op) for op in ops)
    runs = arena.get("runs") is not False
    fits = bool(flash["fits"]) and bool(sram["fits"]) and not missing and runs
    reasons = [f"{name} needs {b['need_bytes']:,} bytes, has {b['have_bytes']:,}"
               for name, b in (("flash", flash), ("SRAM", sram)) if b["fits"] is False]
    if missing:
        reasons.append("operators without a TFLite Micro kernel: " + ", ".join(missing))
    if not runs:
        reasons.append(f"TFLite Micro cannot run it: {arena['verification']}")
    return {"artifact": str(artifact), "target": {"name": target.name, "title": target.title},
            "fits": fits, "reasons": reasons, "precision": precision,
            "arena": {**arena, "label": "measured",
                      "how": "TFLite Micro's allocation report on the host (same runtime code)"},
            "flash": flash, "sram": sram,
            "operators": {"count": len(ops), "used": sorted({op["op"] for op in ops}),
                          "unsupported": missing, "kernels_known": len(kernels)},
            "macs": macs, "estimate": mcu_estimate(target, macs, precision),
            "warnings": [] if precision == "int8" else [
                "a float32 model: CMSIS-NN's optimised kernels are int8 only, so the "
                "reference float kernels would run; the estimate uses the fp32 MAC rate"]}


def mcu_names() -> list[str]:
    from edgepipe.targets.catalog import load_catalog

    return sorted(n for n, t in load_catalog(detect_host=False).items() if t.kind == "mcu")


def require_fit(result: dict[str, Any]) -> None:
    """``--require-fit``: a model that does not fit is an error (exit 1)."""
    if not result["fits"]:
        raise TargetError(f"{Path(result['artifact']).name} does not fit "
                          f"{result['target']['name']}: " + "; ".join(result["reasons"]),
                          hint="quantize to int8, lower the input resolution, or pick a "
                          "bigger target (`edgepipe targets list`).", reference="does-not-fit")

