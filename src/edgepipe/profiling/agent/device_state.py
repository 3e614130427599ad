"""The device's power and thermal state around a profile, and whether it throttled.

Shipped with the agent (standard library only). Throttling is the usual reason two runs
disagree, so the agent takes a snapshot before loading the model and one after the timed
runs: temperatures (thermal zones), each CPU's frequency limits and governor, the Jetson
power mode (``nvpmodel -q``) and the Raspberry Pi's throttle flags (``vcgencmd
get_throttled``), where the device has them. ``root`` is the filesystem root (tests).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

TEMPERATURE_RISE_C = 15.0


def read_text(path: str) -> str | None:
    """The stripped text of a small file (sysfs, procfs), or None when unreadable."""
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _command(args: list) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def snapshot(root: str = "/", commands: bool = True) -> dict:
    """Temperatures (C), CPU frequencies (MHz), governor, power mode, throttle flags."""
    join = os.path.join
    temperatures = {}
    for zone in sorted(glob.glob(join(root, "sys/class/thermal/thermal_zone*"))):
        value, kind = read_text(join(zone, "temp")), read_text(join(zone, "type"))
        if value and value.lstrip("-").isdigit():
            temperatures[f"{kind or os.path.basename(zone)}"] = int(value) / 1000.0
    cpus = {}
    for folder in sorted(glob.glob(join(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq"))):
        name = os.path.basename(os.path.dirname(folder))
        figures = {key: read_text(join(folder, f"scaling_{key}_freq")) for key in ("cur", "max")}
        cpus[name] = {k: int(v) / 1000.0 for k, v in figures.items() if v and v.isdigit()}
    state = {"temperatures_c": temperatures, "cpu_mhz": cpus,
             "governor": read_text(join(root, "sys/devices/system/cpu/cpu0/cpufreq/"
                                          "scaling_governor")),
             "model": (read_text(join(root, "proc/device-tree/model")) or "").rstrip("\x00") or None}
    if commands:
        state["power_mode"] = _command(["nvpmodel", "-q"])
        state["throttled"] = _command(["vcgencmd", "get_throttled"])
    return state


def throttling(before: dict, after: dict) -> list:
    """Sentences saying how the device may have throttled between the two snapshots."""
    warnings = []
    for zone, end in after.get("temperatures_c", {}).items():
        start = before.get("temperatures_c", {}).get(zone)
        if start is not None and end - start >= TEMPERATURE_RISE_C:
            warnings.append(f"{zone} warmed from {start:.0f} C to {end:.0f} C during the run")
    for cpu, end in after.get("cpu_mhz", {}).items():
        start = before.get("cpu_mhz", {}).get(cpu, {})
        if "max" in start and "max" in end and end["max"] < start["max"]:
            warnings.append(f"{cpu}'s frequency limit fell from {start['max']:.0f} MHz to "
                            f"{end['max']:.0f} MHz (thermal or power capping)")
    flags = after.get("throttled")
    if flags and "=" in flags:
        value = int(flags.split("=", 1)[1], 16)
        if value & 0xF:  # under-voltage, frequency capped, throttled, soft temperature limit
            warnings.append(f"the Raspberry Pi reports {flags} (now: under-voltage, capped "
                            "or throttled)")
    if before.get("power_mode") != after.get("power_mode"):
        warnings.append(f"the power mode changed: {before.get('power_mode')} -> "
                        f"{after.get('power_mode')}")
    return warnings
