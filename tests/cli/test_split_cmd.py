"""`edgepipe split`, `split points` and `split plan` through the real CLI."""

from __future__ import annotations

import json


def test_points(cli):
    result = cli("split", "points", "builtin:digits-cnn", "--json")
    assert result.code == 0, result
    labels = [p["label"] for p in result.json()["result"]["points"]]
    assert "pool1" in labels and "pool2" in labels
    assert "pool2" in cli("split", "points", "builtin:digits-cnn").stdout


def test_split_then_plan(cli, tmp_path):
    out = tmp_path / "split"
    made = cli("split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4", "--data",
               "builtin:digits", "-o", out, "--distill-epochs", "4", "--finetune-epochs", "3",
               "--json")
    assert made.code == 0, made
    result = made.json()["result"]
    assert result["bytes_per_sample"]["packed_bytes"] == 4 * 8 * 8
    assert result["accuracy"]["split_onnxruntime"] > 0.8
    steps = json.loads((out / "manifest.json").read_text())["steps"]
    assert steps[-1]["step"] == "split" and steps[-1]["result"]["cut"]["label"] == "pool2"
    planned = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--bandwidth",
                  "10Mbps", "--rtt", "5ms", "--split", out, "--data", "builtin:digits", "--json")
    assert planned.code == 0, planned
    plan = planned.json()["result"]
    options = {o["option"]: o for o in plan["options"]}
    bottleneck = options["cut pool2 (bottleneck)"]
    assert bottleneck["bytes"] == 256
    assert bottleneck["transfer_s"] == 256 * 8 / 10e6 + 0.005
    # its own head.onnx and tail.onnx: the encoder costs time on the device, so the
    # bottleneck's head is estimated slower than the float head cut at the same place
    raw = options["cut pool2 (raw 8-bit)"]
    assert bottleneck["sources"] == {"head": "estimated", "tail": "estimated"}
    assert bottleneck["head_s"] > raw["head_s"] and bottleneck["tail_s"] > 0
    assert "head.onnx" in plan["models"]["bottleneck"]
    measured = cli("split", "plan", "builtin:digits-cnn", "--device", "host", "--server",
                   "host", "--bandwidth", "10Mbps", "--measure", "--cut", "pool2", "--split",
                   out, "--json")
    assert measured.code == 0, measured
    row = {o["option"]: o for o in measured.json()["result"]["options"]}["cut pool2 (bottleneck)"]
    assert row["sources"] == {"head": "measured", "tail": "measured"}
    assert row["head_s"] > 0 and row["tail_s"] > 0
    assert options["all on device"]["bytes"] == 0 and plan["pareto"]
    assert [s["mbps"] for s in plan["sweep"]][:3] == [1.0, 5.0, 10.0]
    assert plan["label"] == "estimated"
    human = cli("split", "plan", "builtin:digits-cnn", "--device", "stm32f746",
                "--precision", "int8", "--bandwidth", "1Mbps")
    assert human.code == 0 and "best by bandwidth" in human.stdout


def test_bad_input(cli, tmp_path):
    no_data = cli("split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4", "-o",
                  tmp_path / "x")
    assert no_data.code == 1 and "split-needs-data" in no_data.stderr
    bad_rate = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--bandwidth",
                   "fast")
    assert bad_rate.code == 1 and "bad-bandwidth" in bad_rate.stderr
    unknown = cli("split", "builtin:digits-cnn", "--at", "pool9", "--bottleneck", "4",
                  "--data", "builtin:digits", "-o", tmp_path / "y")
    assert unknown.code == 1 and "pool2" in unknown.stderr


def test_measured_plan_on_this_machine(cli):
    planned = cli("split", "plan", "builtin:digits-cnn", "--device", "host", "--server", "host",
                  "--bandwidth", "100Mbps", "--measure", "--cut", "pool1", "--cut", "pool2", "--json")
    assert planned.code == 0, planned
    plan = planned.json()["result"]
    assert plan["label"] == "measured and estimated"
    options = {o["option"]: o for o in plan["options"]}
    assert set(options) >= {"cut pool1 (raw 8-bit)", "cut pool2 (raw 8-bit)", "all on device"}
    assert not any(name.startswith("cut conv") for name in options)
    for name in ("cut pool1 (raw 8-bit)", "cut pool2 (raw 8-bit)"):
        assert options[name]["sources"] == {"head": "measured", "tail": "measured"}
        assert options[name]["head_s"] > 0 and options[name]["tail_s"] > 0
    whole = options["all on device"]
    assert whole["sources"]["head"] == "measured"
    # a head is part of the model: on the same machine it does not take much longer
    assert options["cut pool1 (raw 8-bit)"]["head_s"] < 3 * whole["head_s"]


def test_split_a_two_output_model(cli, tmp_path):
    """Was: internal-error: AttributeError: 'tuple' object has no attribute 'argmax'."""
    made = cli("split", "tiny_models:two_output_cnn", "--input-shape", "1x3x8x8", "--at",
               "pool1", "--bottleneck", "2", "--data", "builtin:digits", "-o", tmp_path,
               "--distill-epochs", "1", "--finetune-epochs", "1", "--json")
    assert made.code == 0, made
    result = made.json()["result"]
    assert result["end_to_end"]["onnx"]["prediction_agreement_with_torch"] >= 0.99
    assert (tmp_path / "head.onnx").is_file() and (tmp_path / "tail.onnx").is_file()


def test_a_cut_after_a_residual_block_is_planned(cli):
    """The estimator names layers by module path (res2.relu2), the cut points by graph node
    (res2_relu2): the cut is planned by either name, and a cut whose op no module owns (the
    residual add) is named as not planned instead of vanishing."""
    planned = cli("split", "plan", "builtin:fashion-mnist-cnn", "--device", "rpi5",
                  "--codec", "none", "--json")
    assert planned.code == 0, planned
    plan = planned.json()["result"]
    options = {o["option"] for o in plan["options"]}
    assert {"cut res2.relu2 (raw 8-bit)", "cut pool2 (raw 8-bit)"} <= options
    assert plan["models"]["unplanned_cuts"].startswith("add:")
    human = cli("split", "plan", "builtin:fashion-mnist-cnn", "--device", "rpi5", "--codec",
                "none")
    assert "not planned: add" in human.stdout
