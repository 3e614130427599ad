"""Recipes are validated before anything runs; every problem names its key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepipe.errors import InputError
from edgepipe.pipeline.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
name: t
model:
  spec: builtin:digits-cnn
data: {spec: builtin:digits}
variants:
  - name: float
    method: float

  - name: int8
    method: int8
    formats: [onnx]
targets: [host, rpi5]
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return load_recipe(path)


def test_the_examples_are_valid_recipes():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        recipe = load_recipe(path)
        assert recipe.variants and recipe.targets, path


def test_a_good_recipe_and_its_defaults(tmp_path):
    recipe = _load(tmp_path, GOOD)
    assert [v.name for v in recipe.variants] == ["float", "int8"]
    assert [t.name for t in recipe.targets] == ["host", "rpi5"]
    assert recipe.variants[0].formats == ["onnx"] and recipe.budget.max_drop == 1


@pytest.mark.parametrize(("edit", "words"), [
    # an unknown key: its path and its line
    (lambda t: t.replace("    method: float\n", "    method: float\n    colour: red\n"),
     ["variants.0.colour (line 8): unknown key"]),
    # a wrong type
    (lambda t: t + "profile:\n  runs: many\n", ["profile.runs (line 14)", "integer"]),
    # an unknown method lists the valid ones
    (lambda t: t.replace("method: int8", "method: int9"),
     ["variants.1.method (line 10)", "unknown method 'int9'", "int8-dynamic", "binary", "split"]),
    # an option the method does not take lists those it does
    (lambda t: t.replace("    formats: [onnx]\n", "    options: {rank: 3}\n"),
     ["variants.1", "rank does not apply", "calibration"]),
    # an unknown target lists the catalog
    (lambda t: t.replace("[host, rpi5]", "[host, rpi9]"),
     ["targets.1", "unknown target 'rpi9'", "rpi5", "stm32f746"]),
    (lambda t: t.replace("[onnx]", "[onnx, coreml]"), ["unknown format 'coreml'", "tflite"]),
    (lambda t: t.replace("name: int8", "name: float"), ["variant 'float' is listed twice"]),
    (lambda t: t.replace("method: int8", "method: split"), ["needs `at`"]),
    (lambda t: t.replace("model:\n  spec: builtin:digits-cnn\n", ""),
     ["model (line 1): Field required"]),
    (lambda t: t.replace("  - name: int8", "  -name: int8"), ["not valid YAML"]),
])
def test_bad_recipes_name_the_key_and_line(tmp_path, edit, words):
    with pytest.raises(InputError) as caught:
        _load(tmp_path, edit(GOOD))
    message = caught.value.message
    assert caught.value.reference == "bad-recipe"
    for word in words:
        assert word in message, (word, message)


def test_the_cli_refuses_a_bad_recipe_before_any_work(cli, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(GOOD.replace("method: float", "method: flaot"))
    result = cli("run", path, "-o", tmp_path / "out", "--json")
    assert result.code == 1
    error = result.json()["error"]
    assert error["reference"] == "bad-recipe" and "flaot" in error["message"]
    assert not (tmp_path / "out").exists()
    missing = cli("run", tmp_path / "nope.yaml", "-o", tmp_path / "out")
    assert missing.code == 1 and "recipe-not-found" in missing.stderr


def test_files_named_in_a_recipe_are_found_beside_it(tmp_path, monkeypatch):
    import numpy as np

    folder = tmp_path / "project"
    folder.mkdir()
    np.savez(folder / "data.npz", x=np.zeros((4, 64), np.float32), y=np.zeros(4, np.int64))
    (folder / "recipe.yaml").write_text(GOOD.replace("{spec: builtin:digits}",
                                                     "{spec: data.npz}"))
    monkeypatch.chdir(tmp_path)  # elsewhere: the path is still the one beside the recipe
    recipe = load_recipe(folder / "recipe.yaml")
    assert recipe.data.spec == str((folder / "data.npz").resolve())
    assert recipe.model.spec == "builtin:digits-cnn"  # specs that are not files stay as given


def test_the_guides_key_reference_is_a_valid_recipe(tmp_path):
    readme = (ROOT / "docs" / "guide" / "run.md").read_text()
    block = readme.split("Every key a recipe takes")[1].split("```yaml\n")[1].split("```")[0]
    recipe = _load(tmp_path, block.replace("MODEL", "builtin:digits-cnn")
                   .replace("DATA", "builtin:digits"))
    assert [v.method for v in recipe.variants] == ["float", "int8", "split"]
    assert recipe.targets[2].remote == "ssh://me@jetson.local"


def test_a_lower_bound_is_not_ranked_ahead_of_a_calibrated_estimate():
    from edgepipe.pipeline.document import Reference, ReportVariant
    from edgepipe.pipeline.report import recommend

    def artifact(name, fmt, seconds, bound, size):
        return {"name": name, "path": name, "format": fmt, "precision": "x", "role": "model",
                "size_bytes": size, "accuracy": {"value": 0.98, "metric": "top1"},
                "targets": {"mcu": {"status": "ok", "latency_s": seconds,
                                    "latency_label": "estimated", "latency_bound": bound,
                                    "fit": {"fits": True, "reason": ""}}}}

    variants = [
        {"name": "float", "method": "float", "status": "ok", "result": {"artifacts": [
            artifact("f.tflite", "tflite", 0.013, "lower", 100_000)]}},
        {"name": "int8", "method": "int8", "status": "ok", "result": {"artifacts": [
            artifact("q.tflite", "tflite", 0.022, None, 30_000)]}}]
    reference = Reference(variant="float", artifact="f.tflite", value=0.98, metric="top1")
    typed = [ReportVariant.from_dict(v) for v in variants]
    pick = recommend(typed, "mcu", reference, 0.01)
    assert pick.fastest.variant == "int8" and pick.smallest.variant == "int8"
    assert "float (tflite, at least 13 ms)" in pick.reason
    # with lower bounds only, they are compared among themselves
    typed[1].artifacts[0].targets["mcu"].latency_bound = "lower"
    assert recommend(typed, "mcu", reference, 0.01).fastest.variant == "float"


def test_a_recipe_names_its_own_targets_with_catalog(tmp_path, monkeypatch):
    import yaml

    from edgepipe.devices.catalog import CATALOG_DIR, get_target, using

    monkeypatch.delenv("EDGEPIPE_CATALOG", raising=False)
    board = yaml.safe_load((CATALOG_DIR / "rpi5.yaml").read_text())
    board.update(name="myboard", title="My board")
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "myboard.yaml").write_text(yaml.safe_dump(board))
    text = GOOD.replace("targets: [host, rpi5]", "catalog: boards\ntargets: [host, myboard]")
    recipe = _load(tmp_path, text)
    assert recipe.catalog == str((tmp_path / "boards").resolve())  # beside the recipe
    with using(recipe.catalog):
        assert get_target("myboard").title == "My board"
    with pytest.raises(InputError) as unknown:  # without the key, the board is unknown
        _load(tmp_path, GOOD.replace("targets: [host, rpi5]", "targets: [host, myboard]"))
    assert "myboard" in unknown.value.message
    with pytest.raises(InputError) as missing:
        _load(tmp_path, text.replace("catalog: boards", "catalog: nowhere"))
    assert missing.value.reference == "bad-catalog-dir"
    assert "recipe's catalog:" in missing.value.message


def test_the_old_target_key_host_is_read_as_remote_with_a_warning(tmp_path):
    text = GOOD.replace("targets: [host, rpi5]",
                        "targets: [host, {name: rpi5, host: 'ssh://pi@example.invalid'}]")
    with pytest.warns(FutureWarning, match="'host' is now 'remote'"):
        recipe = _load(tmp_path, text)
    assert recipe.targets[1].remote == "ssh://pi@example.invalid"


def test_formats_given_among_a_methods_options_is_a_clear_error(tmp_path):
    text = GOOD.replace("    formats: [onnx]\n", "    formats: [onnx]\n    options: {formats: [tflite]}\n")
    with pytest.raises(InputError) as bad:
        _load(tmp_path, text)
    assert bad.value.reference == "bad-recipe"
    assert "formats belongs to the variant" in bad.value.message


def test_bits_on_a_variant_that_is_not_a_split_is_refused(tmp_path):
    text = GOOD.replace("    formats: [onnx]\n", "    formats: [onnx]\n    bits: 4\n")
    with pytest.raises(InputError) as bad:
        _load(tmp_path, text)
    assert "bits belongs to method: split" in bad.value.message
