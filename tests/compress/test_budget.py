"""Per-layer sensitivity and the accuracy budget on the bundled digits models.

Numbers are measured in each test, never written in: the assertions are about structure
(every compute layer ranked, the budget met or the best artifact kept) and about floors.
"""

from __future__ import annotations

import dataclasses
import json

import onnx
import pytest

from edgepipe.compress import Fp16Config, Int8StaticConfig, compress
from edgepipe.compress.budget import AccuracyBudget
from edgepipe.compress.onnx_layers import COMPUTE_OPS
from edgepipe.errors import InputError, ToleranceError, UnsupportedError


def _files(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def _compute_nodes(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node if n.op_type in COMPUTE_OPS}


def _unlabelled(splits):
    return dataclasses.replace(splits, calib=dataclasses.replace(splits.calib, labels=None),
                               eval=dataclasses.replace(splits.eval, labels=None))


def test_sensitivity_ranks_every_compute_layer_and_saves_the_table(digits_cnn, tmp_path):
    loaded, splits = digits_cnn
    result = compress(loaded, Int8StaticConfig(), tmp_path, splits,
                      budget=AccuracyBudget(sensitivity=True))
    table = result.to_dict()["sensitivity"]["onnx"]
    rows = table["layers"]
    assert table["metric"] == "top1" and table["samples"] == 359 and table["calibrations"] == 1
    # the CNN's float graph has three Conv and one Gemm; every one is ranked once
    assert sorted(r["op"] for r in rows) == ["Conv", "Conv", "Conv", "Gemm"]
    assert len({r["layer"] for r in rows}) == 4 and [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert [r["drop"] for r in rows] == sorted((r["drop"] for r in rows), reverse=True)
    for row in rows:  # drop is the float artifact's top-1 minus the variant's, in points
        assert row["drop"] == pytest.approx(100 * (table["float_value"] - row["value"]), abs=1e-5)
    assert "sensitivity.json" in _files(tmp_path)
    saved = json.loads((tmp_path / "sensitivity.json").read_text())
    assert saved["layers"] == rows and saved["model"] == "builtin:digits-cnn"
    [artifact] = result.to_dict()["artifacts"]  # sensitivity alone does not change the artifact
    assert artifact["name"] == "digits-cnn.int8.onnx" and artifact["tool"]["left_in_float"] == []


def test_a_budget_the_default_int8_meets_changes_nothing(digits_cnn, tmp_path):
    loaded, splits = digits_cnn
    result = compress(loaded, Int8StaticConfig(), tmp_path, splits,
                      budget=AccuracyBudget(max_drop=1.0))
    [artifact] = result.to_dict()["artifacts"]
    budget = result.to_dict()["budget"]["onnx"]
    assert budget["met"] is True and len(budget["steps"]) == 1 and budget["kept"] == []
    assert budget["steps"][0]["drop"] == pytest.approx(100 * artifact["metrics"]["drop"], abs=1e-5)
    assert result.to_dict()["sensitivity"] is None and "sensitivity.json" not in _files(tmp_path)
    assert artifact["name"] == "digits-cnn.int8.onnx" and artifact["tool"]["left_in_float"] == []


def test_a_tight_budget_keeps_the_most_sensitive_layers_in_float(digits_cnn, tmp_path):
    """Without reduce_range, AVX2 kernels saturate and int8 loses top-1 on the CNN."""
    loaded, splits = digits_cnn
    result = compress(loaded, Int8StaticConfig(reduce_range=False), tmp_path, splits,
                      budget=AccuracyBudget(max_drop=0.0))
    budget = result.to_dict()["budget"]["onnx"]
    steps = budget["steps"]
    assert steps[0]["drop"] > 0 and steps[0]["kept"] == []  # full int8 misses it
    assert budget["met"] is True and steps[-1]["drop"] <= 0 and len(steps) >= 2
    ranking = [r["layer"] for r in result.to_dict()["sensitivity"]["onnx"]["layers"]]
    kept = budget["kept"]
    assert kept == ranking[:len(kept)] == steps[-1]["kept"]
    [artifact] = result.to_dict()["artifacts"]
    assert artifact["name"] == "digits-cnn.int8.onnx" and artifact["metrics"]["drop"] <= 0
    assert {item["layer"] for item in artifact["tool"]["left_in_float"]} == set(kept)
    precision = artifact["tool"]["layer_precision"]
    assert {n for n, p in precision.items() if p == "fp32"} == set(kept)
    assert len(precision) == 4 and list(precision.values()).count("int8") == 4 - len(kept)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = {a["name"]: a for a in manifest["artifacts"]}["digits-cnn.int8.onnx"]
    assert entry["metrics"]["budget"]["kept"] == kept


def test_an_unmet_budget_raises_and_keeps_the_best_artifact(digits_cnn, tmp_path):
    """Unlabelled: the drop is in cosine points, and any int8 layer gives more than 0."""
    loaded, splits = digits_cnn
    with pytest.raises(ToleranceError, match="over-budget") as caught:
        compress(loaded, Int8StaticConfig(), tmp_path, _unlabelled(splits),
                 budget=AccuracyBudget(max_drop=0.0))
    budget = caught.value.details["budget"]["onnx"]
    assert budget["met"] is False and budget["artifact"] == "digits-cnn.int8.over-budget.onnx"
    steps = budget["steps"]
    assert all(s["metric"] == "cosine" and s["drop"] > 0 for s in steps)
    assert len(steps) == 4  # full int8, then up to three of four layers kept in float
    best = min(steps, key=lambda s: s["drop"])
    assert budget["kept"] == best["kept"]
    assert _files(tmp_path) == ["digits-cnn.int8.over-budget.onnx", "digits-cnn.onnx",
                                "manifest.json", "sensitivity.json"]
    assert _compute_nodes(tmp_path / "digits-cnn.int8.over-budget.onnx") == {"Conv", "Gemm"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = {a["name"]: a for a in manifest["artifacts"]}["digits-cnn.int8.over-budget.onnx"]
    assert entry["metrics"]["budget"]["met"] is False
    assert entry["metrics"]["metric"] == "sqnr_db"
    table = json.loads((tmp_path / "sensitivity.json").read_text())
    assert table["metric"] == "cosine" and len(table["layers"]) == 4


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_a_bad_max_drop_is_refused(value):
    with pytest.raises(InputError, match="max-drop"):
        AccuracyBudget(max_drop=value)


def test_a_budget_for_a_method_without_a_layerwise_backend_fails_first(digits_mlp, tmp_path):
    loaded, splits = digits_mlp
    with pytest.raises(UnsupportedError, match="fp16"):
        compress(loaded, Fp16Config(), tmp_path / "out", splits,
                 budget=AccuracyBudget(max_drop=0.5))
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []
