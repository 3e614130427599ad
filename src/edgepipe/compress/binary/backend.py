"""ONNX backend of ``--method binary``: a Brevitas-binarized, distillation-trained network.

The torch model is binarized (:mod:`edgepipe.compress.binary.build`: XNOR-Net weights with
per-channel scales, optional Bi-Real binary activations with real-valued shortcuts, 8-bit
first and last layers), calibrated, and trained by knowledge distillation from the float
model (:mod:`edgepipe.compress.distill`, cosine learning rate, early stopping on a
validation slice of train). It is then deployed (BatchNorm folded, scales rounded to
float16) and written twice:

- ``<model>.binary.onnx``: runs in ONNX Runtime. Brevitas' QCDQ export refuses 1-bit
  quantizers, so the binary layers are plain Conv / Gemm whose weights are int8 signs
  dequantized by the per-channel scale (``DequantizeLinear``, exactly +-scale in float32),
  their sign activations ``Where(x - t >= 0, 1, -1)``; the 8-bit layers are QCDQ. It is
  parity-checked against the deployed torch model.
- ``<model>.binary.packed.bin``: 1 bit per binary weight plus float16 scales, biases and
  thresholds, and the 8-bit layers; read back, unpacked and checked to equal the weights
  of the ONNX file exactly.

Models with several outputs train on every output (see :mod:`edgepipe.compress.outputs`);
the trained network is checkpointed in ``OUT/.checkpoints`` until the artifact is made, so a
failure after training loses nothing (see :mod:`edgepipe.compress.checkpoint`).
"""

from __future__ import annotations

import time
import warnings
from importlib.metadata import version
from typing import Any

import numpy as np
import torch

from edgepipe.compress.base import Compressed, CompressJob, torch_module
from edgepipe.compress.binary.config import BinaryConfig
from edgepipe.compress.outputs import flat_outputs
from edgepipe.errors import InputError, ToleranceError
from edgepipe.export.base import log
from edgepipe.runtime.base import run_batched

PARITY_ATOL = 1e-4  # fp32 export tolerance, relative to max(1, |output|)
# A sign flips where its input lies within float rounding of the threshold, and ONNX
# Runtime rounds differently from torch; a flip changes that sample's output. Up to this
# share of samples may differ beyond the tolerance, provided their top-1 agrees.
FLIP_SHARE = 0.02
DISTILL_ONLY = ("The training data has no labels: the binary network is trained by "
                "distillation from the float model only (no cross-entropy).")


def compress(job: CompressJob) -> Compressed:
    """Binarize, train and export ``job.source.module``; write ``job.path`` and the packed file."""
    from edgepipe.compress.binary.build import binarize_module, calibrate, deploy
    from edgepipe.compress.binary.measure import latency, operations, storage
    from edgepipe.compress.binary.pack import check_packed, write_packed
    from edgepipe.compress.distill import distill
    from edgepipe.compress.lowbit.brevitas import export_qcdq
    from edgepipe.training import torch_threads

    config = job.config
    assert isinstance(config, BinaryConfig)
    module = _check_job(job, config)
    assert job.data is not None
    torch.manual_seed(config.seed)
    calib = job.data.calib.subset(np.arange(min(config.calib_size, len(job.data.calib))))
    arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in calib.inputs.values()]
    sample = [a[:2] for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        student, layers, left = binarize_module(module, config, sample)
        calibrate(student, arrays)
    notes = []
    if job.data.train.labels is None:
        log.warning(DISTILL_ONLY)
        notes.append(DISTILL_ONLY)
    # Small models train fastest on one thread; on shared cores more threads only contend.
    with torch_threads(job.threads or 1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training = distill(student, module, job.data.train, config, cosine=True,
                           threads=job.threads or 1, checkpoints=job.checkpoints,
                           tag=f"{job.source.name}.binary")
        deployed, packed = deploy(student, sample)
    if job.data.train.labels is not None and not training["labelled"]:
        notes.append("The training data's labels fit no classifier output of the "
                     "model: the binary network is trained by distillation from the float "
                     "model only, on every output.")
    export_qcdq(deployed, job, arrays)
    stored_float = _int8_signs(job.path, packed)
    packed_path = job.path.with_name(job.path.stem + ".packed.bin")
    write_packed(packed_path, packed)
    round_trip = check_packed(packed_path, packed, job.path)
    parity = _parity(deployed, student, job, arrays)
    tool: dict[str, Any] = {
        "quantizer": "brevitas", "version": version("brevitas"), "format": "ONNX (binary "
        "layers as float +-scale weights, 8-bit layers QCDQ) + packed weights file",
        "weights": "binary, per-output-channel scale = mean |w| (XNOR-Net); first and last "
        f"layers: {'int' + str(config.first_last_bits) if config.first_last_bits else 'binary'}",
        "activations": ("binary: sign(x - learned per-channel threshold) with a clamped "
                        "straight-through estimator; real-valued shortcuts (Bi-Real)"
                        if config.binary_activations else "real (weights-only binarization)"),
        "layers": layers, "training": training, "calibration": {
            "samples": len(calib), "source": "calibration split (from train)",
            "sets": "8-bit activation ranges, sign thresholds, binary-block BatchNorm stats"},
        "packed": round_trip, "parity_check": parity,
    }
    sizes = storage(layers, round_trip, packed_path, job.float_path)
    timed = latency({"float": job.float_path, "binary": job.path},
                    [a[:1].numpy() for a in arrays], job.threads)
    tool.update(storage=sizes.to_dict(), operations=operations(layers).to_dict(),
                latency=timed.to_dict())
    notes += [timed.note,
              f"Packed weights file {packed_path.name}: {sizes.packed_file_bytes} bytes "
              f"(measured) against {sizes.float_bytes} bytes of float32 weights "
              f"(computed), {sizes.whole_model_ratio}x smaller; the binarized layers "
              f"{sizes.binary_layers_ratio}x smaller. The ONNX file holds the binary weights "
              "as int8 signs (ONNX has no 1-bit tensor type), dequantized at load."]
    notes += [f"{item['layer']}: binary weight stored as float32 +-scale in "
              f"{job.path.name} ({item['why']}); the packed file holds its signs."
              for item in stored_float]
    return Compressed(job.path, [job.path, packed_path], "binary", tool, left, notes)


def _int8_signs(path: Any, packed: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Store each binary layer's weight in the ONNX file as int8 signs and a DequantizeLinear
    by its per-channel scale (exactly sign x scale in float32): a quarter of float32 bytes.
    ONNX Runtime dequantizes them at load; it has no 1-bit tensor type to hold them in.

    Each layer's weight is found by provenance: the Conv / Gemm / MatMul node the exporter
    made from the deployed block's layer (its scope names the module), and the initializer
    it reads. A weight the exporter changed (folded with a following op) stays float in
    the file; those layers are returned, with the reason, and the rest are marked
    ``"in_onnx": "int8 signs"`` in ``packed``.
    """
    import onnx
    from onnx import helper, numpy_helper

    from edgepipe.compress.binary.pack import expanded_weight
    from edgepipe.compress.onnx_layers import exported_node

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    kept: list[dict[str, str]] = []
    done: dict[str, str] = {}
    for layer in (p for p in packed if p["kind"] == "binary"):
        weight = expanded_weight(layer)
        node = exported_node(graph, f"{layer['layer']}.layer")
        found = (initializers.get(node.input[1]) if node is not None and len(node.input) > 1
                 else None)
        values = None if found is None else numpy_helper.to_array(found)
        axis = None
        if values is not None and values.shape == weight.shape and np.array_equal(values,
                                                                                  weight):
            axis = 0
        elif (values is not None and weight.ndim == 2 and values.shape == weight.T.shape
              and np.array_equal(values, weight.T)):
            axis = 1  # a Linear on a sequence: MatMul by the transposed weight
        if found is None or axis is None:
            why = ("no Conv / Gemm / MatMul node in the exported graph comes from it"
                   if node is None else "the exporter changed its weight (folded another "
                   "op into it)")
            kept.append({"layer": layer["layer"], "why": why})
            log.warning("%s: binary weight stored as float in %s: %s.", layer["layer"],
                        path.name, why)
            continue
        layer["in_onnx"] = found.name
        if found.name in done:  # one weight shared by several nodes
            continue
        name = found.name
        done[name] = layer["layer"]
        graph.initializer.remove(found)
        for value in [v for v in graph.input if v.name == name]:  # initializers as inputs
            graph.input.remove(value)
        signs = layer["tensors"]["signs"]
        scale = layer["tensors"]["scale"].astype(np.float32)
        graph.initializer.extend([
            numpy_helper.from_array(signs if axis == 0 else np.ascontiguousarray(signs.T),
                                    f"{name}.signs"),
            numpy_helper.from_array(scale, f"{name}.scale"),
            numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}.zero_point")])
        graph.node.insert(0, helper.make_node(
            "DequantizeLinear", [f"{name}.signs", f"{name}.scale", f"{name}.zero_point"],
            [name], name=f"{layer['layer']}.binary_weight", axis=axis))
    onnx.checker.check_model(model)
    from edgepipe.rundir import atomic_write_bytes

    atomic_write_bytes(path, model.SerializeToString())
    return kept


def _check_job(job: CompressJob, config: BinaryConfig) -> Any:
    module = torch_module(job, "trains")
    if job.data is None or not len(job.data.calib) or not len(job.data.train):
        raise InputError(
            "--method binary needs training data: a binarized network is useless untrained, "
            "and none was given.",
            hint="give --data (a .npz, an image folder or builtin:digits) with samples like "
            "the model's real inputs; labels are optional (without them training is "
            "distillation from the float model only).", reference="training-data-missing")
    return module


def _parity(deployed: Any, student: Any, job: CompressJob,
            arrays: list[torch.Tensor]) -> dict[str, Any]:
    """The ONNX file against the deployed torch model (gated), and against the trained one."""
    from edgepipe.export import compare_outputs
    from edgepipe.runtime import open_artifact

    started = time.perf_counter()
    with torch.no_grad():
        reference = [o.numpy() for o in flat_outputs(deployed(*arrays))]
        trained = [o.numpy() for o in flat_outputs(student(*arrays))]
    session = open_artifact(job.path, threads=job.threads)
    first = session.inputs[0].shape[0]
    batch = first if isinstance(first, int) and first > 0 else 64
    actual = run_batched(session.run, [a.numpy() for a in arrays], batch)
    names = [s.name for s in session.outputs]
    report = compare_outputs(reference, actual, names, PARITY_ATOL)
    count = len(reference[0])
    over = np.zeros(count, bool)
    for ref, out in zip(reference, actual, strict=True):
        ref, out = ref.reshape(count, -1), out.reshape(count, -1)
        limits = PARITY_ATOL * np.maximum(1.0, np.abs(ref).max(axis=-1))
        over |= np.abs(out - ref).max(axis=-1) > limits
    classifier = next((i for i, r in enumerate(reference) if r.ndim == 2 and r.shape[1] > 1),
                      None)
    if classifier is not None:
        agree = float((actual[classifier].argmax(-1)
                       == reference[classifier].argmax(-1)).mean())
        vs_trained = float((trained[classifier].argmax(-1)
                            == actual[classifier].argmax(-1)).mean())
    else:  # no class scores to agree on: a sample agrees when it is within the tolerance
        agree, vs_trained = 1.0 - float(over.mean()), None
    document = {**report.to_dict(), "gated": True, "reference": "deployed torch model "
                "(BatchNorm folded, float16 scales)", "samples": count,
                "samples_over_tolerance": int(over.sum()), "top1_agreement": agree,
                "vs_trained_model": {
                    "max_abs_diff": max(float(np.abs(t - a).max())
                                        for t, a in zip(trained, actual, strict=True)),
                    "top1_agreement": vs_trained},
                "seconds": round(time.perf_counter() - started, 3)}
    if not report.passed and (over.mean() > FLIP_SHARE or agree < 1.0 - FLIP_SHARE):
        raise ToleranceError(
            f"{job.path.name} differs from the binarized torch model beyond the tolerance on "
            f"{int(over.sum())} of {len(over)} samples:\n"
            + "\n".join(o.line() for o in report.outputs),
            hint="this is a bug in the binary backend's export; --debug shows the traceback.",
            reference="tolerance-exceeded", details=document)
    document["passed"] = True
    if not report.passed:
        document["rule"] = (f"{int(over.sum())} sample(s) beyond {PARITY_ATOL:g}: a sign "
                            "activation flips where its input is within rounding of the "
                            f"threshold; allowed up to {FLIP_SHARE:.0%} of samples with "
                            "top-1 agreement")
    return document
