"""ExecuTorch (.pte): export with XNNPACK delegation, parity, eval, profile, hostile files.

Skipped where executorch (the ``executorch`` extra) is not installed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from cli_failures import expect_failure

pytest.importorskip("executorch", reason="the executorch extra is not installed")

CNN = "builtin:digits-cnn"  # 1x3x32x32 in, 10 classes


def _check_parity(artifact: dict) -> None:
    for output in artifact["parity"]["outputs"]:
        assert output["max_abs_diff"] < 1e-4, output
        assert output["identical"] or output["sqnr_db"] > 60.0, output
        assert output["top1_agreement"] == 1.0, output


@pytest.fixture(scope="module")
def digits_pte(tmp_path_factory):
    """builtin:digits-cnn exported to .pte and .onnx in one run: (out, export result)."""
    from edgepipe.export import export_model

    out = tmp_path_factory.mktemp("et-digits")
    result = export_model(CNN, out, formats=("executorch", "onnx"), threads=1)
    return out, result.to_dict()


def test_digits_cnn_export_parity_and_delegation(digits_pte):
    out, result = digits_pte
    pte = next(a for a in result["artifacts"] if a["format"] == "executorch")
    assert pte["name"] == "digits-cnn.pte" and (out / "digits-cnn.pte").is_file()
    assert (out / "digits-cnn.pte").read_bytes()[4:6] == b"ET"
    assert pte["parity"]["runtime"]["runtime"] == "executorch"
    _check_parity(pte)
    delegation = pte["tool"]["delegation"]
    assert delegation["backend"] == "XnnpackBackend"
    assert delegation["delegated_ops"] > 0 and delegation["delegates"] >= 1
    assert delegation["delegated"]["aten.convolution.default"] == 3
    assert delegation["portable_ops"] == sum(delegation["portable"].values())
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = next(a for a in manifest["artifacts"] if a["name"] == "digits-cnn.pte")
    assert recorded["tool"]["delegation"] == delegation


def test_eval_of_the_pte_matches_onnx(cli, digits_pte):
    out, _ = digits_pte
    accuracy = {}
    for name in ("digits-cnn.pte", "digits-cnn.onnx"):
        result = cli("eval", out / name, "--data", "builtin:digits", "--threads", 1, "--json")
        assert result.code == 0, result
        document = result.json()["result"]
        assert document["metric"] == "top1" and document["samples"] == 359
        accuracy[name] = document["value"]
    assert accuracy["digits-cnn.pte"] > 0.9
    assert abs(accuracy["digits-cnn.pte"] - accuracy["digits-cnn.onnx"]) <= 0.005


def test_profile_on_host_measures_latency(cli, digits_pte):
    out, _ = digits_pte
    result = cli("profile", out / "digits-cnn.pte", "--target", "host", "--runs", 20,
                 "--duration", 0.1, "--threads", 1, "--json")
    assert result.code == 0, result
    document = result.json()["result"]
    assert document["runtime"]["name"] == "executorch"
    assert document["latency"]["label"] == "measured"
    steady = document["latency"]["steady"]
    assert steady["count"] >= 20 and 0 < steady["min_s"] <= steady["p50_s"] <= steady["max_s"]
    assert document["latency"]["load_s"] > 0 and document["latency"]["first_inference_s"] > 0
    # per-operator times from ETDump: every op of this CNN runs inside the XNNPACK delegate
    layers = document["layers"]
    assert {row["exec_type"] for row in layers["rows"]} == {"XNNPACK"}, layers
    assert {row["op_type"] for row in layers["rows"]} >= {"Convolution", "Fully Connected"}
    assert len({row["calls"] for row in layers["rows"]}) == 1  # every op, every run


def test_session_runs_numpy_and_honours_threads(digits_pte):
    from edgepipe.runtime import open_artifact

    out, _ = digits_pte
    session = open_artifact(out / "digits-cnn.pte", threads=1)
    assert session.name == "executorch" and session.options["num_threads"] == 1
    assert [s.shape for s in session.inputs] == [(1, 3, 32, 32)]
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (got,) = session.run([x])
    (want,) = open_artifact(out / "digits-cnn.onnx", threads=1).run([x])
    assert got.shape == (1, 10) and np.abs(got - want).max() < 1e-4


def test_export_output_shows_the_delegation_split(cli, tmp_path):
    import io

    from rich.console import Console

    from edgepipe.cli.export_cmd import _render

    result = cli("export", CNN, "-f", "executorch", "-o", tmp_path, "--threads", 1)
    assert result.code == 0, result
    assert "digits-cnn.pte: XNNPACK runs 14 of 14 ops (1 delegate)" in result.stdout
    document = json.loads((tmp_path / "manifest.json").read_text())
    screen = io.StringIO()  # an 80-column terminal
    _render(Console(file=screen, width=80, highlight=False, soft_wrap=False),
            {"out": str(tmp_path), "artifacts": document["artifacts"]})
    lines = screen.getvalue().splitlines()
    # the split is a line of its own under the table, whole at 80 columns; the table keeps
    # its eight columns
    assert all(len(line) <= 80 for line in lines), screen.getvalue()
    assert "digits-cnn.pte: XNNPACK runs 14 of 14 ops (1 delegate)" in lines, lines
    assert lines[0].count("┃") == 7, lines


@pytest.mark.slow
def test_torchvision_cnn_export_parity_and_delegation(cli, tmp_path):
    result = cli("export", "torchvision:mobilenet_v3_small", "--input-shape", "1x3x64x64",
                 "-f", "executorch", "-o", tmp_path, "--threads", 1, "--json")
    assert result.code == 0, result
    (artifact,) = result.json()["result"]["artifacts"]
    _check_parity(artifact)
    delegation = artifact["tool"]["delegation"]
    assert delegation["delegated_ops"] > 100
    assert delegation["delegated"]["aten.convolution.default"] == 52
    # what stays outside XNNPACK is said, op by op
    assert delegation["portable_ops"] == sum(delegation["portable"].values())


def _truncated(source, path):
    path.write_bytes(source.read_bytes()[:5000])


def _header_only(source, path):
    path.write_bytes(source.read_bytes()[:30])


def _random(source, path):
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _renamed_onnx(source, path):
    path.write_bytes(source.with_suffix(".onnx").read_bytes())


def _zero_bytes(source, path):
    path.write_bytes(b"")


def _corrupt_body(source, path):  # a sound header, garbage where the program was
    data = bytearray(source.read_bytes())
    data[40:2000] = np.random.default_rng(1).bytes(1960)
    path.write_bytes(bytes(data))


HOSTILE = {
    "truncated": (_truncated, "executorch-invalid", "is truncated"),
    "header-only": (_header_only, "executorch-invalid", "extended header"),
    "random-bytes": (_random, "executorch-invalid", "is not an ExecuTorch program"),
    "onnx-renamed": (_renamed_onnx, "executorch-invalid", "ONNX protobuf"),
    "zero-bytes": (_zero_bytes, "executorch-invalid", "is empty"),
    "corrupt-body": (_corrupt_body, "artifact-unloadable", "Failed to load program"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("verb", ["eval", "profile"])
def test_hostile_pte(cli, tmp_path, digits_pte, verb, case):
    out, _ = digits_pte
    make, reference, words = HOSTILE[case]
    path = tmp_path / "model.pte"
    make(out / "digits-cnn.pte", path)
    args = (["eval", path, "--data", "builtin:digits"] if verb == "eval" else
            ["profile", path, "--runs", 2, "--duration", 0, "--no-per-layer"])
    result = cli(*args)
    expect_failure(result, reference, words, str(path))


def test_missing_executorch_is_backend_missing(monkeypatch, tmp_path):
    import importlib.util

    from edgepipe.errors import BackendMissingError
    from edgepipe.export import export_model

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "executorch" else real(name, *a))
    with pytest.raises(BackendMissingError) as error:
        export_model(CNN, tmp_path, formats=("executorch",))
    assert "pip install 'edgepipe[executorch]'" in error.value.message
    assert os.listdir(tmp_path) in ([], ["manifest.json"])


def test_a_pte_without_executorch_installed_is_backend_missing(cli, digits_pte, monkeypatch):
    import sys

    out, _ = digits_pte
    for name in [n for n in sys.modules if n == "executorch" or n.startswith("executorch.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: imports fail
    monkeypatch.setitem(sys.modules, "executorch", None)
    result = cli("eval", out / "digits-cnn.pte", "--data", "builtin:digits")
    assert result.code == 4, result
    assert "error: backend-missing" in result.stderr, result
    assert "pip install 'edgepipe[executorch]'" in result.stderr, result


def test_a_model_torch_export_refuses_names_the_stage(cli, tmp_path):
    result = cli("export", "tiny_models:data_dependent_model", "--input-shape", "2x8",
                 "-f", "executorch", "-o", tmp_path)
    expect_failure(result, "executorch-export-failed", "(stage: export)",
                   "GuardOnDataDependentSymNode")
    assert not list(tmp_path.glob("*.pte")), list(tmp_path.iterdir())
