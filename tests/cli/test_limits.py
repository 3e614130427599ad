"""Issue 17's limits and ranges: input sizes, recipe YAML bombs, values once accepted
silently, an eval split that came out empty, labels checked before work, and one failing
format that no longer sinks the others. Each through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

CNN = "builtin:digits-cnn"


def _refused(result, reference: str, *words: str) -> None:
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr, result
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert "internal-error" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result)


# ------------------------------------------------------------------ input sizes

@pytest.mark.parametrize("args", [("--input-shape", "1x3x20000x20000"),
                                  ("--input", "x:1x3x20000x20000:float32"),
                                  ("--input", "ids:1x900000000:int64")])
def test_a_huge_input_shape_is_refused_before_anything_is_allocated(cli, args):
    _refused(cli("inspect", CNN, *args), "input-too-large", "MiB", "EDGEPIPE_MAX_INPUT_MIB")


def test_the_input_limit_can_be_raised_and_is_itself_checked(cli, monkeypatch):
    from edgepipe.tensors import check_input_size

    monkeypatch.setenv("EDGEPIPE_MAX_INPUT_MIB", "8000")
    check_input_size((1, 3, 20000, 20000))  # 4.6 GiB: now allowed
    monkeypatch.setenv("EDGEPIPE_MAX_INPUT_MIB", "lots")
    _refused(cli("inspect", CNN, "--input-shape", "1x3x32x32"), "bad-input-limit")


def test_a_recipe_input_shape_is_held_to_the_same_limit(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {spec: builtin:digits-cnn, input_shape: 1x3x30000x30000}\n"
                      "data: {spec: builtin:digits}\nvariants: [{name: f, method: float}]\n"
                      "targets: [host]\n")
    _refused(cli("run", recipe, "-o", tmp_path / "out"), "bad-recipe", "model.input_shape",
             "MiB")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ recipes as hostile files

BOMB = """\
model:
  spec: builtin:digits-cnn
  args:
    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
data: {spec: builtin:digits}
variants: [{name: f, method: float}]
targets: [host]
"""


@pytest.mark.parametrize("content, reference, words", [
    (BOMB.encode(), "recipe-too-large", ["would expand to more than"]),
    (b"a: &a [1, *a]\n", "bad-recipe", ["refers to itself"]),
    (("[" * 5000 + "]" * 5000).encode(), "bad-recipe", ["nested too deeply"]),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "bad-recipe", ["not UTF-8"]),
    (b"model: {spec: x}\x00\n", "bad-recipe", ["NUL"]),
    (b"# padding\n" * 120_000, "bad-recipe", ["at most"]),
], ids=["billion-laughs", "recursive-alias", "deeply-nested", "binary", "nul", "huge"])
def test_a_hostile_recipe_is_refused_before_it_is_expanded(cli, tmp_path, content, reference,
                                                           words):
    import resource
    import time

    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(content)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = cli("run", recipe, "-o", tmp_path / "out")
    _refused(result, reference, *words)
    assert time.perf_counter() - started < 20
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 300, grown_mib  # the bomb would take gigabytes
    assert not (tmp_path / "out").exists()


def test_a_recipe_that_uses_anchors_reasonably_still_loads(tmp_path):
    from edgepipe.pipeline.recipe import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {spec: builtin:digits-cnn}\ndata: {spec: builtin:digits}\n"
                      "variants:\n  - {name: a, method: int8, formats: &f [onnx, tflite]}\n"
                      "  - {name: b, method: fp16, formats: *f}\ntargets: [host]\n")
    assert load_recipe(recipe).variants[1].formats == ["onnx", "tflite"]


# ------------------------------------------------------------------ values once accepted

@pytest.mark.parametrize("option, value, reference", [
    ("--distill-epochs", "-1", "bad-training-option"),
    ("--finetune-epochs", "-5", "bad-training-option"),
])
def test_split_training_values_out_of_range(cli, tmp_path, option, value, reference):
    result = cli("split", CNN, "--at", "pool1", "--bottleneck", "2", "--data",
                 "builtin:digits", option, value, "-o", tmp_path / "out")
    _refused(result, reference, option)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value, reference", [
    ("--bandwidth", "0Mbps", "bad-bandwidth"),
    ("--bandwidth", "0.0kbps", "bad-bandwidth"),
    ("--bandwidth", "1.2.3Mbps", "bad-bandwidth"),
    ("--bandwidth", "nanMbps", "bad-bandwidth"),
    ("--rtt", "-5ms", "bad-rtt"),
    ("--rtt", "100000s", "bad-rtt"),
    ("--precision", "int3", "bad-precision"),
])
def test_split_plan_values_out_of_range(cli, option, value, reference):
    _refused(cli("split", "plan", CNN, "--device", "rpi5", option, value), reference)


def _recipe(tmp_path, extra: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text("model: {spec: builtin:digits-cnn}\ndata: {spec: builtin:digits}\n"
                    "variants:\n  - {name: f, method: float}\n" + extra + "targets: [host]\n")
    return path


@pytest.mark.parametrize("extra, words", [
    ("budget: {max_drop: 150}\n", ["budget.max_drop", "less than or equal to 100"]),
    ("budget: {max_drop: -1}\n", ["budget.max_drop"]),
    ("budget: {max_drop: .nan}\n", ["budget.max_drop"]),
    ("  - {name: s, method: split, at: pool1, bottleneck: 2, options: {distill_epochs: -1}}\n",
     ["distill_epochs", "out of range"]),
    ("  - {name: s, method: split, at: pool1, bottleneck: 2, options: {lr: 0}}\n",
     ["lr", "out of range"]),
], ids=["max-drop-over-100", "max-drop-negative", "max-drop-nan", "epochs", "lr"])
def test_recipe_values_out_of_range(cli, tmp_path, extra, words):
    _refused(cli("run", _recipe(tmp_path, extra), "-o", tmp_path / "out"), "bad-recipe",
             *words)


def test_max_drop_means_top1_points_in_the_recipe_as_on_the_command_line(tmp_path):
    from edgepipe.pipeline.document import Reference, ReportVariant
    from edgepipe.pipeline.recipe import load_recipe
    from edgepipe.pipeline.report import recommend

    recipe = load_recipe(_recipe(tmp_path, "budget: {max_drop: 0.5}\n"))
    assert recipe.budget.max_drop == 0.5  # half a point, not 50 points
    artifact = {"name": "m.onnx", "path": "m.onnx", "format": "onnx", "precision": "int8",
                "role": "model", "size_bytes": 1,
                "accuracy": {"value": 0.90},
                "targets": {"host": {"status": "ok", "latency_s": 1e-3, "latency_label": "measured",
                                     "fit": {"fits": True}}}}
    variants = [ReportVariant.from_dict({"name": "int8", "method": "int8", "status": "ok",
                                         "result": {"artifacts": [artifact]}})]
    reference = Reference(variant="float", value=0.91, metric="top1")  # one point lost
    pick = recommend(variants, "host", reference, recipe.budget.max_drop)
    assert pick.fastest is None and "loses 1.00 points (budget 0.5 points)" in str(pick)
    assert recommend(variants, "host", reference, 2).fastest is not None


# ------------------------------------------------------------------ data

def test_evaluation_uses_the_given_data_when_the_stratified_split_is_empty(cli, tmp_path):
    """20 labelled images, one per class: the stratified eval split gives each class
    round(0.2 x 1) = 0; the accuracy is still measured on the user's images, never on
    random inputs."""
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x=rng.random((10, 3, 32, 32), dtype=np.float32), y=np.arange(10))
    result = cli("compress", CNN, "--method", "int8", "--data", data, "-o", tmp_path / "out",
                 "--json")
    assert result.code == 0, result
    document = result.json()["result"]
    assert document["data"]["part"].startswith("eval split (unstratified")
    assert document["data"]["source"] == str(data) and document["data"]["labelled"]
    assert document["artifacts"][0]["metrics"]["metric"] == "top1"
    assert "random" not in result.stderr


def test_with_a_single_sample_the_calibration_samples_are_used_and_said_so():
    from edgepipe.compress.samples import make_check_set
    from edgepipe.data import Dataset, make_splits

    dataset = Dataset({"input": np.zeros((1, 3, 32, 32), np.float32)}, np.array([3]),
                      source="one.npz")
    splits = make_splits(dataset)
    assert len(splits.eval) == 0
    checked, info = make_check_set(None, None, splits)  # type: ignore[arg-type]
    assert len(checked) == 1 and info.source == "one.npz"
    assert "calibration samples" in info.part and "not a held-out" in info.part


def test_labels_outside_the_classes_are_refused_before_any_work(cli, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x=rng.random((40, 3, 32, 32), dtype=np.float32), y=np.arange(40) % 15)
    result = cli("compress", CNN, "--method", "int8", "--data", data, "-o", tmp_path / "out")
    _refused(result, "labels-out-of-range", "10 classes", "14")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ one format fails

def test_one_failing_format_does_not_sink_the_others(cli, tmp_path):
    """torch.export (LiteRT) refuses a branch on a tensor's value that ONNX's tracer records;
    the ONNX fp16 artifact is still made, checked and recorded, the TFLite failure is named,
    and the exit status is 3."""
    out = tmp_path / "out"
    result = cli("compress", "hostile_models:branchy", "--input-shape", "1x3x32x32",
                 "--method", "fp16", "-f", "onnx", "-f", "tflite", "-o", out, "--json")
    assert result.code == 3, result
    document = result.json()
    assert document["ok"] is False
    error = document["error"]
    assert error["reference"] == "partly-failed" and "tflite" in error["message"]
    assert [f["format"] for f in error["details"]["failed"]] == ["tflite"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(a["name"] for a in manifest["artifacts"]) == ["branchy.fp16.onnx",
                                                               "branchy.onnx"]
    assert (out / "branchy.fp16.onnx").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


def test_export_makes_the_formats_that_work_and_names_the_one_that_did_not(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("export", "hostile_models:branchy", "--input-shape", "1x3x32x32",
                 "-f", "onnx", "-f", "tflite", "-o", out)
    assert result.code == 3, result
    assert "tflite" in result.stderr and "Made and checked: branchy.onnx" in result.stderr
    assert "def forward" not in result.stderr  # torch.export's partial graph: --debug only
    assert (out / "branchy.onnx").is_file() and not (out / "branchy.tflite").exists()


def test_a_run_with_a_variant_far_below_float_fails(cli, tmp_path):
    """A split trained for no epochs is at chance: ✗ and a non-zero exit, not ✓ and 0."""
    path = tmp_path / "r.yaml"
    path.write_text("model: {spec: builtin:digits-cnn}\ndata: {spec: builtin:digits}\n"
                    "variants:\n  - {name: float, method: float}\n"
                    "  - {name: cut, method: split, at: pool1, bottleneck: 1, bits: 1,\n"
                    "     options: {distill_epochs: 0, finetune_epochs: 0}}\n"
                    "targets: [host]\nbudget: {max_drop: 2}\nprofile: {runs: 3, duration: 0.05,"
                    " per_layer: false}\n")
    result = cli("run", path, "-o", tmp_path / "out", "--json")
    assert result.code == 3, result
    document = result.json()
    assert document["ok"] is False
    report = document["result"]
    assert report["summary"]["over_budget"] == ["cut"]
    cut = next(v for v in report["variants"] if v["name"] == "cut")
    assert cut["budget"]["within"] is False and cut["budget"]["drop"] > 2
    assert "✗ cut loses" in result.stderr
    assert "Over the accuracy budget" in (tmp_path / "out" / "report.md").read_text()


def test_a_recipe_variant_keeps_the_formats_that_worked(cli, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: {spec: 'hostile_models:branchy', input_shape: 1x3x32x32}\n"
                    "data: {spec: builtin:digits}\n"
                    "variants:\n  - {name: half, method: fp16, formats: [onnx, tflite]}\n"
                    "targets: [rpi5]\nprofile: {runs: 2, duration: 0.01, per_layer: false}\n")
    result = cli("run", path, "-o", tmp_path / "out", "--json")
    assert result.code == 3, result
    report = result.json()["result"]
    assert report["summary"]["failed_formats"] == ["half (tflite)"]
    [variant] = report["variants"]
    assert variant["status"] == "ok"
    assert [a["format"] for a in variant["result"]["artifacts"]] == ["onnx"]
    assert "tflite only" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("method", ["lowrank", "w4a8", "binary"])
def test_a_method_refused_for_want_of_data_leaves_no_out_folder(cli, tmp_path, method):
    out = tmp_path / "out"
    result = cli("compress", CNN, "--method", method, "-o", out)
    assert result.code == 1 and "hint:" in result.stderr, result
    assert "data" in result.stderr and not out.exists()
