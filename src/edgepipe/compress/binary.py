"""ONNX backend of ``--method binary``: a Brevitas-binarized, distillation-trained network.

The torch model is binarized (:mod:`edgepipe.compress.binary_build`: XNOR-Net weights with
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
"""

from __future__ import annotations

import time
import warnings
from importlib.metadata import version
from typing import Any

import numpy as np
import torch

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.config import BinaryConfig
from edgepipe.errors import InputError, ToleranceError, UnsupportedError
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
    from edgepipe.compress.binary_build import binarize_module, calibrate, deploy
    from edgepipe.compress.binary_measure import latency, operations, storage
    from edgepipe.compress.binary_pack import check_packed, write_packed
    from edgepipe.compress.brevitas_quant import export_qcdq
    from edgepipe.compress.distill import distill
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
                           threads=job.threads or 1)
        deployed, packed = deploy(student, sample)
    export_qcdq(deployed, job, arrays)
    _int8_signs(job.path, packed)
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
        "storage": storage(layers, round_trip, packed_path, job.float_path),
        "operations": operations(layers),
        "latency": latency({"float": job.float_path, "binary": job.path},
                           [a[:1].numpy() for a in arrays], job.threads),
    }
    sizes = tool["storage"]
    notes += [tool["latency"]["note"],
              f"Packed weights file {packed_path.name}: {sizes['packed_file_bytes']} bytes "
              f"(measured) against {sizes['float_bytes']} bytes of float32 weights "
              f"(computed), {sizes['whole_model_ratio']}x smaller; the binarized layers "
              f"{sizes['binary_layers_ratio']}x smaller. The ONNX file holds the binary weights "
              "as int8 signs (ONNX has no 1-bit tensor type), dequantized at load."]
    return Compressed(job.path, [job.path, packed_path], "binary", tool, left, notes)


def _int8_signs(path: Any, packed: list[dict[str, Any]]) -> None:
    """Store each binary layer's weight in the ONNX file as int8 signs and a DequantizeLinear
    by its per-channel scale (exactly sign x scale in float32): a quarter of float32 bytes.
    ONNX Runtime dequantizes them at load; it has no 1-bit tensor type to hold them in."""
    import onnx
    from onnx import helper, numpy_helper

    from edgepipe.compress.binary_pack import expanded_weight

    model = onnx.load(str(path))
    graph = model.graph
    for layer in (p for p in packed if p["kind"] == "binary"):
        weight = expanded_weight(layer)
        found = next(i for i in graph.initializer
                     if tuple(i.dims) == weight.shape and i.data_type == onnx.TensorProto.FLOAT
                     and np.array_equal(numpy_helper.to_array(i), weight))
        name = found.name
        graph.initializer.remove(found)
        scale = layer["tensors"]["scale"].astype(np.float32)
        graph.initializer.extend([
            numpy_helper.from_array(layer["tensors"]["signs"], f"{name}.signs"),
            numpy_helper.from_array(scale, f"{name}.scale"),
            numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}.zero_point")])
        graph.node.insert(0, helper.make_node(
            "DequantizeLinear", [f"{name}.signs", f"{name}.scale", f"{name}.zero_point"],
            [name], name=f"{layer['layer']}.binary_weight", axis=0))
    onnx.checker.check_model(model)
    from edgepipe.rundir import atomic_write_bytes

    atomic_write_bytes(path, model.SerializeToString())


def _check_job(job: CompressJob, config: BinaryConfig) -> Any:
    if job.source.module is None:
        raise UnsupportedError(
            f"--method binary trains a torch model; {job.source.spec} is {job.source.kind}.",
            hint="give the torch model (package.module:factory, torchvision:NAME, builtin:...) "
            "rather than its ONNX export.", reference="method-needs-torch")
    if job.data is None or not len(job.data.calib) or not len(job.data.train):
        raise InputError(
            "--method binary needs training data: a binarized network is useless untrained, "
            "and none was given.",
            hint="give --data (a .npz, an image folder or builtin:digits) with samples like "
            "the model's real inputs; labels are optional (without them training is "
            "distillation from the float model only).", reference="training-data-missing")
    return job.source.module


def _parity(deployed: Any, student: Any, job: CompressJob,
            arrays: list[torch.Tensor]) -> dict[str, Any]:
    """The ONNX file against the deployed torch model (gated), and against the trained one."""
    from edgepipe.export import compare_outputs
    from edgepipe.runtime import open_artifact

    started = time.perf_counter()
    with torch.no_grad():
        reference = deployed(*arrays).numpy()
        trained = student(*arrays).numpy()
    session = open_artifact(job.path, threads=job.threads)
    first = session.inputs[0].shape[0]
    batch = first if isinstance(first, int) and first > 0 else 64
    actual = run_batched(session.run, [a.numpy() for a in arrays], batch)[0]
    report = compare_outputs([reference], [actual], ["output"], PARITY_ATOL)
    limits = PARITY_ATOL * np.maximum(1.0, np.abs(reference).max(axis=-1))
    over = np.abs(actual - reference).max(axis=-1) > limits
    agree = float((actual.argmax(-1) == reference.argmax(-1)).mean())
    document = {**report.to_dict(), "gated": True, "reference": "deployed torch model "
                "(BatchNorm folded, float16 scales)", "samples": len(reference),
                "samples_over_tolerance": int(over.sum()), "top1_agreement": agree,
                "vs_trained_model": {
                    "max_abs_diff": float(np.abs(trained - actual).max()),
                    "top1_agreement": float((trained.argmax(-1) == actual.argmax(-1)).mean())},
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
