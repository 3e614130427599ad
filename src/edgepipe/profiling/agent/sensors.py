"""Energy and power sensors: RAPL, NVML, Jetson INA3221, Raspberry Pi 5 PMIC, Android battery.

Self-contained (standard library only; ``pynvml`` imported when asked for) so it ships with
the profiling agent to devices. Every reader takes ``root`` (the filesystem root) so the
parsing is tested on sysfs trees with the kernel's documented formats, and the file reads
go through ``read_text`` so a remote runner can swap them. A sensor either counts energy
(``read_energy_j``, cumulative, wrap-around handled) or gives instant power
(``read_power_w``, integrated by :mod:`energy`'s sampler).
"""

from __future__ import annotations

import glob
import os
import re
import subprocess


def read_file(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


class SensorError(Exception):
    """A sensor that exists but cannot be read (permissions, a failing tool)."""


class Sensor:
    """One readable sensor: ``kind`` is ``energy-counter`` or ``power``."""

    name = "sensor"
    kind = "power"
    device = "cpu"  # what it measures: "cpu" (package or board) or "cuda"
    resolution = ""

    def __init__(self, source: str, read_text=read_file) -> None:
        self.source = source
        self.read_text = read_text

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "source": self.source,
                "resolution": self.resolution, "measures": self.device}


class Rapl(Sensor):
    """Linux powercap RAPL package domains (Intel and AMD): energy_uj counters, summed.

    Each top-level zone (``intel-rapl:N``, one per package) is read; sub-zones (cores, dram)
    are inside it and not added again. A counter that went down has wrapped at
    ``max_energy_range_uj``. Since CVE-2020-8694 the files are readable by root only.
    """

    name = "rapl"
    kind = "energy-counter"
    resolution = "1 uJ counter (updated about every 1 ms)"

    def __init__(self, zones: list, read_text=read_file) -> None:
        super().__init__(", ".join(zones), read_text)
        self.zones = zones
        self.ranges = [int(read_text(os.path.join(z, "max_energy_range_uj"))) for z in zones]
        self.last = [None] * len(zones)
        self.total_uj = 0
        self.wraps = 0

    def read_energy_j(self) -> float:
        for i, zone in enumerate(self.zones):
            path = os.path.join(zone, "energy_uj")
            try:
                value = int(self.read_text(path))
            except PermissionError as exc:
                raise SensorError(
                    f"{path} is readable by root only (Linux restricts RAPL since "
                    "CVE-2020-8694); run as root or `sudo chmod o+r` the energy_uj files") from exc
            if self.last[i] is not None:
                delta = value - self.last[i]
                if delta < 0:  # the counter wrapped
                    delta += self.ranges[i]
                    self.wraps += 1
                self.total_uj += delta
            self.last[i] = value
        return self.total_uj / 1e6


class Nvml(Sensor):
    """An NVIDIA GPU through NVML: total energy (mJ since driver load, Volta and newer),
    else power usage (mW) sampled."""

    name = "nvml"
    device = "cuda"

    def __init__(self, index: int = 0) -> None:
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        gpu = pynvml.nvmlDeviceGetName(self.handle)
        super().__init__(f"NVML GPU {index} ({gpu if isinstance(gpu, str) else gpu.decode()})")
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.kind, self.resolution = "energy-counter", "1 mJ counter"
        except pynvml.NVMLError:
            self.kind, self.resolution = "power", "1 mW power reading"

    def read_energy_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3

    def read_power_w(self) -> float:
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3


class Ina3221(Sensor):
    """Jetson INA3221 rails. hwmon layout (JetPack 5+): ``in{N}_label``, ``in{N}_input``
    (mV), ``curr{N}_input`` (mA); the older iio layout: ``rail_name_{N}`` and
    ``in_power{N}_input`` (mW). The board input rail (VDD_IN) is used when one is labelled,
    else the sum of the rails (which misses what no rail monitors)."""

    name = "ina3221"
    resolution = "per-rail mV/mA (or mW) readings, sampled"

    def __init__(self, rails: list, read_text=read_file) -> None:
        super().__init__("; ".join(f"{label}: {files[0]}" for label, files in rails), read_text)
        total = [rail for rail in rails if rail[0].upper().startswith("VDD_IN")]
        self.rails = total or rails
        self.scope = total[0][0] if total else "sum of " + ", ".join(r[0] for r in rails)

    def read_power_w(self) -> float:
        power = 0.0
        for _, files in self.rails:
            if len(files) == 1:  # in_powerN_input, mW
                power += int(self.read_text(files[0])) / 1e3
            else:  # mV x mA
                power += int(self.read_text(files[0])) * int(self.read_text(files[1])) / 1e6
        return power

    def describe(self) -> dict:
        return {**super().describe(), "scope": self.scope}


def parse_pmic(text: str) -> float:
    """Watts from ``vcgencmd pmic_read_adc``: each rail's ``_A`` current times its ``_V``
    voltage (``VDD_CORE_A current(7)=0.63784000A`` with ``VDD_CORE_V volt(15)=0.788V``)."""
    amps, volts = {}, {}
    for name, kind, value in re.findall(r"(\S+?)_([AV])\s+\w+\(\d+\)=([\d.]+)[AV]", text):
        (amps if kind == "A" else volts)[name] = float(value)
    if not amps:
        raise SensorError("vcgencmd pmic_read_adc printed no rail currents")
    return sum(current * volts[name] for name, current in amps.items() if name in volts)


class Rpi5Pmic(Sensor):
    """Raspberry Pi 5 PMIC rails through ``vcgencmd pmic_read_adc`` (sum of rail powers)."""

    name = "rpi5-pmic"
    resolution = "PMIC ADC rail readings, sampled (one vcgencmd call per sample)"

    def __init__(self, command=("vcgencmd", "pmic_read_adc")) -> None:
        super().__init__(" ".join(command))
        self.command = list(command)

    def read_power_w(self) -> float:
        try:
            done = subprocess.run(self.command, capture_output=True, text=True, timeout=5,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SensorError(f"{self.source} failed: {exc}") from exc
        if done.returncode:
            raise SensorError(f"{self.source} exited {done.returncode}: {done.stderr.strip()}")
        return parse_pmic(done.stdout)


class AndroidBattery(Sensor):
    """Android battery: ``current_now`` (uA) x ``voltage_now`` (uV). The sign of the current
    differs between vendors (discharge positive or negative), so its magnitude is used; the
    phone must run on battery (unplugged) for the figure to be the phone's draw."""

    name = "android-battery"
    resolution = "battery fuel gauge readings (vendor update rate, often 0.25-1 s), sampled"

    def __init__(self, folder: str, read_text=read_file) -> None:
        super().__init__(folder, read_text)

    def read_power_w(self) -> float:
        current = abs(int(self.read_text(os.path.join(self.source, "current_now"))))
        voltage = int(self.read_text(os.path.join(self.source, "voltage_now")))
        return current * voltage / 1e12


def find_sensors(root: str = "/", device: str = "cpu", read_text=read_file) -> tuple:
    """(sensors readable now, problems: sensors present but unreadable, as sentences)."""
    found, problems = [], []

    def attempt(make) -> None:
        try:
            sensor = make()
            sensor.read_energy_j() if sensor.kind == "energy-counter" else sensor.read_power_w()
            found.append(sensor)
        except (SensorError, PermissionError, OSError, ValueError) as exc:
            problems.append(str(exc))

    join = os.path.join
    if device == "cuda":
        try:
            found.append(Nvml())
        except Exception as exc:  # no pynvml, no driver, no GPU
            problems.append(f"NVML unavailable: {exc}")
        return found, problems
    zones = sorted(p for p in glob.glob(join(root, "sys/class/powercap/*-rapl:[0-9]*"))
                   if re.search(r"rapl:\d+$", p))
    if zones:
        attempt(lambda: Rapl(zones, read_text))
    rails = []
    for hwmon in sorted(glob.glob(join(root, "sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*"))):
        for label in sorted(glob.glob(join(hwmon, "in[0-9]_label"))):
            n = re.search(r"in(\d+)_label$", label).group(1)
            files = [join(hwmon, f"in{n}_input"), join(hwmon, f"curr{n}_input")]
            if all(os.path.exists(f) for f in files):
                rails.append((read_text(label), files))
    for iio in sorted(glob.glob(join(root, "sys/bus/i2c/drivers/ina3221x/*/iio:device*"))):
        for name in sorted(glob.glob(join(iio, "rail_name_[0-9]"))):
            n = re.search(r"rail_name_(\d+)$", name).group(1)
            rails.append((read_text(name), [join(iio, f"in_power{n}_input")]))
    if rails:
        attempt(lambda: Ina3221(rails, read_text))
    if root == "/" and os.path.exists("/proc/device-tree/model") and \
            "Raspberry Pi 5" in read_text("/proc/device-tree/model"):
        attempt(Rpi5Pmic)
    battery = join(root, "sys/class/power_supply/battery")
    if os.path.exists(join(battery, "current_now")):
        attempt(lambda: AndroidBattery(battery, read_text))
    return found, problems
