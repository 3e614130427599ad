"""A split exported as ExecuTorch programs: head.pte and tail.pte run end to end in
executorch.runtime and agree with the ONNX pair. Skipped without the executorch extra."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.runtime import open_artifact
from edgepipe.split.api import SplitConfig, split_model
from edgepipe.split.train import SplitTraining

pytest.importorskip("executorch", reason="the executorch extra is not installed")


def test_head_and_tail_as_pte_run_end_to_end(digits_cnn, tmp_path):
    loaded, splits = digits_cnn
    config = SplitConfig(at="pool2", bottleneck=4, formats=("onnx", "executorch"),
                         training=SplitTraining(distill_epochs=2, finetune_epochs=0,
                                                patience=2))
    result = split_model(loaded, config, splits, tmp_path)
    # the tail takes the int8 codes: the program's input dtype is read from its metadata
    tail = open_artifact(tmp_path / "tail.pte", threads=1)
    assert tail.inputs[0].dtype == "int8"
    head = open_artifact(tmp_path / "head.pte", threads=1)
    x = splits.eval.inputs[loaded.inputs[0].name][:1]
    codes = head.run([x])[0]
    assert codes.dtype == np.int8
    onnx_codes = open_artifact(tmp_path / "head.onnx", threads=1).run([x])[0]
    assert np.abs(codes.astype(int) - onnx_codes.astype(int)).max() <= 1
    # end to end on every eval sample, in each runtime: the same accuracy within a sample
    # (two epochs of training: far above chance, 10%, not yet near the original)
    pte, ort = result.accuracy["split_executorch"], result.accuracy["split_onnxruntime"]
    assert pte > 0.4 and abs(pte - ort) <= 1.5 / len(splits.eval)
    assert abs(pte - result.accuracy["split_torch"]) <= 1.5 / len(splits.eval)
