"""The samples a compress run uses: calibration arrays, the check set every artifact is
measured on, and the source model's reference outputs on it.

Calibration comes from the data's calibration split (drawn from train), never from eval;
without data, static int8 refuses unless random calibration was asked for, loudly. The
check set is the eval split, or seeded random inputs when no data was given (then only
agreement with the source model is measured, never accuracy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepipe.compress.config_base import CompressConfig
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int8.config import Int8StaticConfig
from edgepipe.compress.results import CalibrationUsed, CheckData
from edgepipe.data import Dataset, Splits, check_data_fits
from edgepipe.errors import InputError
from edgepipe.evaluate import EvalResult, classifier_output, predict, score
from edgepipe.export.base import log
from edgepipe.model import LoadedModel, classifier_classes

RANDOM_CHECK_SAMPLES = 8


def calibration_arrays(loaded: LoadedModel, config: CompressConfig, data: Splits | None,
                       ) -> tuple[list[np.ndarray] | None, CalibrationUsed | None]:
    """The calibration arrays (one per input) and how they were made, for methods that need it."""
    if isinstance(config, Int4WeightConfig):
        return _data_aware_arrays(loaded, config, data)
    if not isinstance(config, Int8StaticConfig):
        return None, None
    if data is not None and len(data.calib):
        calib = data.calib.subset(np.arange(min(config.calib_size, len(data.calib))))
        if len(calib) < config.calib_size:
            log.warning("Calibrating on %d samples: the data's calibration split has only %d "
                        "(calib_size %d).", len(calib), len(calib), config.calib_size)
        arrays = ([calib.x] if len(calib.inputs) == 1
                  else [calib.inputs[s.name] for s in loaded.inputs])
        return arrays, CalibrationUsed(config.calibration, len(calib),
                                       f"{data.calib.source}: calibration split (from "
                                       f"train), seed {data.seed}")
    if not config.allow_random_calibration:
        raise InputError(
            "Static int8 needs calibration data, and none was given.",
            hint="give --data (a .npz, an image folder or builtin:digits) with samples like "
            "the model's real inputs; --allow-random-calibration calibrates on random N(0,1) "
            "inputs instead, which sets activation ranges that real data will not match.",
            reference="calibration-data-missing")
    log.warning("CALIBRATING ON RANDOM DATA (--allow-random-calibration): %d N(0,1) samples. "
                "Activation ranges will not match real inputs; expect a large accuracy drop.",
                config.calib_size)
    arrays = random_inputs(loaded, config.calib_size, config.seed)
    return arrays, CalibrationUsed(config.calibration, config.calib_size,
                                   f"random N(0,1), seed {config.seed}", random=True)


def _data_aware_arrays(loaded: LoadedModel, config: Int4WeightConfig, data: Splits | None,
                       ) -> tuple[list[np.ndarray] | None, CalibrationUsed | None]:
    """int4-weight: calibration samples only for the data-aware algorithms, and only real ones."""
    if not config.data_aware:
        return None, None
    if data is None or not len(data.calib):
        raise InputError(
            "--data-aware needs calibration samples, and no --data was given.",
            hint="give --data with samples like the model's real inputs, or drop --data-aware "
            "(round to nearest needs no data).", reference="calibration-data-missing")
    calib = data.calib.subset(np.arange(min(config.calib_size, len(data.calib))))
    arrays = ([calib.x] if len(calib.inputs) == 1
              else [calib.inputs[s.name] for s in loaded.inputs])
    return arrays, CalibrationUsed("data-aware int4", len(calib),
                                   f"{data.calib.source}: calibration split (from train), "
                                   f"seed {data.seed}")


def random_inputs(loaded: LoadedModel, count: int, seed: int) -> list[np.ndarray]:
    return loaded.within_limits([s.with_shape(("batch", *s.shape[1:])).sample(count, seed + i)
                                 for i, s in enumerate(loaded.inputs)])


def make_check_set(loaded: LoadedModel, config: CompressConfig,
                   data: Splits | None) -> tuple[Dataset, CheckData]:
    """The samples every artifact is measured on: the eval split; with data but an empty eval
    split, the calibration samples (and the record says so); seeded random inputs only when
    no data was given, and then no accuracy is claimed (they carry no labels)."""
    if data is not None:  # the user's data, never random inputs: the first part not empty
        parts = (("eval", "eval split" if data.stratified else
                  "eval split (unstratified: too few samples per class)"),
                 ("calib", "calibration samples (the eval split is empty: too few samples to "
                           "hold any out; the figure is not a held-out one)"),
                 ("train", "training samples (the eval and calibration splits are empty; the "
                           "figure is not a held-out one)"))
        for name, part in parts:
            chosen = getattr(data, name)
            if len(chosen):
                return chosen, CheckData(chosen.source, part, len(chosen),
                                         chosen.labels is not None, split=data.describe().to_dict())
    arrays = random_inputs(loaded, RANDOM_CHECK_SAMPLES, config.seed)
    dataset = Dataset({s.name: a for s, a in zip(loaded.inputs, arrays, strict=True)},
                      source="random N(0,1)")
    return dataset, CheckData("random N(0,1)", "no data given", RANDOM_CHECK_SAMPLES, False,
                              seed=config.seed)


def reference_outputs(loaded: LoadedModel, dataset: Dataset,
                      threads: int | None) -> tuple[list[np.ndarray], EvalResult | None]:
    """The source model's outputs on the check set, and its metric when the data is labelled."""
    if loaded.kind == "onnx":
        from edgepipe.runtime.onnx_runtime import OnnxRuntimeSession

        assert loaded.onnx_path is not None
        session: Any = OnnxRuntimeSession(loaded.onnx_path, threads)
    else:
        from edgepipe.runtime.torch_runtime import TorchSession

        specs = [s.with_shape(("batch", *s.shape[1:])) for s in loaded.inputs]
        session = TorchSession(loaded.module, specs, threads=threads)
    outputs, batch, layout = predict(session, dataset)
    baseline = None
    if dataset.labels is not None and classifier_output(outputs, dataset.num_classes) is None:
        log.warning("The data's labels fit no (N, classes) output of %s, so top-1 does not "
                    "apply: every output is measured against the float model instead (SQNR, "
                    "cosine similarity, max |diff|).", loaded.spec)
    elif dataset.labels is not None:
        baseline = score(session, outputs, dataset, batch=batch, layout=layout,
                         name=loaded.spec)
    return outputs, baseline


def check_labels_fit(loaded: LoadedModel, data: Splits | None) -> None:
    """Labels outside a classifier's classes are the data's fault, said before any work (a
    DataError ``labels-out-of-range``); see :func:`edgepipe.model.classifier_classes`."""
    if data is None or data.train.labels is None and data.eval.labels is None:
        return
    classes = classifier_classes(loaded)
    if classes is None:
        return  # not a plain classifier: its outputs are compared with the float model's
    for part in (data.train, data.eval):
        if len(part):
            check_data_fits(part, loaded.inputs, classes)
