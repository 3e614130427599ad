"""``split_model``: cut a torch model, train a bottleneck at the cut, export head and tail.

The result is measured, not estimated: accuracy of the original and of the split model on
the eval split (in torch, and end to end through the exported head and tail in ONNX
Runtime), and the bytes per sample that cross the link, both the raw codes and the codes
zlib-compressed (measured per sample on the eval set); with ``entropy``, the lengths of
the real range-coded bitstreams and the coder's time each way (:mod:`edgepipe.split.entropy`).
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgepipe import formats
from edgepipe.compress.outputs import classifier_index, flat_outputs
from edgepipe.data import Splits
from edgepipe.errors import EdgepipeError, InputError, UnsupportedError
from edgepipe.export.base import log
from edgepipe.json_types import JsonObject
from edgepipe.model import LoadedModel, load_model
from edgepipe.progress import ProgressCallback, reporting
from edgepipe.split.bottleneck import Bottleneck, DeviceHead, ServerTail
from edgepipe.split.points import CutPoint, find_cut, split_graph, trace
from edgepipe.split.train import SplitTraining, train_split
from edgepipe.tensors import TensorSpec


@dataclass(frozen=True)
class SplitConfig:
    at: str
    bottleneck: int
    bits: int = 8
    stride: int = 1
    formats: tuple[str, ...] = ("onnx",)
    int8_head: bool = False
    training: SplitTraining = field(default_factory=SplitTraining)
    entropy: bool = False
    rate_weight: float | None = None
    target_bytes: float | None = None

    def __post_init__(self) -> None:
        from edgepipe.split.entropy import HEADER_BYTES

        if (self.rate_weight is not None or self.target_bytes is not None) and not self.entropy:
            raise InputError("--rate-weight and --target-bytes weigh the entropy coder's rate; "
                             "they need --entropy.", hint="add --entropy (or drop them).",
                             reference="rate-without-entropy")
        if self.rate_weight is not None and self.target_bytes is not None:
            raise InputError("Give --rate-weight or --target-bytes, not both: with a target "
                             "the training searches the weight itself.",
                             hint="keep one of them.", reference="rate-options-conflict")
        if self.rate_weight is not None and not (0 < self.rate_weight < float("inf")):
            raise InputError(f"--rate-weight {self.rate_weight}: the rate's weight must be a "
                             "positive number (a weight of 0 or less rewards bits).",
                             hint="e.g. --rate-weight 1e-4; larger sends fewer bytes.",
                             reference="bad-rate-weight")
        smallest = HEADER_BYTES + 1 / 8  # the bitstream's header and one bit
        if self.target_bytes is not None and not (smallest <= self.target_bytes < float("inf")):
            raise InputError(f"--target-bytes {self.target_bytes}: a sample's bitstream is at "
                             f"least its {HEADER_BYTES}-byte header and one bit of codes "
                             f"({smallest:g} bytes).",
                             hint=f"give a target of at least {smallest:g} bytes per sample "
                                  "(e.g. --target-bytes 64).", reference="bad-target-bytes")
        if not 1 <= self.bits <= 8:
            raise InputError(f"--bits {self.bits}: the codes are 1 to 8 bits.",
                             hint="8 is the usual choice; 4 halves the bytes again.",
                             reference="bad-bits")
        if self.bottleneck < 1 or self.stride not in (1, 2):
            raise InputError("--bottleneck must be at least 1 and --stride 1 or 2.",
                             hint="e.g. --bottleneck 4 --stride 1.", reference="bad-bottleneck")

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "bottleneck": self.bottleneck, "bits": self.bits,
                "stride": self.stride, "formats": list(self.formats),
                "int8_head": self.int8_head, "training": self.training.to_dict(),
                "entropy": self.entropy, "rate_weight": self.rate_weight,
                "target_bytes": self.target_bytes}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SplitConfig:
        values = dict(document)
        if "formats" in values:
            values["formats"] = tuple(values["formats"])
        if "training" in values:
            values["training"] = SplitTraining.from_options(values["training"])
        return cls(**values)


@dataclass
class SplitResult:
    """What ``split_model`` measured and made (``edgepipe split --json`` prints
    :meth:`to_dict`; the manifest's step records it without the artifacts)."""

    cut: dict[str, Any]
    config: dict[str, Any]
    training: dict[str, Any]
    accuracy: dict[str, Any]
    wire: dict[str, Any]
    bytes_per_sample: dict[str, Any]
    end_to_end: dict[str, Any]
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    # with --entropy: the real bitstreams' bytes, the coder's time, the round trip's check
    entropy: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def record(self) -> JsonObject:
        """The manifest step's result, in its JSON form: everything but the artifacts (recorded
        apart)."""
        return {k: v for k, v in self.to_dict().items() if k != "artifacts"}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SplitResult:
        return cls(**{f.name: document[f.name] for f in fields(cls) if f.name in document})


@dataclass(frozen=True)
class WireBytes:
    """Bytes a sample's codes take on the wire (measured on the samples given)."""

    codes_per_sample: int
    bits: int
    packed_bytes: int
    zlib_bytes_mean: float
    zlib_bytes_max: int
    zlib_note: str = "zlib of the 8-bit codes (unpacked), per sample"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SplitParts:
    """A model cut in two, untrained: the original head, the new head, the bottleneck
    between them and the tail, with the cut and the whole module."""

    point: CutPoint
    original_head: torch.nn.Module
    head: torch.nn.Module
    tail: torch.nn.Module
    bottleneck: Bottleneck
    module: torch.nn.Module


def _predict(module: torch.nn.Module, x: np.ndarray, batch: int = 256) -> list[np.ndarray]:
    """Every output of ``module`` on ``x`` (tuples and dicts flattened), batch by batch."""
    outs: list[list[np.ndarray]] = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            outs.append([o.numpy() for o in
                         flat_outputs(module(torch.from_numpy(x[start:start + batch])))])
    return [np.concatenate(parts) for parts in zip(*outs, strict=True)]


def _accuracy(outputs: list[np.ndarray], labels: np.ndarray | None,
              classifier: int | None) -> float | None:
    if labels is None or classifier is None:
        return None
    return float((outputs[classifier].argmax(1) == labels).mean())


def _versus(outputs: list[np.ndarray], reference: list[np.ndarray]) -> list[dict[str, Any]]:
    """Each output against the original model's: SQNR, cosine similarity, max |diff|."""
    from edgepipe.evaluate import compare_to

    names = [f"output_{i}" for i in range(len(reference))]
    return [c.to_dict() for c in compare_to(names, outputs, reference)]


def wire_bytes(codes: np.ndarray, bits: int) -> WireBytes:
    """Bytes a sample's codes take on the wire: packed at ``bits`` per code, and zlib'd
    (level 9) per sample, averaged over the samples given (measured, not estimated)."""
    per_sample = int(np.prod(codes.shape[1:]))
    packed = (per_sample * bits + 7) // 8
    compressed = [len(zlib.compress(np.ascontiguousarray(c).tobytes(), 9)) for c in codes]
    return WireBytes(codes_per_sample=per_sample, bits=bits, packed_bytes=packed,
                     zlib_bytes_mean=float(np.mean(compressed)),
                     zlib_bytes_max=int(np.max(compressed)))


def build_split(loaded: LoadedModel, config: SplitConfig) -> SplitParts:
    """The cut and untrained parts: original head, new head, bottleneck, tail."""
    if loaded.module is None or len(loaded.inputs) != 1:
        raise UnsupportedError("Splitting needs a torch model with one input.",
                               hint="give the model as torchvision:NAME, builtin:..., or a "
                               "factory; ONNX files cannot be retrained.",
                               reference="split-needs-torch")
    module = loaded.module.eval()
    sample = torch.from_numpy(loaded.sample_inputs(1)[0])
    traced = trace(copy.deepcopy(module), sample)
    point = find_cut(traced, config.at)
    if len(point.shape) != 4:
        raise UnsupportedError(f"The tensor at {config.at!r} has shape {point.shape}; the "
                               "bottleneck needs a feature map (N, C, H, W).",
                               hint="cut earlier, before pooling and flattening.",
                               reference="cut-not-a-feature-map")
    channels = point.shape[1]
    if config.bottleneck >= channels:
        raise InputError(f"A bottleneck of {config.bottleneck} channels does not compress the "
                         f"{channels} channels at {config.at!r}.",
                         hint=f"give --bottleneck below {channels} (e.g. {max(1, channels // 8)}).",
                         reference="bottleneck-too-large")
    original_head, _ = split_graph(trace(module, sample), point.index)
    head, tail = split_graph(traced, point.index)
    with torch.no_grad():
        non_negative = bool(original_head(sample).min() >= 0)
    torch.manual_seed(config.training.seed)  # the bottleneck's initial weights
    bottleneck = Bottleneck(channels, config.bottleneck, config.bits, config.stride,
                            non_negative, entropy=config.entropy)
    return SplitParts(point, original_head, head, tail, bottleneck, module)


def split_model(model: LoadedModel | str, config: SplitConfig, data: Any, out: str | Path, *,
                normalize: str | None = None, seed: int | None = None,
                progress: ProgressCallback | None = None) -> SplitResult:
    """``edgepipe split``: cut ``model`` (a MODEL spec or LoadedModel), train a bottleneck
    at the cut, export head and tail, measure them, and record the step in
    ``OUT/manifest.json``.

    ``data``: a DATA spec, Dataset or arrays (shaped for the model, labels checked against
    its classes before any training, then split with ``seed``, by default the training
    seed; ``normalize`` as ``--normalize``), or ready Splits: the bottleneck trains on the
    train part and is measured on the eval part. The trained head, bottleneck and tail are
    checkpointed in ``OUT/.checkpoints`` until the split is exported and measured: a failure
    after training keeps them, and the same call run again reuses them (see
    :mod:`edgepipe.compress.checkpoint`). ``progress``: a callback that receives the
    training's epochs with their scores, and the exports (:mod:`edgepipe.progress`);
    nothing is reported without one.
    """
    with reporting(progress):
        return _split_model(model, config, data, out, normalize, seed)


def _split_model(model: LoadedModel | str, config: SplitConfig, data: Any, out: str | Path,
                 normalize: str | None, seed: int | None) -> SplitResult:
    from edgepipe.data import splits_for
    from edgepipe.model import classifier_classes
    from edgepipe.rundir import ManifestStep, RunDir

    if data is None:
        raise InputError("Splitting trains the bottleneck, so it needs --data.",
                         hint="give --data builtin:digits, an .npz or an image folder.",
                         reference="split-needs-data")
    loaded = load_model(model) if isinstance(model, str) else model
    splits = splits_for(data, loaded.inputs, num_classes=classifier_classes(loaded),
                        seed=config.training.seed if seed is None else seed,
                        normalize=normalize, tokenizer=loaded.tokenizer_folder)
    result = _train_and_export(loaded, config, splits, out)
    source = str(data) if isinstance(data, (str, Path)) else splits.train.source
    RunDir(out).add_step(ManifestStep("split", {"model": loaded.spec, **config.to_dict(),
                                                "data": source, "seed": splits.seed,
                                                "normalize": normalize}, result.record()))
    return result


def _train_and_export(loaded: LoadedModel, config: SplitConfig, data: Splits,
                      out: str | Path) -> SplitResult:
    from edgepipe.compress import checkpoint

    parts = build_split(loaded, config)
    name = loaded.inputs[0].name
    train_x = data.train.inputs[name]
    trained = [parts.head, parts.bottleneck, parts.tail]
    kept = checkpoint.folder(Path(out)) / ("split-" + checkpoint.fingerprint(
        parts.module, {"at": config.at, "bottleneck": config.bottleneck, "bits": config.bits,
                       "stride": config.stride, **config.training.to_dict(),
                       **({"entropy": True, "rate_weight": config.rate_weight,
                           "target_bytes": config.target_bytes} if config.entropy else {})},
        train_x, data.train.labels) + ".pt")
    record = checkpoint.load(kept, trained)
    if record is None:
        record = train_split(parts.module, parts.original_head, parts.head,
                             parts.bottleneck, parts.tail, train_x, data.train.labels,
                             config.training, rate_weight=config.rate_weight,
                             target_bytes=config.target_bytes)
        checkpoint.save(kept, trained, record)
    try:
        result = _measure_and_export(loaded, config, data, out, parts, record)
    except EdgepipeError as exc:
        exc.hint = (exc.hint or "") + checkpoint.kept_hint([kept])
        raise
    except Exception:
        log.error(checkpoint.kept_hint([kept]).strip())
        raise
    checkpoint.discard([kept])
    return result


def _measure_and_export(loaded: LoadedModel, config: SplitConfig, data: Splits,
                        out: str | Path, parts: SplitParts,
                        record: dict[str, Any]) -> SplitResult:
    from edgepipe.export.api import export_model
    from edgepipe.export.config import ExportConfig

    name = loaded.inputs[0].name
    device_head = DeviceHead(parts.head, parts.bottleneck).eval()
    server_tail = ServerTail(parts.bottleneck, parts.tail).eval()
    x, labels = data.eval.inputs[name], data.eval.labels
    with torch.no_grad():
        codes = device_head(torch.from_numpy(x)).numpy()
    original_logits = _predict(parts.module, x)
    split_logits = _predict(server_tail, codes)
    classifier = classifier_index(original_logits, labels)
    # predictions to agree on: the classifier output, else the first (N, classes) one
    scores = classifier if classifier is not None else next(
        (i for i, o in enumerate(original_logits) if o.ndim == 2 and o.shape[1] > 1), None)
    point = parts.point
    wire = wire_bytes(codes, config.bits).to_dict()
    input_bytes = int(np.prod(x.shape[1:]))  # as uint8 pixels
    raw_float = int(np.prod(point.shape[1:])) * 4
    out = Path(out)
    head_spec = LoadedModel(spec="head", kind="torch", inputs=loaded.inputs, module=device_head)
    code_spec = TensorSpec("codes", (1, *codes.shape[1:]), "int8")
    tail_spec = LoadedModel(spec="tail", kind="torch", inputs=[code_spec], module=server_tail)
    # A code at an exact .5 boundary may round either way in another runtime: one level
    # (the codes sit near -128, so 1/100 of their magnitude is a little over one level).
    heads = export_model(head_spec, out, ExportConfig(formats=config.formats, atol=1.0 / 100),
                         preprocessing=data.preprocessing)  # the head takes the data
    # the server batches: a dynamic batch where the format allows it (ONNX, OpenVINO)
    tails = export_model(tail_spec, out, ExportConfig(formats=config.formats,
                                                      dynamic_batch=True))
    suffixes = {fmt: formats.suffix(fmt) for fmt in config.formats}
    checks = {fmt: check_end_to_end(out / f"head{suffixes[fmt]}", out / f"tail{suffixes[fmt]}",
                                    x, split_logits)
              for fmt in config.formats if (out / f"head{suffixes[fmt]}").is_file()
              and (out / f"tail{suffixes[fmt]}").is_file()}

    entropy = None
    if config.entropy:
        entropy = entropy_round_trip(parts.bottleneck, server_tail, codes, split_logits, out)
        entropy["rate"] = record["head_distillation"].get("rate")
    if config.int8_head:
        int8 = int8_head(device_head, loaded.inputs, data.calib.inputs[name], out)
        tail_path = next((out / f"tail{suffixes[f]}" for f in config.formats
                          if (out / f"tail{suffixes[f]}").is_file()), None)
        if tail_path is not None:
            check = check_end_to_end(int8, tail_path, x, split_logits)
            check["runtime"] = "int8_head"  # head.int8.tflite in LiteRT, then the tail
            checks["int8-head"] = check
    return SplitResult(
        cut=point.to_dict(), config={"at": config.at, "bottleneck": config.bottleneck,
                                     "bits": config.bits, "stride": config.stride,
                                     "int8_head": config.int8_head,
                                     **({"entropy": True} if config.entropy else {})},
        training=record,
        accuracy={"original": _accuracy(original_logits, labels, classifier),
                     "split_torch": _accuracy(split_logits, labels, classifier),
                     **{f"split_{check['runtime']}": _accuracy(check["logits"], labels,
                                                                classifier)
                        for check in checks.values()},
                     "agreement_with_original": None if scores is None else float(
                         (original_logits[scores].argmax(1)
                          == split_logits[scores].argmax(1)).mean()),
                     "samples": int(len(x)), "split": "eval",
                     **({} if classifier is not None else {
                         "metric": "every output against the original model (top-1 does not "
                         "apply: " + ("no labels" if labels is None else "the labels fit no "
                                      "(N, classes) output") + ")",
                         "vs_original": {"split_torch": _versus(split_logits, original_logits),
                                         **{f"split_{c['runtime']}": _versus(c["logits"],
                                                                             original_logits)
                                            for c in checks.values()}}})},
        wire={"tensor": "codes", "dtype": "int8", "shape": [1, *codes.shape[1:]],
              "scale": float(parts.bottleneck.quantizer.scale.detach().reshape(-1)[0]),
              "zero_point": -128,
              "meaning": "value = (code - zero_point) * scale, then the decoder",
              **({} if entropy is None else {"entropy": entropy["wire"]})},
        bytes_per_sample={**wire, "input_uint8": input_bytes, "raw_float_at_cut": raw_float,
                          "raw_uint8_at_cut": raw_float // 4,
                          "vs_input": wire["packed_bytes"] / input_bytes,
                          "vs_raw_float": wire["packed_bytes"] / raw_float,
                          **({} if entropy is None else {
                              k: entropy[k] for k in ("bitstream_bytes_mean",
                                                      "bitstream_bytes_p95")})},
        end_to_end={fmt: {k: v for k, v in check.items() if k != "logits"}
                    for fmt, check in checks.items()},
        artifacts=[*heads.artifacts, *tails.artifacts],
        failed=[*heads.failed, *tails.failed],
        entropy=None if entropy is None else {k: v for k, v in entropy.items() if k != "wire"},
    )


def entropy_round_trip(bottleneck: Bottleneck, server_tail: torch.nn.Module,
                       codes: np.ndarray, split_logits: list[np.ndarray],
                       out: Path) -> dict[str, Any]:
    """The integer tables from the trained density, written to ``OUT/entropy.npz``; every
    eval sample's codes range-coded and decoded (bytes, times, exactness), and the tail's
    prediction from the decoded codes against the split model's in torch."""
    from edgepipe.rundir import RunDir
    from edgepipe.split.entropy import (
        HEADER_BYTES,
        PRECISION,
        TABLES_FILE,
        CodeTables,
        EntropyCoder,
        entropy_stats,
    )

    assert bottleneck.density is not None
    tables = CodeTables.from_probabilities(bottleneck.density.probabilities())
    with RunDir(out).stage(TABLES_FILE) as staged, open(staged, "wb") as handle:
        tables.save(handle)
    coder = EntropyCoder(CodeTables.load(out / TABLES_FILE), codes.shape[1:])
    unsigned = (codes.astype(np.int16) + 128).astype(np.uint8)
    stats = entropy_stats(coder, unsigned)
    decoded = np.stack([coder.decode(coder.encode(c)) for c in unsigned])
    logits = _predict(server_tail, (decoded.astype(np.int16) - 128).astype(np.int8))
    classifier = next((i for i, o in enumerate(split_logits) if o.ndim == 2 and o.shape[1] > 1),
                      None)
    stats["tail_from_bitstreams"] = {
        "prediction_agreement_with_torch": None if classifier is None else float(
            (logits[classifier].argmax(1) == split_logits[classifier].argmax(1)).mean()),
        "max_abs_logit_diff": max(float(np.abs(a - b).max())
                                  for a, b in zip(logits, split_logits, strict=True))}
    stats["wire"] = {"tables": TABLES_FILE, "precision": PRECISION,
                     "tables_digest": f"{tables.digest:08x}", "header_bytes": HEADER_BYTES,
                     "symbols": "code - zero_point (0 .. 2^bits - 1)",
                     "format": "per sample: format byte 0xE0 + version (2), payload bytes "
                               "(LEB128), CRC32 of the payload seeded with the tables' digest "
                               "and the code shape, then the range coder's 32-bit words "
                               "(little-endian, trailing zero bytes left out); a batch is the "
                               "samples' bitstreams one after the other"}
    return stats


def check_end_to_end(head: Path, tail: Path, x: np.ndarray,
                     torch_logits: list[np.ndarray]) -> dict[str, Any]:
    """head -> 8-bit codes -> tail in the artifacts' own runtime, sample by sample, against
    the split model in torch (every output; agreement on the first (N, classes) one)."""
    from edgepipe.runtime import open_artifact

    head_session, tail_session = open_artifact(head), open_artifact(tail)
    runs = [tail_session.run(head_session.run([x[i:i + 1]])) for i in range(len(x))]
    logits = [np.concatenate(parts) for parts in zip(*runs, strict=True)]
    classifier = next((i for i, o in enumerate(torch_logits) if o.ndim == 2 and o.shape[1] > 1),
                      None)
    agree = None if classifier is None else float(
        (logits[classifier].argmax(1) == torch_logits[classifier].argmax(1)).mean())
    return {"runtime": head_session.name, "tail_runtime": tail_session.name,
            "prediction_agreement_with_torch": agree,
            "max_abs_logit_diff": max(float(np.abs(a.reshape(b.shape) - b).max())
                                      for a, b in zip(logits, torch_logits, strict=True)),
            "logits": logits}


def int8_head(device_head: torch.nn.Module, inputs: list[TensorSpec], calibration: np.ndarray,
              out: Path) -> Path:
    """``head.int8.tflite``: the head quantized to int8 with litert-torch's PT2E quantizer,
    calibrated on the calibration split; the codes stay int8 at its output."""
    from edgepipe.compress.base import CompressJob
    from edgepipe.compress.config import make_config
    from edgepipe.compress.int8.litert import compress
    from edgepipe.rundir import RunDir

    path = out / "head.int8.tflite"
    source = LoadedModel(spec="head", kind="torch", inputs=inputs, module=device_head)
    with RunDir(out).stage(path.name) as staged:
        compress(CompressJob(source=source, config=make_config("int8", formats=("tflite",)),
                             fmt="tflite", float_path=staged, path=staged,
                             calibration=[calibration[:256]]))
    return path
