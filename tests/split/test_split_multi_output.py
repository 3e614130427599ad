"""Split computing on models that are not single-output classifiers: a two-output CNN
(class logits and a box) and a dict output the labels do not fit; and a failure after
training that keeps the trained parts for the next run."""

from __future__ import annotations

import pytest

from compress_models import trained
from edgepipe.errors import UnsupportedError
from edgepipe.split import api
from edgepipe.split.api import SplitConfig, split_model
from edgepipe.split.train import SplitTraining

QUICK = SplitTraining(distill_epochs=6, finetune_epochs=6, patience=3)


def test_two_output_split_trains_every_output_and_keeps_accuracy(tmp_path):
    loaded, splits = trained("two_output_cnn")
    result = split_model(loaded, SplitConfig(at="pool1", bottleneck=4, training=QUICK),
                         splits, tmp_path)
    accuracy = result.accuracy
    assert accuracy["original"] >= 0.85
    assert accuracy["split_torch"] >= accuracy["original"] - 0.1, accuracy
    assert accuracy["split_onnxruntime"] >= accuracy["original"] - 0.1, accuracy
    assert "on 2 outputs" in result.training["fine_tuning"]["loss"]
    check = result.end_to_end["onnx"]
    assert check["prediction_agreement_with_torch"] >= 0.99 and check["max_abs_logit_diff"] < 0.1
    assert result.failed == []
    assert not (tmp_path / ".checkpoints").exists()


def test_labels_that_fit_no_output_compare_every_output_with_the_original(tmp_path):
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model

    loaded = load_model("tiny_models:tiny_segmenter", input_shape=(1, 3, 8, 8))
    splits = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0)
    result = split_model(loaded, SplitConfig(at="conv1", bottleneck=4, training=QUICK), splits,
                         tmp_path)
    accuracy = result.accuracy
    assert accuracy["original"] is None and accuracy["split_torch"] is None
    assert "labels fit no" in accuracy["metric"]
    [torch_check] = accuracy["vs_original"]["split_torch"]
    assert torch_check["cosine_mean"] >= 0.9 and torch_check["sqnr_db"] >= 5.0, torch_check
    assert accuracy["vs_original"]["split_onnxruntime"][0]["cosine_mean"] >= 0.9
    assert "labels fit no classifier" in result.training["fine_tuning"]["loss"]


def test_a_failure_after_training_keeps_the_split(tmp_path, monkeypatch):
    loaded, splits = trained("two_output_cnn", epochs=2)
    config = SplitConfig(at="pool1", bottleneck=4, training=SplitTraining(
        distill_epochs=2, finetune_epochs=2))

    def broken(*_args, **_kwargs):
        raise UnsupportedError("the export broke", hint="(test)", reference="export-failed")

    with monkeypatch.context() as patch:
        patch.setattr(api, "check_end_to_end", broken)
        with pytest.raises(UnsupportedError) as caught:
            split_model(loaded, config, splits, tmp_path)
    [kept] = list((tmp_path / ".checkpoints").glob("split-*.pt"))
    assert str(kept) in caught.value.hint
    result = split_model(loaded, config, splits, tmp_path)
    assert result.training["checkpoint"] == {"path": str(kept), "reused": True}
    assert not kept.exists()
