"""Issue 3's done-when: the bundled digits CNN exported to all three formats with --data, then
checked by an independent script that loads each artifact with its runtime's own API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "examples" / "check_artifacts.py"


def test_export_with_data_then_independent_check(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("export", "builtin:digits-cnn", "-f", "onnx", "-f", "tflite", "-f", "openvino",
                 "--data", "builtin:digits", "--samples", "32", "-o", out, "--json")
    assert result.code == 0, result
    artifacts = result.json()["result"]["artifacts"]
    assert sorted(a["format"] for a in artifacts) == ["onnx", "openvino", "tflite"]
    for artifact in artifacts:
        inputs = artifact["parity"]["inputs"]
        assert inputs["kind"] == "data" and inputs["count"] == 32
        (output,) = artifact["parity"]["outputs"]
        assert output["shape"] == [32, 10]  # every sample ran, one model batch at a time
        assert output["top1_agreement"] == 1.0 and output["sqnr_db"] > 60

    check = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True,
                           text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    lines = [line for line in check.stdout.splitlines() if line.strip()]
    assert len(lines) == 3 and all(line.endswith(" ok") for line in lines), check.stdout
