"""adb runner: benchmark_model's output read into a Profile, and the errors without a phone.

The outputs below are written in the format TFLite's benchmark_model prints (documented on
tensorflow.org's performance-measurement page and in the tool's README); no phone is used.
"""

from __future__ import annotations

import pytest

from edgepipe.errors import InputError, TargetError
from edgepipe.profiling.runners.adb import AdbHost, cpu_mask, parse_serial
from edgepipe.profiling.runners.benchmark_model import parse

NEWER = """\
INFO: STARTING!
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/edgepipe-1a2b3c4d/digits.tflite]
INFO: Enable op profiling: [1]
INFO: The input model file size (MB): 0.031
INFO: Initialized session in 3.42ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=4210 first=310 curr=95 min=88 max=701 avg=118.6 std=21 p5=90 median=112 p95=160

INFO: Running benchmark for at least 100 iterations and at least 3 seconds but terminate if exceeding 150 seconds.
INFO: count=26012 first=101 curr=97 min=86 max=1804 avg=113.9 std=30 p5=89 median=109 p95=151

INFO: Inference timings in us: Init: 3420, First inference: 310, Warmup (avg): 118.6, Inference (avg): 113.9
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=1.25 overall=2.5
INFO: Overall peak memory footprint (MB) via periodic monitoring: 6.75
INFO: Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.000\t    0.040\t    0.035\t 31.250%\t 31.250%\t     0.000\t        1\t[conv1]:0
\t             MAX_POOL_2D\t            0.035\t    0.006\t    0.005\t  4.464%\t 35.714%\t     0.000\t        1\t[pool1]:1
\t                 CONV_2D\t            0.040\t    0.050\t    0.048\t 42.857%\t 78.571%\t     0.000\t        1\t[conv2]:2
\t         FULLY_CONNECTED\t            0.088\t    0.025\t    0.024\t 21.429%\t100.000%\t     0.000\t        1\t[fc]:3

============================== Top by Computation Time ==============================
"""

OLDER = """\
count=50 first=249042 curr=250889 min=247067 max=254474 avg=249684 std=1442
Inference timings in us: Init: 16242, First inference: 360262, Warmup (avg): 304586, Inference (avg): 249684
Peak memory footprint (MB): init=4.92969 overall=138.809
"""


def test_newer_output_with_percentiles_and_ops():
    figures = parse(NEWER)
    steady = figures.steady
    assert steady["count"] == 26012
    assert steady["mean_s"] == pytest.approx(113.9e-6)
    assert steady["p50_s"] == pytest.approx(109e-6) and steady["p95_s"] == pytest.approx(151e-6)
    assert steady["raw_s"] is None and "p99" in steady["note"]
    assert figures.load_s == pytest.approx(3.42e-3)
    assert figures.warmup["count"] == 4210
    assert figures.memory["peak_bytes"] == int(6.75 * 2**20)
    rows = figures.layers["rows"]
    assert [r["op_type"] for r in rows] == ["CONV_2D", "CONV_2D", "FULLY_CONNECTED",
                                            "MAX_POOL_2D"]
    assert rows[0]["mean_us"] == pytest.approx(48.0) and rows[0]["name"] == "[conv2]:2"
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


def test_older_output_without_percentiles():
    figures = parse(OLDER)
    assert figures.steady["count"] == 50 and "p50_s" not in figures.steady
    assert figures.first_inference_s == pytest.approx(0.360262)
    assert figures.memory["overall_delta_bytes"] == int(138.809 * 2**20)
    assert figures.layers is None


def test_a_failed_run_is_an_error():
    with pytest.raises(ValueError, match="did not finish"):
        parse("ERROR: Failed to allocate tensors!\nERROR: Benchmarking failed.\n")


def test_urls_and_masks():
    assert parse_serial("adb://R5CT1234") == "R5CT1234"
    assert parse_serial("adb://") == ""
    with pytest.raises(InputError):
        parse_serial("R5CT1234")
    assert cpu_mask((4, 5, 6, 7)) == "f0" and cpu_mask((0,)) == "1"


def test_without_adb_installed(digits_artifacts, tmp_path, monkeypatch):
    from edgepipe.profiling.profile import profile_artifact
    from edgepipe.profiling.runner import LatencySettings

    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb here
    with pytest.raises(TargetError) as error:
        profile_artifact(digits_artifacts / "digits-cnn.tflite", "android-sd8gen2",
                         LatencySettings(runs=5, duration_s=0),
                         host=AdbHost("R5CT1234", binary))
    assert error.value.reference == "no-adb" and "platform-tools" in error.value.hint
    with pytest.raises(InputError, match="runs .tflite"):
        profile_artifact(digits_artifacts / "digits-cnn.onnx", "android-sd8gen2",
                         LatencySettings(runs=5, duration_s=0),
                         host=AdbHost("R5CT1234", binary))
