"""evaluate_artifact / evaluate_module: top-1, reference comparisons, fixed and dynamic batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgepipe.errors import InputError, ShapeError
from edgepipe.evaluate import evaluate_artifact, evaluate_module
from edgepipe.export import export_model


@pytest.fixture(scope="module")
def mlp_exports(tmp_path_factory):
    """builtin:digits-mlp as ONNX with batch 1, with batch 4 (fixed), and dynamic batch."""
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model

    root = tmp_path_factory.mktemp("eval")
    fixed1 = load_model("builtin:digits-mlp")
    export_model(fixed1, root / "b1")
    fixed4 = load_model("builtin:digits-mlp", input_shape=(4, 64))
    export_model(fixed4, root / "b4", batch=4)
    export_model(fixed1, root / "dyn", dynamic_batch=True)
    splits = make_splits(load_data_for_model("builtin:digits", fixed1.inputs), seed=0)
    return fixed1, splits.eval, root


def test_every_batch_layout_gives_the_torch_top1(mlp_exports):
    loaded, eval_set, root = mlp_exports
    torch_result = evaluate_module(loaded.module, eval_set, inputs=loaded.inputs)
    assert torch_result.metric == "top1" and torch_result.samples == 359
    assert torch_result.value > 0.95  # the bundled MLP: 97.5% on this split
    for folder, batch in (("b1", 1), ("b4", 4), ("dyn", 64)):
        result = evaluate_artifact(root / folder / "digits-mlp.onnx", eval_set)
        assert result.batch == batch and result.samples == 359  # 359 % 4 != 0: padded tail
        assert result.value == pytest.approx(torch_result.value), folder
        assert result.runtime == "onnxruntime" and result.runtime_version
        assert result.threads and result.host["isa"] is not None


def test_reference_comparison_per_output(mlp_exports):
    loaded, eval_set, root = mlp_exports
    unlabelled = dataclasses.replace(eval_set, labels=None)
    result = evaluate_artifact(root / "b1" / "digits-mlp.onnx", unlabelled, reference=loaded)
    assert result.metric == "sqnr_db" and result.value > 90.0  # fp32 vs fp32: ~1e-6 noise
    [output] = result.outputs
    assert output.cosine_min > 0.99999 and output.top1_agreement == 1.0
    same = evaluate_artifact(root / "b1" / "digits-mlp.onnx", unlabelled,
                             reference=root / "b1" / "digits-mlp.onnx")
    assert same.outputs[0].sqnr_db is None and same.to_dict()["identical"] is True
    labelled = evaluate_artifact(root / "b1" / "digits-mlp.onnx", eval_set,
                                 reference="builtin:digits-mlp")
    assert labelled.metric == "top1" and labelled.outputs[0].top1_agreement == 1.0


def test_nothing_to_measure_without_labels_or_reference(mlp_exports):
    _, eval_set, root = mlp_exports
    with pytest.raises(InputError) as info:
        evaluate_artifact(root / "b1" / "digits-mlp.onnx",
                          dataclasses.replace(eval_set, labels=None))
    assert info.value.reference == "eval-needs-labels-or-reference"
    assert "--reference" in info.value.hint


def test_data_of_the_wrong_shape(mlp_exports):
    from edgepipe.data import Dataset

    _, _, root = mlp_exports
    with pytest.raises(ShapeError) as info:
        evaluate_artifact(root / "b1" / "digits-mlp.onnx",
                          Dataset({"x": np.zeros((3, 32), np.float32)}))
    assert info.value.reference == "data-shape-mismatch" and "32" in info.value.message


def test_nhwc_tflite_takes_nchw_data(tmp_path):
    from edgepipe.data import Dataset
    from edgepipe.model import load_model

    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    export_model(loaded, tmp_path, formats=("tflite",), nhwc=True)
    rng = np.random.default_rng(0)
    data = Dataset({"input": rng.random((5, 3, 16, 16), dtype=np.float32)})
    result = evaluate_artifact(tmp_path / "residual_cnn.tflite", data, reference=loaded)
    assert result.input_layout == {"args_0": "NCHW data transposed to NHWC"}
    assert result.value > 80.0  # dB: fp32 against fp32


def test_evaluate_on_data_splits_the_data_and_says_which_samples(mlp_exports):
    import json

    from edgepipe.evaluate import EvalResult, EvalSamples, evaluate_on_data

    _, eval_set, root = mlp_exports
    artifact = root / "b1" / "digits-mlp.onnx"
    result = evaluate_on_data(artifact, "builtin:digits", seed=0)
    samples = result.data
    assert (samples.source, samples.split, samples.seed, samples.samples, samples.of) == (
        "builtin:digits", "eval", 0, 359, 1797)
    # nothing recorded beside this export: the loader's default preparation, said so
    assert samples.preprocessing_from == "default" and samples.preprocessing.normalize == "unit"
    assert EvalSamples.from_dict(samples.to_dict()) == samples
    assert result.value == pytest.approx(evaluate_artifact(artifact, eval_set).value)
    document = result.to_dict()
    assert list(document)[-1] == "data" and document["data"]["of"] == 1797
    assert EvalResult.from_dict(json.loads(json.dumps(document))) == result
    every = evaluate_on_data(artifact, "builtin:digits", part="all")
    assert every.data is not None and every.data.samples == every.data.of == 1797
    # without evaluate_on_data there is no "data" key (compress's records stay as they were)
    assert "data" not in evaluate_artifact(artifact, eval_set).to_dict()
