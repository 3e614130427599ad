"""Energy per inference from a sensor, idle power subtracted.

Self-contained (standard library only) so it ships with the profiling agent.
``measure_energy`` first measures idle power over ``idle_s`` (sleeping), then calls
``step()`` (which runs some inferences and returns how many) until ``min_busy_s`` have
passed, and computes::

    joules per inference = (busy energy - idle power x busy time) / inferences

An energy counter is read at the window's ends; a power sensor is sampled by a thread at a
fixed interval and integrated with the trapezoid rule.
"""

from __future__ import annotations

import threading
import time

SAMPLE_S = 0.05


class Window:
    """Energy over a window of time from one sensor (start, then stop -> joules)."""

    def __init__(self, sensor, interval_s: float = SAMPLE_S) -> None:
        self.sensor = sensor
        self.interval_s = interval_s
        self.samples: list = []
        self._stop = threading.Event()
        self._thread = None
        self._start_j = 0.0
        self.start_time = 0.0

    def start(self) -> None:
        self.start_time = time.perf_counter()
        if self.sensor.kind == "energy-counter":
            self._start_j = self.sensor.read_energy_j()
            return
        self.samples = [(self.start_time, self.sensor.read_power_w())]
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append((time.perf_counter(), self.sensor.read_power_w()))

    def stop(self) -> tuple:
        """(joules, seconds) since ``start``."""
        if self.sensor.kind == "energy-counter":
            joules = self.sensor.read_energy_j() - self._start_j
            return joules, time.perf_counter() - self.start_time
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter(), self.sensor.read_power_w()))
        joules = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1)
                     in zip(self.samples, self.samples[1:]))
        return joules, self.samples[-1][0] - self.start_time


def measure_energy(step, sensor, idle_s: float = 2.0, min_busy_s: float = 3.0,
                   interval_s: float = SAMPLE_S) -> dict:
    """Energy per inference of ``step`` measured with ``sensor`` (see the module docstring)."""
    idle = Window(sensor, interval_s)
    idle.start()
    time.sleep(idle_s)
    idle_j, idle_time = idle.stop()
    idle_w = idle_j / idle_time
    busy = Window(sensor, interval_s)
    inferences = 0
    busy.start()
    while time.perf_counter() - busy.start_time < min_busy_s:
        inferences += step()
    busy_j, busy_time = busy.stop()
    net_j = busy_j - idle_w * busy_time
    result = {
        "label": "measured", "sensor": sensor.describe(),
        "idle_w": idle_w, "idle_window_s": idle_time, "busy_w": busy_j / busy_time,
        "window_s": busy_time, "inferences": inferences, "energy_j": busy_j,
        "net_energy_j": net_j, "joules_per_inference": net_j / max(1, inferences),
        "rule": "(busy energy - idle power x busy time) / inferences",
        "counter_wraps": getattr(sensor, "wraps", 0), "warning": None,
    }
    if sensor.kind == "power":
        result["samples"] = len(busy.samples)
    if net_j <= 0:
        result["warning"] = ("busy power was not above idle power: the inference's energy is "
                             "below what this sensor resolves; run longer or with a larger batch")
    elif net_j < 0.05 * busy_j:
        result["warning"] = ("the inference added under 5% to the idle energy, so the figure "
                             "is dominated by idle-power noise")
    return result

