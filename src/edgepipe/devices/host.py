"""``host``: the catalog entry of this machine, filled in from what it says about itself.

Cores, clock and ISA come from :func:`edgepipe.system.cpu_info`; peak throughput is derived
from the ISA (cores x clock x SIMD MACs per cycle, written out in each figure's ``how``);
memory bandwidth is measured with a short numpy copy (a few hundred milliseconds, once per
process).
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgepipe.devices.schema import Cpu, DeviceEntry, Figure, Memory, Source

# MACs per cycle per core, by the best ISA feature present; (feature, fp32, fp16, int8, why).
_X86_RATES = [
    ("avx512f", 32, 32, 64, "two 512-bit FMA units (16 fp32 lanes each); int8 via "
     "VPMADDUBSW+VPMADDWD pairs"),
    ("avx2", 16, 16, 32, "two 256-bit FMA units (8 fp32 lanes each); no fp16 arithmetic; "
     "int8 via VPMADDUBSW+VPMADDWD pairs (32 MACs per cycle)"),
]
_X86_INT8 = [("amx_int8", 1024, "AMX int8 tiles"),
             ("avx512_vnni", 128, "two 512-bit VPDPBUSD per cycle (64 MACs each)"),
             ("avx_vnni", 64, "two 256-bit VPDPBUSD per cycle (32 MACs each)")]
_ARM_RATES = (8, 8, 8, "two 128-bit NEON FMA pipes (4 fp32 lanes each)")


def _clock_mhz(max_mhz: float | None) -> Figure:
    if max_mhz:
        return Figure(value=max_mhz, kind="measured", source="cpufreq",
                      note="cpuinfo_max_freq of cpu0")
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    found = re.search(r"cpu MHz\s*:\s*([0-9.]+)", text)
    if found:
        return Figure(value=float(found.group(1)), kind="measured", source="proc-cpuinfo",
                      note="'cpu MHz' of the first CPU at detection time (no cpufreq here); "
                      "turbo clocks may be higher")
    return Figure(value=2000.0, kind="assumption", note="the OS reports no clock; 2 GHz assumed")


def _rates(arch: str, features: dict[str, bool]) -> tuple[dict[str, tuple[int, str]], str]:
    """MACs per cycle per core by precision, each with its reason."""
    if arch in ("aarch64", "arm64") or arch.startswith("arm"):
        fp32, fp16, int8, why = _ARM_RATES
        if features.get("asimdhp"):
            fp16 = 16
        if features.get("asimddp"):
            int8 = 32
        if features.get("i8mm"):
            int8 = 64
        return {"fp32": (fp32, why), "fp16": (fp16, "8 fp16 lanes per pipe" if fp16 == 16 else
                                               "no fp16 arithmetic: computes in fp32"),
                "int8": (int8, "SDOT" if int8 == 32 else "SMMLA" if int8 == 64 else
                         "widening SMLAL")}, "arm"
    for feature, fp32, fp16, int8, why in _X86_RATES:
        if features.get(feature):
            rates = {"fp32": (fp32, why), "fp16": (fp16, "fp16 computes in fp32 on this CPU"),
                     "int8": (int8, why)}
            for name, macs, reason in _X86_INT8:
                if features.get(name):
                    rates["int8"] = (macs, reason)
                    break
            return rates, "x86"
    return {"fp32": (4, "SSE: one 128-bit multiply-add"), "fp16": (4, "computes in fp32"),
            "int8": (8, "SSE integer multiply-add")}, "x86"


def _active_power(cores: int, family: str) -> Figure:
    """An assumed power draw of the usable cores when busy (no sensor to measure it)."""
    per_core = 4.5 if family == "x86" else 1.5
    return Figure(value=cores * per_core, kind="assumption", note=(
        f"{cores} busy cores x {per_core} W: a current {family} core's share of its package "
        "power (e.g. a 280 W, 64-core server part is ~4.4 W a core; an Arm application core "
        "~1-2 W); uncore, memory and board not counted. Measure with RAPL where readable"))


@lru_cache(maxsize=1)
def copy_bandwidth_gbps(megabytes: int = 64, repeats: int = 5) -> float:
    """Sustained memory bandwidth of this process: best of ``repeats`` numpy copies, in GB/s
    counting the bytes read and the bytes written."""
    source = np.ones(megabytes * (1 << 20) // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


def detected_host(template: DeviceEntry) -> DeviceEntry:
    """``template`` (host.yaml) with this machine's CPU, memory and peak throughput."""
    from edgepipe.system import cpu_info, memory_bytes

    cpu = cpu_info()
    clock = _clock_mhz(cpu.max_mhz)
    cores = cpu.usable_cores
    rates, family = _rates(cpu.arch, cpu.features)
    peak = {precision: Figure(value=cores * clock.value / 1000 * macs, kind="derived",
                              how=f"{cores} usable cores x {clock.value:.0f} MHz x {macs} "
                              f"MAC/cycle ({why})")
            for precision, (macs, why) in rates.items()}
    bandwidth = copy_bandwidth_gbps()
    ram = memory_bytes()
    sources = dict(template.sources)
    sources["proc-cpuinfo"] = Source(url="local:/proc/cpuinfo", says="the CPU model and clock "
                                     "the Linux kernel reports", verified=True)
    sources["cpufreq"] = Source(url="local:/sys/devices/system/cpu/cpu0/cpufreq",
                                says="the CPU's maximum frequency", verified=True)
    sources["copy-benchmark"] = Source(url="local:edgepipe.devices.host.copy_bandwidth_gbps",
                                       says="best of 5 numpy copies of 64 MiB, read + write "
                                       "bytes per second", verified=True)
    sources["psutil"] = Source(url="local:psutil.virtual_memory", says="total RAM",
                               verified=True)
    isa = [name for name, present in cpu.features.items() if present]
    return template.model_copy(update={
        "title": f"This machine: {cpu.model} ({cores} usable cores)",
        "cpu": Cpu(core=cpu.model, isa=f"{cpu.arch} ({', '.join(isa) or family})",
                   cores=cores, clock_mhz=clock),
        "memory": Memory(
            ram_bytes=Figure(value=ram, kind="measured", source="psutil") if ram else None,
            bandwidth_gbps=Figure(value=round(bandwidth, 2), kind="measured",
                                  source="copy-benchmark")),
        "peak_gmacs": peak,
        "power": template.power.model_copy(update={"active_w": _active_power(cores, family)}),
        "sources": sources,
    })


def detected(template: DeviceEntry) -> DeviceEntry:
    """A ``detect: true`` catalog entry filled in from this machine."""
    return detected_gpu(template) if template.device == "cuda" else detected_host(template)


def detected_gpu(template: DeviceEntry) -> DeviceEntry:
    """``cuda.yaml`` with the first NVIDIA GPU's name, memory and power limit from NVML;
    the template unchanged where there is no GPU (profiling then says so)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
        limit_w = pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0
    except Exception:  # no pynvml, no driver or no GPU
        return template
    name = name if isinstance(name, str) else name.decode()
    sources = {**template.sources, "nvml": Source(
        url="local:NVML", says="the GPU's name, memory and power limit", verified=True)}
    return template.model_copy(update={
        "title": f"This machine's GPU: {name}",
        "memory": Memory(ram_bytes=Figure(value=memory, kind="measured", source="nvml")),
        "power": template.power.model_copy(update={"active_w": Figure(
            value=limit_w, kind="measured", source="nvml",
            note="the board's power limit: an upper bound of its draw, not its draw")}),
        "sources": sources})
