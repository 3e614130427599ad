"""Profile on an Android phone over adb: TFLite's ``benchmark_model``, or the agent.

``--host adb://SERIAL`` pushes the artifact to ``/data/local/tmp/edgepipe-*`` and runs either
TFLite's ``benchmark_model`` binary (``--benchmark-model PATH``, the Android build the user
downloaded or built) with the thread count and core pinning (``taskset``) asked for, or the
profiling agent with a Python on the phone (``--remote-python``, e.g. Termux's). Energy
comes from the battery's fuel gauge (``current_now`` x ``voltage_now``), sampled over adb
while the phone is idle and then while the model runs; the phone must be unplugged.

Honest limits: this has been tested against captured ``benchmark_model`` output and a fake
of nothing else; it has not been run on a phone.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.errors import InputError, TargetError
from edgepipe.profiling.agent.sensors import AndroidBattery
from edgepipe.profiling.runner import LatencySettings

REMOTE_ROOT = "/data/local/tmp"
BATTERY = "/sys/class/power_supply/battery"


def parse_serial(url: str) -> str:
    """``adb://SERIAL`` -> ``SERIAL`` (``adb://`` alone: the only device attached)."""
    if not url.startswith("adb://"):
        raise InputError(f"Cannot read --remote {url!r}.", hint="write adb://SERIAL (from "
                         "`adb devices`), or adb:// for the only phone attached.",
                         reference="bad-host")
    return url[len("adb://"):].strip("/")


def cpu_mask(cpus: tuple[int, ...]) -> str:
    """``(4, 5, 6, 7)`` -> ``f0``: the hexadecimal mask ``taskset`` takes."""
    return format(sum(1 << cpu for cpu in cpus), "x")


@dataclass(frozen=True)
class AdbHost:
    """A phone: its serial, and TFLite's benchmark_model binary if the user gave one."""

    serial: str
    benchmark_model: Path | None = None

    @property
    def destination(self) -> str:
        return f"adb://{self.serial}"


class AdbClient:
    """One phone, through the ``adb`` client on this machine."""

    def __init__(self, serial: str) -> None:
        self.serial = serial

    def adb(self, *args: str, timeout_s: float = 120) -> str:
        command = ["adb", *(["-s", self.serial] if self.serial else []), *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
        except FileNotFoundError as exc:
            raise TargetError("The adb client is not installed here.",
                              hint="install Android's platform-tools (apt install adb) and "
                              "check `adb devices`.", reference="no-adb") from exc
        except subprocess.TimeoutExpired as exc:
            raise TargetError(f"adb {' '.join(args[:2])} took over {timeout_s:.0f} s.",
                              hint="check the phone (screen lock, USB) and run again.",
                              reference="remote-timeout") from exc
        text = done.stderr.strip()
        if done.returncode != 0 or "error:" in text:
            if "unauthorized" in text:
                hint = "accept the USB debugging prompt on the phone."
            elif "not found" in text or "offline" in text or "no devices" in text:
                hint = "`adb devices` lists the serials of the phones attached."
            else:
                hint = "run the same adb command by hand to see more."
            raise TargetError(f"adb {' '.join(args[:2])} failed on {self.serial or 'the phone'}:"
                              f" {text or done.stdout.strip()[-300:]}", hint=hint,
                              reference="adb-failed")
        return done.stdout

    def battery(self) -> AndroidBattery:
        return AndroidBattery(BATTERY, read_text=lambda path: self.adb("shell", "cat", path,
                                                                       timeout_s=10).strip())

    @contextlib.contextmanager
    def remote_folder(self) -> Iterator[str]:
        """A fresh folder under /data/local/tmp on the phone, removed afterwards."""
        remote = f"{REMOTE_ROOT}/edgepipe-{uuid.uuid4().hex[:8]}"
        self.adb("shell", "mkdir", "-p", remote)
        try:
            yield remote
        finally:
            self.adb("shell", "rm", "-rf", shlex.quote(remote), timeout_s=30)

    def benchmark_model(self, binary: Path, artifact: Path, settings: LatencySettings,
                        threads: int) -> tuple[str, BatteryEnergy | None]:
        """Run benchmark_model on the phone as ``settings`` ask; (its output, the battery
        energy or None when energy was not asked for)."""
        timeout_s = settings.timeout_s
        with self.remote_folder() as remote:
            self.adb("push", str(binary), f"{remote}/benchmark_model", timeout_s=timeout_s)
            self.adb("push", str(artifact), f"{remote}/{artifact.name}", timeout_s=timeout_s)
            self.adb("shell", "chmod", "755", f"{remote}/benchmark_model")
            command = (f"{remote}/benchmark_model --graph={remote}/{artifact.name} "
                       f"--num_threads={threads} --num_runs={settings.runs} "
                       f"--min_secs={settings.duration_s} --warmup_runs={settings.warmup_runs} "
                       f"--enable_op_profiling={'true' if settings.per_layer else 'false'}")
            if settings.cpus:
                command = f"taskset {cpu_mask(settings.cpus)} {command}"
            if not settings.energy:
                return self.adb("shell", command, timeout_s=timeout_s), None
            return self._with_energy(command, settings.energy_idle_s, timeout_s)

    def _with_energy(self, command: str, idle_s: float,
                     timeout_s: float) -> tuple[str, BatteryEnergy]:
        """Sample battery power while idle, then while ``command`` runs."""
        from edgepipe.profiling.agent.energy import Window

        sensor = self.battery()
        idle = Window(sensor, interval_s=0.25)
        idle.start()
        time.sleep(idle_s)
        idle_j, idle_time = idle.stop()
        busy = Window(sensor, interval_s=0.25)
        output: dict[str, str] = {}
        worker = threading.Thread(target=lambda: output.update(
            text=self.adb("shell", command, timeout_s=timeout_s)))
        busy.start()
        worker.start()
        worker.join()
        busy_j, busy_time = busy.stop()
        return output.get("text", ""), BatteryEnergy(
            sensor=sensor.describe(), idle_w=idle_j / idle_time, busy_j=busy_j,
            busy_s=busy_time, samples=len(busy.samples))


@dataclass(frozen=True)
class BatteryEnergy:
    """The phone's fuel gauge over an idle window and the benchmark_model run."""

    sensor: dict[str, Any]
    idle_w: float
    busy_j: float
    busy_s: float
    samples: int
    note: str = ("the busy window spans the whole benchmark_model run (loading and warm-up "
                 "included); the phone must run on battery")

    @property
    def busy_w(self) -> float:
        return self.busy_j / self.busy_s

    def per_inference(self, inferences: int) -> dict[str, Any]:
        """The Profile's measured energy block for ``inferences`` runs in the busy window."""
        net = self.busy_j - self.idle_w * self.busy_s
        return {"label": "measured", **self.to_dict(), "inferences": inferences,
                "joules_per_inference": net / inferences,
                "rule": "(busy energy - idle power x busy time) / inferences"}

    def to_dict(self) -> dict[str, Any]:
        return {"sensor": self.sensor, "idle_w": self.idle_w, "busy_j": self.busy_j,
                "busy_s": self.busy_s, "busy_w": self.busy_w, "samples": self.samples,
                "note": self.note}
