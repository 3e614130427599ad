"""What machine this is: CPU, the ISA features that decide whether int8 or fp16 pays off,
threads, memory, and the versions of every backend edgepipe uses.

Imports nothing heavy at module level; :func:`backend_versions` reads package metadata
without importing the packages. Profiles record :func:`host_identity` next to every number.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# Distribution names of every backend edgepipe can use, in the order `env` lists them.
BACKENDS = (
    "torch", "torchvision", "numpy", "onnx", "onnxruntime", "onnxscript", "onnxslim",
    "openvino", "nncf", "litert-torch", "ai-edge-litert", "tflite-micro", "brevitas",
    "kserve", "tritonclient", "scikit-learn", "safetensors",
)

# x86 /proc/cpuinfo flags and Arm "Features" names we report, with what they mean for us.
X86_FEATURES = {
    "avx2": "256-bit SIMD (baseline for fast fp32 and int8 kernels)",
    "fma": "fused multiply-add",
    "f16c": "fp16 <-> fp32 conversion only (no fp16 arithmetic)",
    "avx512f": "512-bit SIMD",
    "avx512bw": "512-bit byte/word ops",
    "avx512_vnni": "AVX-512 VNNI: int8 dot products in one instruction",
    "avx_vnni": "AVX-VNNI: int8 dot products on 256-bit registers",
    "avx512_bf16": "bf16 dot products",
    "avx512_fp16": "fp16 arithmetic",
    "amx_tile": "AMX tiles",
    "amx_int8": "AMX int8 matrix multiply",
    "amx_bf16": "AMX bf16 matrix multiply",
    "amx_fp16": "AMX fp16 matrix multiply",
}
ARM_FEATURES = {
    "asimd": "NEON SIMD",
    "asimddp": "dotprod: int8 dot products (SDOT/UDOT)",
    "i8mm": "int8 matrix multiply (SMMLA)",
    "asimdhp": "fp16 SIMD arithmetic",
    "fphp": "fp16 scalar arithmetic",
    "bf16": "bf16 dot products",
    "sve": "scalable vectors",
    "sve2": "scalable vectors v2",
    "sme": "scalable matrix extension",
}


@dataclass
class CpuInfo:
    """The CPU as this process sees it."""

    model: str
    arch: str
    logical_cores: int
    physical_cores: int | None
    usable_cores: int  # after affinity and cgroup quota
    cgroup_quota_cores: float | None
    features: dict[str, bool] = field(default_factory=dict)
    max_mhz: float | None = None


@dataclass
class Int8Verdict:
    """Whether int8 (and fp16) arithmetic is accelerated on this CPU, in plain words."""

    accelerated: bool
    fp16_arithmetic: bool
    instructions: list[str]
    summary: str
    warning: str | None = None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def cpu_info() -> CpuInfo:
    """Detect the CPU model, core counts and ISA features (Linux /proc, macOS sysctl)."""
    arch = platform.machine().lower()
    model, flags = "unknown", set()
    max_mhz = None
    cpuinfo = _read("/proc/cpuinfo")
    if cpuinfo:
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and model == "unknown":
                model = value.strip()
            elif key in ("flags", "features") and not flags:
                flags = set(value.split())
        if model == "unknown" and arch in ("aarch64", "arm64"):
            model = _arm_model_name(cpuinfo)
    elif platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string") or model
        flags = _darwin_flags()
    freq = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if freq and freq.strip().isdigit():
        max_mhz = int(freq) / 1000
    table = ARM_FEATURES if arch in ("aarch64", "arm64") or arch.startswith("arm") else X86_FEATURES
    features = {name: name in flags for name in table}
    logical = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    quota = _cgroup_quota()
    if quota is not None:
        usable = max(1, min(usable, int(quota + 0.999)))
    return CpuInfo(model=model, arch=arch, logical_cores=logical,
                   physical_cores=_physical_cores(), usable_cores=usable,
                   cgroup_quota_cores=quota, features=features, max_mhz=max_mhz)


def _arm_model_name(cpuinfo: str) -> str:
    # Arm /proc/cpuinfo has no model name; "CPU part" identifies the core.
    parts = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55",
             "0xd07": "Cortex-A57", "0xd08": "Cortex-A72", "0xd09": "Cortex-A73",
             "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76", "0xd0d": "Cortex-A77",
             "0xd41": "Cortex-A78", "0xd42": "Cortex-A78AE", "0xd44": "Cortex-X1",
             "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
             "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3", "0xd0c": "Neoverse-N1",
             "0xd40": "Neoverse-V1", "0xd49": "Neoverse-N2", "0xd4f": "Neoverse-V2"}
    found = re.findall(r"CPU part\s*:\s*(0x[0-9a-f]+)", cpuinfo, re.I)
    names = sorted({parts.get(p.lower(), f"Arm part {p}") for p in found})
    dt_model = _read("/proc/device-tree/model")
    prefix = dt_model.strip("\x00\n ") + ": " if dt_model else ""
    return prefix + (" + ".join(names) if names else "Arm CPU")


def _physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except Exception:  # psutil missing or unsupported platform
        return None


def _cgroup_quota() -> float | None:
    """CPU limit from cgroup v2 ``cpu.max`` (or v1 cfs quota), in cores; None if unlimited."""
    text = _read("/sys/fs/cgroup/cpu.max")
    if text:
        quota, _, period = text.strip().partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota_v1 = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    period_v1 = _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota_v1 and period_v1 and int(quota_v1) > 0:
        return int(quota_v1) / int(period_v1)
    return None


def _sysctl(name: str) -> str | None:
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _darwin_flags() -> set[str]:
    flags = set()
    mapping = {"hw.optional.arm.FEAT_DotProd": "asimddp", "hw.optional.arm.FEAT_I8MM": "i8mm",
               "hw.optional.arm.FEAT_FP16": "asimdhp", "hw.optional.arm.FEAT_BF16": "bf16",
               "hw.optional.neon": "asimd", "hw.optional.avx2_0": "avx2",
               "hw.optional.avx512f": "avx512f", "hw.optional.avx512vnni": "avx512_vnni"}
    for key, flag in mapping.items():
        if _sysctl(key) == "1":
            flags.add(flag)
    return flags


def int8_verdict(cpu: CpuInfo) -> Int8Verdict:
    """Say in plain words whether int8 will be faster than fp32 on this CPU, and why."""
    f = cpu.features
    if cpu.arch in ("x86_64", "amd64", "i686", "x86"):
        fp16 = f.get("avx512_fp16", False) or f.get("amx_fp16", False)
        if f.get("amx_int8"):
            return Int8Verdict(True, fp16, ["amx_int8"],
                               "AMX int8 tiles: int8 matrix multiplies are much faster than fp32 "
                               "(OpenVINO and ONNX Runtime use them).")
        vnni = [n for n in ("avx512_vnni", "avx_vnni") if f.get(n)]
        if vnni:
            return Int8Verdict(True, fp16, vnni,
                               f"{' and '.join(n.upper() for n in vnni)}: int8 dot products in one "
                               "instruction, so int8 convolutions and matmuls can run faster than "
                               "fp32 (how much depends on the runtime and format).")
        return Int8Verdict(
            False, fp16, [],
            "No VNNI or AMX: int8 dot products take several instructions on this CPU.",
            warning="int8 will probably not be faster than fp32 here: without AVX-512 VNNI, "
            "AVX-VNNI or AMX, x86 int8 kernels emulate the dot product (and ONNX Runtime's s8s8 "
            "can be slower than fp32). int8 still cuts model size by ~4x; measure latency on this "
            "machine before choosing it for speed.",
        )
    if cpu.arch in ("aarch64", "arm64") or cpu.arch.startswith("arm"):
        fp16 = f.get("asimdhp", False) or f.get("fphp", False)
        found = [n for n in ("i8mm", "asimddp") if f.get(n)]
        if found:
            return Int8Verdict(True, fp16, found,
                               "int8 dot-product instructions (" + ", ".join(
                                   "dotprod" if n == "asimddp" else n for n in found)
                               + "): int8 kernels in LiteRT/XNNPACK and ONNX Runtime use them.")
        return Int8Verdict(
            False, fp16, [],
            "No dotprod or i8mm: int8 arithmetic uses widening multiplies.",
            warning="int8 may give only a small speed-up here (no dotprod/i8mm, as on Cortex-A53 "
            "and A72 cores such as the Raspberry Pi 4); the ~4x size saving is still real. "
            "Measure latency on the device before choosing it for speed.",
        )
    return Int8Verdict(False, False, [], f"Unknown architecture {cpu.arch!r}: not assessed.",
                       warning="edgepipe cannot tell whether int8 is accelerated on this CPU.")


def backend_versions() -> dict[str, str | None]:
    """Installed version of each backend, or None where it is not installed (no imports)."""
    versions: dict[str, str | None] = {}
    for name in BACKENDS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def thread_settings() -> dict[str, Any]:
    """Thread-related environment variables and the defaults runtimes will pick."""
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                          "OPENBLAS_NUM_THREADS", "EDGEPIPE_THREADS")}
    return {"env": {k: v for k, v in env.items() if v is not None}}


def memory_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


@dataclass(frozen=True)
class HostIdentity:
    """A compact identity of this host for every measurement: who measured, on what."""

    hostname: str
    os: str
    python: str
    cpu: str
    arch: str
    usable_cores: int
    isa: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "os": self.os, "python": self.python,
                "cpu": self.cpu, "arch": self.arch, "usable_cores": self.usable_cores,
                "isa": list(self.isa)}


def host_identity() -> HostIdentity:
    """This host's :class:`HostIdentity`."""
    cpu = cpu_info()
    return HostIdentity(
        hostname=platform.node(), os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(), cpu=cpu.model, arch=cpu.arch,
        usable_cores=cpu.usable_cores,
        isa=tuple(name for name, present in cpu.features.items() if present))


@dataclass(frozen=True)
class EnvironmentReport:
    """Everything ``edgepipe env`` shows: Python, the CPU and its int8 verdict, memory,
    thread variables, backend versions and (optionally) what each runtime says of itself."""

    python: str
    platform: str
    cpu: CpuInfo
    int8: Int8Verdict
    memory_bytes: int | None
    threads: dict[str, Any]
    backends: dict[str, str | None]
    runtimes: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "python": self.python, "platform": self.platform, "cpu": asdict(self.cpu),
            "int8": asdict(self.int8), "memory_bytes": self.memory_bytes,
            "threads": self.threads, "backends": self.backends}
        if self.runtimes is not None:
            report["runtimes"] = self.runtimes
        return report


def environment_report(runtime_details: bool = True) -> EnvironmentReport:
    """Everything ``edgepipe env`` shows (see :class:`EnvironmentReport`)."""
    cpu = cpu_info()
    backends = backend_versions()
    return EnvironmentReport(
        python=platform.python_version(), platform=platform.platform(), cpu=cpu,
        int8=int8_verdict(cpu), memory_bytes=memory_bytes(), threads=thread_settings(),
        backends=backends,
        runtimes=runtime_details_report(backends) if runtime_details else None)


def runtime_details_report(versions: dict[str, str | None]) -> dict[str, Any]:
    """What each installed runtime says about itself (providers, devices, threads)."""
    details: dict[str, Any] = {}
    if versions.get("onnxruntime"):
        try:
            import onnxruntime

            details["onnxruntime"] = {"providers": onnxruntime.get_available_providers()}
        except Exception as exc:  # a broken install is worth reporting, not crashing on
            details["onnxruntime"] = {"error": str(exc)}
    if versions.get("openvino"):
        try:
            from edgepipe.runtime.openvino_runtime import import_openvino

            openvino = import_openvino()  # with its telemetry declined
            details["openvino"] = {"devices": openvino.Core().available_devices}
        except Exception as exc:
            details["openvino"] = {"error": str(exc)}
    if versions.get("torch"):
        try:
            import torch

            details["torch"] = {
                "intra_op_threads": torch.get_num_threads(),
                "cuda_available": torch.cuda.is_available(),
                "cuda_devices": [torch.cuda.get_device_name(i)
                                 for i in range(torch.cuda.device_count())],
            }
        except Exception as exc:
            details["torch"] = {"error": str(exc)}
    return details
