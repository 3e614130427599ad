"""A user's own model, as a new user brings it: a small CNN class with a factory in
``mymodel.py``, its weights as a state dict (.pt) and as .safetensors, and a folder of PNGs;
every command run through the real CLI from that folder (issue 19, item 6)."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgepipe.errors import InputError, ModelError
from edgepipe.evaluate import evaluate_on_data
from edgepipe.model import check_artifact_name, load_model

MYMODEL = textwrap.dedent("""
    import torch
    from torch import nn


    class SmallCNN(nn.Module):
        def __init__(self, num_classes=3):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            self.head = nn.Linear(16, num_classes)

        def forward(self, x):
            return self.head(torch.flatten(self.features(x), 1))


    def build(num_classes=3):
        return SmallCNN(num_classes)
""")
SHAPE = "1x3x32x32"
ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("red", "green", "blue")


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """mymodel.py, weights.pt (state dict), weights.safetensors (the same weights, trained
    to tell the three colours apart) and imgs/<class>/*.png, in one folder."""
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from edgepipe.data import load_data_for_model

    folder = tmp_path_factory.mktemp("user")
    (folder / "mymodel.py").write_text(MYMODEL)
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (folder / "imgs" / name).mkdir(parents=True)
        for i in range(40):
            pixels = rng.integers(0, 90, (32, 32, 3), dtype=np.uint8)
            pixels[..., c] += 140
            Image.fromarray(pixels).save(folder / "imgs" / name / f"{i}.png")
    # trained on the data as edgepipe reads it, so that accuracy means something
    loaded = load_model(str(folder / "mymodel.py") + ":build", input_shape=(1, 3, 32, 32))
    data = load_data_for_model(str(folder / "imgs"), loaded.inputs)
    model = loaded.module
    torch.manual_seed(0)
    x = torch.from_numpy(next(iter(data.inputs.values())))
    y = torch.from_numpy(data.labels).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(model.state_dict(), folder / "weights.pt")  # as a user saves it
    save_file(state, str(folder / "weights.safetensors"))
    return folder


@pytest.fixture
def in_user_folder(user_folder, monkeypatch):
    monkeypatch.chdir(user_folder)
    return user_folder


def _ok(result):
    assert result.code == 0, result
    return result.json()


def test_inspect_a_file_factory_from_its_folder(cli, in_user_folder):
    path_before = list(sys.path)
    document = _ok(cli("inspect", "mymodel.py:build", "--input-shape", SHAPE, "--weights",
                       "weights.safetensors", "--json"))
    assert document["result"]["total_params"] == 3 * 8 * 9 + 8 + 8 * 16 * 9 + 16 + 16 * 3 + 3
    assert sys.path == path_before  # the folder was importable only while the model loaded
    human = cli("inspect", "mymodel.py:build", "--input-shape", SHAPE)
    assert human.code == 0 and "MACs" in human.stdout + human.stderr


def test_export_with_name_then_eval_against_the_reference_with_its_weights(cli, in_user_folder,
                                                                           tmp_path):
    out = tmp_path / "out"
    document = _ok(cli("export", "mymodel.py:build", "--input-shape", SHAPE, "--weights",
                       "weights.pt", "-f", "onnx", "-f", "tflite", "--name", "mynet",
                       "-o", out, "--json"))
    names = [a["name"] for a in document["result"]["artifacts"]]
    assert names == ["mynet.onnx", "mynet.tflite"]
    assert sorted(p.name for p in out.glob("[!.]*")) == ["manifest.json", "mynet.onnx",
                                                          "mynet.tflite"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"][-1]["config"]["name"] == "mynet"
    source = manifest["artifacts"][0]["source"]
    assert source["spec"] == "mymodel.py:build" and source["weights"] == "weights.pt"

    # the reference: the same factory with the same weights, from the other file format;
    # its input shape comes from the artifact's manifest
    result = _ok(cli("eval", out / "mynet.tflite", "--data", "imgs", "--subset", "all",
                     "--reference", "mymodel.py:build", "--reference-weights",
                     "weights.safetensors", "--json"))["result"]
    assert result["metric"] == "top1" and result["value"] >= 0.9
    assert result["reference"] == "mymodel.py:build"
    (comparison,) = result["outputs"]
    assert comparison["top1_agreement"] == 1.0 and comparison["sqnr_db"] > 60
    # without the weights the reference is another (random) model: visibly so
    random_ref = _ok(cli("eval", out / "mynet.onnx", "--data", "imgs", "--reference",
                         "mymodel.py:build", "--json"))["result"]["outputs"][0]
    assert random_ref["sqnr_db"] < 20

    # an artifact without its manifest: the reference takes the artifact's input shapes
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "mynet.onnx", alone)
    bare = _ok(cli("eval", alone / "mynet.onnx", "--data", "imgs", "--reference",
                   "mymodel.py:build", "--reference-weights", "weights.pt", "--json"))
    assert bare["result"]["outputs"][0]["sqnr_db"] > 60

    with pytest.raises(InputError) as info:
        evaluate_on_data(out / "mynet.onnx", "imgs", reference_weights="weights.pt",
                         reference=load_model("mymodel.py:build", input_shape=(1, 3, 32, 32)))
    assert info.value.reference == "conflicting-options"
    conflict = cli("eval", out / "mynet.onnx", "--data", "imgs", "--reference",
                   out / "mynet.tflite", "--reference-weights", "weights.pt")
    assert conflict.code == 1 and "error: conflicting-options" in conflict.stderr
    alone = cli("eval", out / "mynet.onnx", "--data", "imgs", "--reference-weights",
                "weights.pt")
    assert alone.code == 1 and "without --reference" in alone.stderr


def test_compress_with_name_and_image_folder(cli, in_user_folder, tmp_path):
    out = tmp_path / "out"
    document = _ok(cli("compress", "mymodel.py:build", "--method", "int8", "--input-shape",
                       SHAPE, "--weights", "weights.safetensors", "--data", "imgs", "--name",
                       "mynet", "-o", out, "--json"))["result"]
    artifacts = {a["name"]: a for a in document["artifacts"]}
    assert list(artifacts) == ["mynet.int8.onnx"]
    assert (out / "mynet.int8.onnx").is_file() and (out / "mynet.onnx").is_file()
    metrics = artifacts["mynet.int8.onnx"]["metrics"]
    assert metrics["float_value"] >= 0.9 and metrics["drop"] <= 0.1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"][-1]["config"]["name"] == "mynet"


@pytest.mark.parametrize("name, why", [
    ("sub/net", "path separator"), ("..", "starts with '.'"), ("", "is empty"),
    ("my net", "' '"), ("-x", "starts with '-'"), ("n" * 101, "longer than 100")])
def test_bad_names_are_refused_before_any_work(cli, in_user_folder, tmp_path, name, why):
    result = cli("export", "mymodel.py:build", "--input-shape", SHAPE, "--name", name,
                 "-o", tmp_path / "out")
    assert result.code == 1 and "error: bad-artifact-name" in result.stderr, result
    assert why in result.stderr and "hint:" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.onnx"))
    with pytest.raises(InputError):
        check_artifact_name(name)
    assert check_artifact_name("mynet-v2.1_b+") == "mynet-v2.1_b+"


def test_file_factory_errors_say_what_is_wrong(in_user_folder):
    (in_user_folder / "broken.py").write_text("import torch\n\nx = 1\nraise RuntimeError('boom')\n")
    cases = {
        "missing.py:build": ("model-not-found", "No Python file at 'missing.py'"),
        "mymodel.py:biuld": ("factory-missing", "no callable named 'biuld'"),
        "broken.py:build": ("factory-import", "RuntimeError at line 4: boom"),
        "mymodel.py": ("model-spec", "is a Python file"),
        "imgs.py:build": ("model-not-found", "No Python file"),
    }
    for spec, (reference, message) in cases.items():
        with pytest.raises(ModelError) as info:
            load_model(spec, input_shape=(1, 3, 32, 32))
        assert info.value.reference == reference and message in info.value.message, spec
        assert info.value.hint
    with pytest.raises(ModelError) as info:
        load_model("mymodel.py:biuld", input_shape=(1, 3, 32, 32))
    assert "did you mean build" in info.value.hint
    with pytest.raises(ModelError) as info:
        load_model("mymodel.py:nothing_like_it", input_shape=(1, 3, 32, 32))
    assert "SmallCNN, build" in info.value.hint  # what the file defines
    assert "mymodel.py:build" in load_model("./mymodel.py:build",
                                            input_shape=(1, 3, 32, 32)).spec


def test_file_factory_from_another_folder_imports_its_neighbours(tmp_path, monkeypatch):
    """A file elsewhere (relative to the cwd) imports modules beside it, as a script would."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "blocks.py").write_text("from torch import nn\n\n"
                                      "def head():\n    return nn.Linear(4, 2)\n")
    (models / "net.py").write_text("from blocks import head\n\ndef build():\n    return head()\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_model("models/net.py:build", input_shape=(1, 4))
    assert loaded.name == "build" and loaded.files == [models / "net.py"]
    assert str(models) not in sys.path and str(tmp_path) not in sys.path
    sys.modules.pop("blocks", None)


def test_pickled_model_next_to_its_module_loads_without_pythonpath(cli, in_user_folder):
    import torch

    sys.path.insert(0, str(in_user_folder))
    try:
        mymodel = importlib.import_module("mymodel")
        torch.save(mymodel.build(), in_user_folder / "whole.pt")
    finally:
        sys.path.remove(str(in_user_folder))
        sys.modules.pop("mymodel", None)  # the load must find it again, from the cwd
    refused = cli("inspect", "whole.pt", "--input-shape", SHAPE)
    assert refused.code == 1 and "error: pickle-refused" in refused.stderr
    document = _ok(cli("inspect", "whole.pt", "--trust-pickle", "--input-shape", SHAPE,
                       "--json"))
    assert document["result"]["total_params"] > 0
    assert str(in_user_folder) not in sys.path and str(Path.cwd()) not in sys.path
    sys.modules.pop("mymodel", None)


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    end = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(heading):], re.MULTILINE)
    return text[start:start + len(heading) + end.start()] if end else text[start:]


def _commands_with_output(section: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) for each ``$ edgepipe ...`` line."""
    shown: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                shown.append((line[2:], []))
            elif shown:
                shown[-1][1].append(line)
    return shown


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def test_the_own_model_guide_and_readme_commands_run_as_shown(cli, in_user_folder, tmp_path):
    """The scripted walk: every command of the guide's "Your own model" section runs on a
    user-style model and image folder, in its order; the README's three commands are among
    them and print the lines the README shows (tables and "…" aside: their figures are
    measured)."""
    guide = _section((ROOT / "docs/guide/models-and-data.md").read_text(), "## Your own model")
    commands = [line for block in re.findall(r"```bash\n(.*?)```", guide, re.DOTALL)
                for line in block.splitlines() if line.startswith("edgepipe ")]
    readme = _commands_with_output(_section((ROOT / "README.md").read_text(),
                                            "## Your own model in three commands"))
    assert len(commands) >= 5 and len(readme) == 3
    assert {command for command, _ in readme} <= set(commands)
    expected = dict(readme)
    for command in commands:
        result = cli(*shlex.split(command)[1:])
        assert result.code == 0, (command, result)
        printed = _squeeze(result.stdout + result.stderr)
        for line in expected.get(command, []):
            if line.strip() in ("", "…") or any(c in line for c in "┃│━"):
                continue
            assert _squeeze(line) in printed, (command, line)
    assert sorted(p.name for p in (in_user_folder / "out").glob("mynet*")) == [
        "mynet.int8.onnx", "mynet.int8.tflite", "mynet.onnx", "mynet.tflite"]
