"""Energy sensors on sysfs trees in the kernel's documented formats, and the meter."""

from __future__ import annotations

import time

import pytest

from edgepipe.profiling.agent.energy import Window, measure_energy
from edgepipe.profiling.agent.sensors import (
    AndroidBattery,
    Rapl,
    SensorError,
    find_sensors,
    parse_pmic,
)

# `vcgencmd pmic_read_adc` on a Raspberry Pi 5 prints one line per rail and quantity.
PMIC_OUTPUT = """\
     3V7_WL_SW_A current(0)=0.00000000A
       3V3_SYS_A current(1)=0.06051000A
     VDD_CORE_A current(7)=1.50000000A
     3V7_WL_SW_V volt(8)=3.71008800V
       3V3_SYS_V volt(9)=3.31380000V
     VDD_CORE_V volt(15)=0.80000000V
        EXT5V_V volt(24)=5.12968000V
"""


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def rapl_tree(root, energy_uj: int, max_uj: int = 262143328850) -> None:
    zone = root / "sys/class/powercap/intel-rapl:0"
    write(zone / "name", "package-0")
    write(zone / "energy_uj", str(energy_uj))
    write(zone / "max_energy_range_uj", str(max_uj))
    write(root / "sys/class/powercap/intel-rapl:0:0/energy_uj", "5")  # a sub-zone: not added


def test_rapl_counts_and_handles_wraparound(tmp_path):
    rapl_tree(tmp_path, 1_000_000, max_uj=3_000_000)
    sensors, problems = find_sensors(str(tmp_path))
    assert [s.name for s in sensors] == ["rapl"] and not problems
    sensor = sensors[0]
    assert sensor.zones == [str(tmp_path / "sys/class/powercap/intel-rapl:0")]
    start = sensor.read_energy_j()
    write(tmp_path / "sys/class/powercap/intel-rapl:0/energy_uj", "2500000")
    assert sensor.read_energy_j() - start == pytest.approx(1.5)
    write(tmp_path / "sys/class/powercap/intel-rapl:0/energy_uj", "500000")  # wrapped
    assert sensor.read_energy_j() - start == pytest.approx(1.5 + 1.0)
    assert sensor.wraps == 1


def test_rapl_readable_by_root_only_is_explained(tmp_path):
    rapl_tree(tmp_path, 1)

    def denied(path: str) -> str:
        if path.endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", path)
        return (tmp_path / path).read_text().strip() if not path.startswith("/") else \
            open(path).read().strip()

    sensors, problems = find_sensors(str(tmp_path), read_text=denied)
    assert sensors == []
    assert "root only" in problems[0] and "CVE-2020-8694" in problems[0]
    with pytest.raises(SensorError, match="chmod"):
        Rapl([str(tmp_path / "sys/class/powercap/intel-rapl:0")], denied).read_energy_j()


def test_jetson_ina3221_hwmon_prefers_the_input_rail(tmp_path):
    hwmon = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for n, (label, mv, ma) in enumerate([("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 4992, 400),
                                         ("VDD_SOC", 4992, 300)], start=1):
        write(hwmon / f"in{n}_label", label)
        write(hwmon / f"in{n}_input", str(mv))
        write(hwmon / f"curr{n}_input", str(ma))
    sensor = find_sensors(str(tmp_path))[0][0]
    assert sensor.name == "ina3221" and sensor.describe()["scope"] == "VDD_IN"
    assert sensor.read_power_w() == pytest.approx(5.0 * 1.2)


def test_jetson_ina3221_iio_layout_sums_rails(tmp_path):
    iio = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for n, (name, mw) in enumerate([("GPU", 1500), ("CPU", 900), ("SOC", 600)]):
        write(iio / f"rail_name_{n}", name)
        write(iio / f"in_power{n}_input", str(mw))
    sensor = find_sensors(str(tmp_path))[0][0]
    assert sensor.read_power_w() == pytest.approx(3.0)
    assert sensor.describe()["scope"].startswith("sum of")


def test_android_battery_takes_the_magnitude(tmp_path):
    battery = tmp_path / "sys/class/power_supply/battery"
    write(battery / "current_now", "-450000")  # uA; discharge is negative on this vendor
    write(battery / "voltage_now", "3900000")  # uV
    sensors, _ = find_sensors(str(tmp_path))
    assert isinstance(sensors[0], AndroidBattery)
    assert sensors[0].read_power_w() == pytest.approx(0.45 * 3.9)


def test_pi5_pmic_output_pairs_currents_with_voltages():
    expected = 0.06051 * 3.3138 + 1.5 * 0.8  # rails with both a current and a voltage
    assert parse_pmic(PMIC_OUTPUT) == pytest.approx(expected)
    with pytest.raises(SensorError):
        parse_pmic("error: unknown command")


def test_no_sensor_on_an_empty_tree(tmp_path):
    assert find_sensors(str(tmp_path)) == ([], [])


class Ramp:
    """A counter that gains `watts` joules a second; 15 W while `busy` is set, 5 W idle."""

    name, kind, wraps = "fake", "energy-counter", 0

    def __init__(self) -> None:
        self.busy = False
        self.joules = 0.0
        self.last = time.perf_counter()

    def read_energy_j(self) -> float:
        now = time.perf_counter()
        self.joules += (now - self.last) * (15.0 if self.busy else 5.0)
        self.last = now
        return self.joules

    def describe(self) -> dict:
        return {"name": self.name}


def test_measure_energy_subtracts_idle_power():
    sensor = Ramp()

    def step() -> int:  # 10 inferences in 20 ms at 15 W
        sensor.read_energy_j()
        sensor.busy = True
        time.sleep(0.02)
        return 10

    result = measure_energy(step, sensor, idle_s=0.3, min_busy_s=0.6)
    assert result["label"] == "measured"
    assert result["idle_w"] == pytest.approx(5.0, rel=0.05)
    # 10 W above idle for 2 ms an inference = 20 mJ (without the idle subtracted: 30 mJ).
    # The fake sensor integrates wall time, and a loaded machine oversleeps the 20 ms steps
    # (22 mJ seen with four test runs on two cores), hence 20 %.
    assert result["joules_per_inference"] == pytest.approx(0.020, rel=0.2)
    assert result["warning"] is None


class Constant:
    name, kind = "fake-power", "power"

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def read_power_w(self) -> float:
        return self.watts


def test_power_sensor_is_integrated_over_the_window():
    window = Window(Constant(4.0), interval_s=0.01)
    window.start()
    time.sleep(0.2)
    joules, seconds = window.stop()
    assert joules == pytest.approx(4.0 * seconds, rel=1e-6)
    assert len(window.samples) > 5


def test_nvml_counter_on_a_gpu():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA driver here")
    sensors, _ = find_sensors(device="cuda")
    assert sensors and sensors[0].name == "nvml"
    reading = (sensors[0].read_energy_j() if sensors[0].kind == "energy-counter"
               else sensors[0].read_power_w())
    assert reading > 0
