"""``export-triton``: the tail as a Triton Inference Server model repository, and a KServe
InferenceService for the same model, so that the device side talks to either unchanged.

The repository is Triton's layout: ``REPO/NAME/config.pbtxt`` and ``REPO/NAME/1/model.onnx``.
The configuration is built as Triton's own ``ModelConfig`` protobuf message (tritonclient
ships its schema) and written in its text format, so a field Triton does not know cannot
be written. A tail with a dynamic batch dimension gets ``max_batch_size`` and dynamic
batching; a tail exported with batch 1 gets ``max_batch_size: 0`` and its full shape. The
bottleneck's scale and zero point travel as string parameters.

An entropy-coded split (``edgepipe split --entropy``): Triton's ONNX Runtime backend takes
the INT8 codes, not the bitstreams, so the repository's model is the same tail; the code
tables (``entropy.npz``) are copied beside it and named in the configuration's
``edgepipe_entropy_tables`` parameter, and the result says what Triton would need to take
the bitstreams itself (a Python-backend model in front that decodes them with
:class:`edgepipe.split.entropy.EntropyCoder`, in an ensemble with this one). ``edgepipe
serve`` takes them directly (``NAME-entropy``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.errors import InputError
from edgepipe.serve.wire import Wire, find_tail

TRITON_TYPES = {"int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "float32": "TYPE_FP32",
                "float16": "TYPE_FP16", "int32": "TYPE_INT32", "int64": "TYPE_INT64"}


def model_config(name: str, spec_in: Any, spec_out: Any, wire: Any, *, max_batch_size: int,
                 queue_delay_us: int | None, platform: str = "onnxruntime_onnx"
                 ) -> dict[str, Any]:
    """Triton's ``ModelConfig`` in its JSON form (what Triton's ``/v2/models/NAME/config``
    answers): a dynamic batch dimension becomes ``max_batch_size`` (and dynamic batching,
    where ``queue_delay_us`` is given); the wire's scale and zero point are parameters."""
    dynamic = not isinstance(spec_in.shape[0], int)

    def dims(shape: tuple) -> list[int]:
        rest = shape[1:] if dynamic else shape
        return [d if isinstance(d, int) else -1 for d in rest]

    config: dict[str, Any] = {
        "name": name, "platform": platform, "max_batch_size": max_batch_size if dynamic else 0,
        "input": [{"name": spec_in.name, "data_type": TRITON_TYPES[spec_in.dtype],
                   "dims": dims(spec_in.shape)}],
        "output": [{"name": spec_out.name, "data_type": TRITON_TYPES[spec_out.dtype],
                    "dims": dims(spec_out.shape)}],
        "instance_group": [{"kind": "KIND_CPU", "count": 1}],
        "parameters": {key: {"string_value": str(value)} for key, value in (
            ("edgepipe_cut", wire.cut), ("edgepipe_scale", wire.scale),
            ("edgepipe_zero_point", wire.zero_point), ("edgepipe_bits", wire.bits),
            ("edgepipe_entropy_tables", (getattr(wire, "entropy", None) or {}).get("tables")))
            if value is not None}}
    if dynamic and queue_delay_us is not None:
        config["dynamic_batching"] = {"max_queue_delay_microseconds": queue_delay_us}
    return config


@dataclass(frozen=True)
class TritonTensor:
    """One input or output of the Triton model: name, Triton data type and dims (-1: any)."""

    name: str
    data_type: str
    dims: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "data_type": self.data_type, "dims": list(self.dims)}


@dataclass(frozen=True)
class TritonModel:
    """What config.pbtxt says about the model."""

    name: str
    platform: str
    max_batch_size: int
    dynamic_batching: bool
    input: TritonTensor
    output: TritonTensor

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "platform": self.platform,
                "max_batch_size": self.max_batch_size,
                "dynamic_batching": self.dynamic_batching, "input": self.input.to_dict(),
                "output": self.output.to_dict()}


@dataclass(frozen=True)
class TritonRepository:
    """What ``export-triton`` wrote: the repository, its model, its files (relative to OUT),
    the InferenceService and the wire format the tail expects."""

    repository: Path
    model: TritonModel
    files: tuple[str, ...]
    service_path: str
    storage_uri: str
    storage_uri_is_placeholder: bool
    wire: Wire

    def to_dict(self) -> dict[str, Any]:
        return {"repository": str(self.repository), "model": self.model.to_dict(),
                "files": list(self.files),
                "inference_service": {"path": self.service_path, "storage_uri": self.storage_uri,
                                      "storage_uri_is_placeholder":
                                          self.storage_uri_is_placeholder},
                "wire": self.wire.to_dict(),
                **({} if self.wire.entropy is None else {"entropy": ENTROPY_NOTE})}


ENTROPY_NOTE = {
    "bitstreams_served": False,
    "tables": "entropy.npz, copied beside the model (config parameter edgepipe_entropy_tables)",
    "needs": "Triton's ONNX Runtime backend takes the INT8 codes. To take the range-coded "
             "bitstreams, put a Python-backend model in front (an ensemble: bitstreams as "
             "UINT8 in, EntropyCoder(CodeTables.load('entropy.npz'), shape).decode_one per "
             "sample, code - 128 out to this model), with edgepipe and constriction in its "
             "environment; or decode on the gateway and send INT8 codes. `edgepipe serve` "
             "decodes them itself (model NAME-entropy)."}


def _tensor(entry: dict[str, Any]) -> TritonTensor:
    return TritonTensor(entry["name"], entry["data_type"], tuple(entry["dims"]))


def triton_config(name: str, session: Any, wire: Any, max_batch_size: int,
                  queue_delay_us: int) -> tuple[str, TritonModel]:
    """``config.pbtxt`` text for the tail opened in ``session``, and a summary of it. The
    JSON form is parsed into Triton's own message first: an unknown field is an error."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2 as pb

    config = model_config(name, session.inputs[0], session.outputs[0], wire,
                          max_batch_size=max_batch_size, queue_delay_us=queue_delay_us)
    message = json_format.ParseDict(config, pb.ModelConfig())
    summary = TritonModel(name, config["platform"], config["max_batch_size"],
                          "dynamic_batching" in config, _tensor(config["input"][0]),
                          _tensor(config["output"][0]))
    return text_format.MessageToString(message), summary


def inference_service(name: str, storage_uri: str) -> dict[str, Any]:
    """A KServe ``InferenceService`` serving the repository's model with Triton over the
    Open Inference Protocol (v2)."""
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name},
            "spec": {"predictor": {"model": {
                "modelFormat": {"name": "onnx"}, "runtime": "kserve-tritonserver",
                "protocolVersion": "v2", "storageUri": storage_uri,
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                              "limits": {"cpu": "2", "memory": "2Gi"}}}}}}


def export_triton(split_dir: Path, out: Path, *, name: str = "tail", max_batch_size: int = 64,
                  queue_delay_us: int = 100, storage_uri: str | None = None
                  ) -> TritonRepository:
    """Write the repository and the InferenceService; nothing is left half-written: the
    files go to a temporary folder beside ``out`` that is renamed into place at the end."""
    import yaml

    from edgepipe.runtime import open_artifact

    if not (name.replace("-", "").replace("_", "").isalnum() and name[0].isalpha()):
        raise InputError(f"The model name {name!r} cannot name a Triton model and a "
                         "Kubernetes object.", hint="use letters, digits and '-', starting "
                         "with a letter.", reference="bad-model-name")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty.", hint="give a new folder with -o.",
                         reference="output-exists")
    artifact, wire = find_tail(split_dir, "onnxruntime")
    session = open_artifact(artifact)
    text, summary = triton_config(name, session, wire, max_batch_size, queue_delay_us)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model_dir = staging / "models" / name
        (model_dir / "1").mkdir(parents=True)
        shutil.copyfile(artifact, model_dir / "1" / "model.onnx")
        if wire.tables is not None:
            shutil.copyfile(wire.tables, model_dir / wire.tables.name)
        (model_dir / "config.pbtxt").write_text(text)
        uri = storage_uri or f"pvc://edgepipe-models/{out.name}/models"
        service = inference_service(name.lower(), uri)
        (staging / "inferenceservice.yaml").write_text(yaml.safe_dump(service, sort_keys=False))
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TritonRepository(out / "models", summary,
                            (f"models/{name}/config.pbtxt", f"models/{name}/1/model.onnx",
                             *([f"models/{name}/{wire.tables.name}"] if wire.tables else []),
                             "inferenceservice.yaml"), "inferenceservice.yaml", uri,
                            storage_uri is None, wire)
