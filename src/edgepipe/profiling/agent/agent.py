"""The profiling agent: one artifact, one runtime, one fresh process; a Profile on stdout.

Self-contained on purpose: it needs Python 3.8+, numpy and the one runtime the artifact
runs in (onnxruntime, openvino, ai-edge-litert or torch), and imports nothing from
edgepipe, so the same file runs on this machine (``edgepipe profile`` starts it in a fresh
process, so the tool's own imports do not count in its memory) and is copied to a device
by the SSH and adb runners. The runtime-specific parts are in :mod:`agent_runtimes`
next to it, shipped with it.

Usage: ``python agent.py REQUEST.json`` -> one JSON document on stdout. The request names
the artifact, the runtime, one ``.npy`` per input, threads, CPU pinning, runs/duration,
warm-up and whether to collect per-layer timings. Timing: ``time.perf_counter`` around
the runtime's own run call, with inputs bound once before the loop.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

AGENT_VERSION = 1
PERCENTILES = (50, 90, 95, 99)


def main(argv: list) -> int:
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--exit-on-eof"):
        print("usage: agent.py REQUEST.json [--exit-on-eof]", file=sys.stderr)
        return 2
    if len(argv) == 3:  # run by a remote runner: stop when its connection goes away
        import threading

        threading.Thread(target=exit_on_eof, daemon=True).start()
    with open(argv[1]) as handle:
        request = json.load(handle)
    try:
        result = profile(request)
    except AgentError as error:
        result = {"agent_version": AGENT_VERSION, "error": {
            "reference": error.reference, "message": str(error), "hint": error.hint}}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


def exit_on_eof() -> None:
    """Wait for end-of-file on stdin, then exit at once (the runner's ssh died)."""
    try:  # the raw descriptor: a buffered reader's lock would abort the interpreter's exit
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(3)


class AgentError(Exception):
    """An expected failure, reported in the JSON (the caller turns it into its own error)."""

    def __init__(self, message: str, hint: str, reference: str) -> None:
        super().__init__(message)
        self.hint = hint
        self.reference = reference


def profile(request: dict) -> dict:
    """Everything the request asks for, measured in this process."""
    cpus = request.get("cpus")
    if cpus:
        if not hasattr(os, "sched_setaffinity"):
            raise AgentError("CPU pinning needs Linux (os.sched_setaffinity).",
                             "profile without --cpus on this OS.", "no-pinning")
        try:
            os.sched_setaffinity(0, set(cpus))
        except (OSError, ValueError) as exc:
            usable = sorted(os.sched_getaffinity(0))
            raise AgentError(f"Cannot pin to CPUs {cpus}: {getattr(exc, 'strerror', None) or exc}"
                             f"; this device lets the agent use CPUs {usable}.",
                             f"pick --cpus among {usable}.", "bad-cpus") from exc
    try:
        import numpy as np
    except ImportError as exc:
        raise AgentError(f"numpy is not installed for {sys.executable}: {exc}",
                         "install it there (pip install numpy), or point to a Python that has "
                         "it (--remote-python).", "numpy-missing") from exc

    runtimes = sibling("agent_runtimes")
    device = request.get("device", "cpu")
    backend = runtimes.backend(request["runtime"], AgentError, device,
                               request.get("precision", "fp32"))
    state = sibling("device_state")
    before = state.snapshot()
    arrays = [np.load(path) for path in request["inputs"]]
    rss_after_imports = memory_status().get("VmRSS")
    peak_reset = reset_peak_rss()

    start = time.perf_counter()
    runner = backend.open(request["artifact"], int(request["threads"]))
    load_s = time.perf_counter() - start
    phase("loaded", load_s=load_s)
    runner.bind(arrays)
    start = time.perf_counter()
    runner.invoke()
    first_s = time.perf_counter() - start
    phase("first-inference", first_inference_s=first_s)

    warm = loop(runner, int(request.get("warmup_runs", 10)), float(request.get("warmup_s", 0.5)))
    steady = loop(runner, int(request["runs"]), float(request["duration_s"]))
    phase("steady", count=len(steady[0]), p50_s=float(np.median(steady[0])))
    status = memory_status()
    after = state.snapshot()
    result = {
        "agent_version": AGENT_VERSION,
        "identity": identity(backend),
        "device_state": {"before": before, "after": after,
                         "warnings": state.throttling(before, after)},
        "runtime": {"name": backend.name, "version": backend.version(),
                    "options": runner.options, "threads": int(request["threads"]),
                    "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                    else None},
        "load_s": load_s,
        "first_inference_s": first_s,
        "warmup": {"count": len(warm[0]), "seconds": sum(warm[0])},
        "latency": statistics(steady[0], np),
        "memory": {
            "rss_after_imports_bytes": rss_after_imports,
            "peak_rss_bytes": status.get("VmHWM"),
            "peak_rss_increase_bytes": (status["VmHWM"] - rss_after_imports
                                        if peak_reset and status.get("VmHWM") else None),
            "method": ("VmHWM of the agent process, reset after its imports (clear_refs 5): "
                       "load, first inference, warm-up and steady state" if peak_reset else
                       "ru_maxrss of the agent process (imports included: clear_refs unavailable)"),
        },
    }
    if steady[1]:
        result["runtime_latency"] = {**statistics(steady[1], np),
                                     "clock": backend.own_clock}
    if request.get("energy"):
        result["energy"] = measure_energy(runner, request["energy"], steady[0], np)
    if request.get("per_layer"):
        # The timed session's thread pool would still spin and compete for the cores.
        del runner
        import gc

        gc.collect()
        result["layers"] = backend.layers(request["artifact"], int(request["threads"]), arrays,
                                          int(request.get("layer_runs", 20)))
    return result


def phase(name: str, **figures) -> None:
    """A progress line on stderr: what is measured so far survives a run that dies later."""
    print("edgepipe-phase " + json.dumps({"phase": name, **figures}), file=sys.stderr,
          flush=True)


def sibling(name: str):
    """A module shipped next to this file on a device, else edgepipe's own copy."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return importlib.import_module(f"edgepipe.profiling.agent.{name}")


def measure_energy(runner, options: dict, times: list, np) -> dict:
    """Energy per inference from the first readable sensor, or why there is none."""
    sensors = sibling("sensors")
    energy = sibling("energy")
    found, problems = sensors.find_sensors(options.get("root", "/"), options.get("device", "cpu"))
    if not found:
        return {"label": "unavailable", "problems": problems, "why": (
            "no readable energy sensor (looked for powercap/RAPL, Jetson INA3221, Raspberry "
            "Pi 5 PMIC, Android battery)" + (": " + "; ".join(problems) if problems else ""))}
    per_step = max(1, int(0.1 / max(float(np.median(times)), 1e-6)))
    invoke = runner.invoke

    def step() -> int:
        for _ in range(per_step):
            invoke()
        return per_step

    try:
        result = energy.measure_energy(step, found[0], float(options.get("idle_s", 2.0)),
                                       float(options.get("min_busy_s", 3.0)))
    except sensors.SensorError as exc:
        return {"label": "unavailable", "why": str(exc), "problems": problems}
    result["other_problems"] = problems
    return result


def loop(runner, runs: int, seconds: float) -> tuple:
    """Invoke until both ``runs`` calls and ``seconds`` have passed; per-call times (s), and
    the runtime's own per-call latency where it reports one."""
    wall, own = [], []
    own_latency = runner.own_latency
    clock = time.perf_counter
    invoke = runner.invoke
    end = clock() + seconds
    while len(wall) < runs or clock() < end:
        start = clock()
        invoke()
        wall.append(clock() - start)
        if own_latency is not None:
            own.append(own_latency())
    return wall, own


def statistics(times: list, np) -> dict:
    """count, mean, std, min, percentiles and max (seconds), raw times kept."""
    values = np.asarray(times, dtype=np.float64)
    stats = {"count": int(values.size), "mean_s": float(values.mean()),
             "std_s": float(values.std(ddof=1)) if values.size > 1 else 0.0,
             "min_s": float(values.min()), "max_s": float(values.max())}
    for p in PERCENTILES:
        stats[f"p{p}_s"] = float(np.percentile(values, p))
    stats["raw_s"] = [float(v) for v in values]
    return stats


def memory_status() -> dict:
    """VmRSS and VmHWM of this process in bytes (Linux); ru_maxrss elsewhere."""
    found = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) * 1024
    except OSError:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        found["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return found


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak excludes the imports."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def identity(backend) -> dict:
    """Where this ran: machine, OS, Python, CPU model, governor and temperatures if readable."""
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith(("model name", "hardware", "model\t")):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"hostname": platform.node(), "system": platform.system(),
            "release": platform.release(), "machine": platform.machine(),
            "python": platform.python_version(), "cpu_model": cpu_model,
            "cpu_count": os.cpu_count(), "governor": sibling("device_state").read_text(
                "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "runtime": backend.name}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
