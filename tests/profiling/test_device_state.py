"""Power and thermal state snapshots and throttling warnings, on sysfs trees."""

from __future__ import annotations

from edgepipe.profiling.agent.device_state import snapshot, throttling


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def device(root, temp_mc: int, max_khz: int) -> dict:
    write(root / "sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    write(root / "sys/class/thermal/thermal_zone0/temp", str(temp_mc))
    cpufreq = root / "sys/devices/system/cpu/cpu0/cpufreq"
    write(cpufreq / "scaling_cur_freq", "1500000")
    write(cpufreq / "scaling_max_freq", str(max_khz))
    write(cpufreq / "scaling_governor", "ondemand")
    write(root / "proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0\x00")
    return snapshot(str(root), commands=False)


def test_snapshot_reads_the_kernel_units(tmp_path):
    state = device(tmp_path, 48312, 2400000)
    assert state["temperatures_c"] == {"cpu-thermal": 48.312}
    assert state["cpu_mhz"]["cpu0"] == {"cur": 1500.0, "max": 2400.0}
    assert state["governor"] == "ondemand" and state["model"].startswith("Raspberry Pi 5")


def test_throttling_is_reported(tmp_path):
    before = device(tmp_path, 45000, 2400000)
    after = device(tmp_path, 83000, 1800000)
    warnings = throttling(before, after)
    assert any("warmed from 45 C to 83 C" in w for w in warnings)
    assert any("fell from 2400 MHz to 1800 MHz" in w for w in warnings)
    assert throttling(before, before) == []
    assert throttling({}, {"throttled": "throttled=0x50005"})[0].startswith("the Raspberry Pi")
    assert throttling({}, {"throttled": "throttled=0x50000"}) == []  # only past events


def test_empty_machine(tmp_path):
    assert snapshot(str(tmp_path), commands=False)["temperatures_c"] == {}
