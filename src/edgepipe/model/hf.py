"""``hf:FOLDER``: a Hugging Face model folder written by ``save_pretrained``, loaded with
``transformers`` from that folder only (never the network, never remote code).

The folder holds ``config.json`` and its weights: ``model.safetensors`` or sharded
safetensors with ``model.safetensors.index.json``. A folder with only pickled weights
(``pytorch_model.bin``) is refused unless the user passes the pickle trust flag. A hub id
(``hf:bert-base-uncased``) is refused: edgepipe does not download; the hint says how to get
the folder.

The model is wrapped (:class:`HFForward`) so that its forward takes its input tensors
positionally and returns plain tensors (``logits``, else ``last_hidden_state``), with the
KV cache off and eager attention, which torch.export and the ONNX exporter can trace. Its
inputs come from the config:

- encoder text models (BERT, MiniLM, DistilBERT, RoBERTa and their kin, ``...Model`` or
  ``...ForSequenceClassification``): ``input_ids`` and ``attention_mask`` (and
  ``token_type_ids`` where the forward takes them and ``type_vocab_size`` > 1), int64
  ``1 x SEQ`` with SEQ = min(128, ``max_position_embeddings``). The sequence axis is
  dynamic (:class:`~edgepipe.tensors.DynamicAxis` ``sequence``, 1 to
  ``max_position_embeddings``) in the formats whose exporters take dynamic shapes (ONNX,
  OpenVINO, ExecuTorch) and fixed at SEQ in TFLite; SEQ is the length samples, calibration
  and profiling use. ``--input input_ids:1x32:int64`` (once per input) fixes every format
  at another length instead.
- vision models taking ``pixel_values`` (ViT and kin): float32 ``1 x num_channels x
  image_size x image_size``.
- Whisper: ``WhisperForAudioClassification``, or the encoder of ``WhisperModel`` /
  ``WhisperForConditionalGeneration`` (the decoder needs generation and is left out):
  ``input_features`` float32 ``1 x num_mel_bins x 2 max_source_positions`` (3000).

Tested with BertModel, BertForSequenceClassification, ViTForImageClassification and
WhisperForAudioClassification; other architectures whose forward takes these inputs
may work. Decoders (GPT-style generation), encoder-decoders other than Whisper's encoder
and models needing ``trust_remote_code`` are not supported.

The tokenizer in the folder (``AutoTokenizer``) is what text DATA (``texts.txt``) is
tokenized with: :attr:`LoadedModel.tokenizer_folder` names the folder, which the data
loaders receive (see :mod:`edgepipe.data.text`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from edgepipe.data.text import hf_offline
from edgepipe.errors import ModelError, UnsafePickleError, first_line
from edgepipe.model.loaded import TRUST_FLAG, LoadedModel, merge_inputs
from edgepipe.tensors import DynamicAxis, TensorSpec

PREFIX = "hf:"
DEFAULT_SEQUENCE = 128
SEQUENCE = "sequence"  # the name of the token inputs' dynamic dimension in every format
WHISPER_FRAMES = 3000  # 30 s of audio at 100 mel frames a second: what Whisper's encoder takes
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_WHISPER_ENCODER_ONLY = ("WhisperModel", "WhisperForConditionalGeneration")
DOWNLOAD_HINT = ("edgepipe does not download models: on a machine with network, run "
                 "`huggingface-cli download ID --local-dir DIR` (or save_pretrained(DIR)) and "
                 "pass hf:DIR, the folder holding config.json and model.safetensors.")


def hf_folder(spec: str) -> Path:
    """The folder of an ``hf:`` spec, checked to exist (a hub id is refused)."""
    text = spec[len(PREFIX):].strip()
    path = Path(text).expanduser()
    if not text or not path.is_dir():
        what = ("is empty" if not text else "is a file, not a folder" if path.is_file() else
                "is not an existing folder (a hub id is not downloaded)")
        raise ModelError(f"The Hugging Face model '{spec}' {what}.", hint=DOWNLOAD_HINT,
                         reference="hf-not-a-folder")
    return path


def load_hf(spec: str, inputs: list[TensorSpec] | None, trust_pickle: bool) -> LoadedModel:
    """Load ``hf:FOLDER`` (see the module docstring) into a wrapped torch module."""
    folder = hf_folder(spec)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(
            f"'{folder}' has no config.json, so it is not a Hugging Face model folder.",
            hint="save the model with model.save_pretrained(DIR) (it writes config.json and "
            "model.safetensors), or " + DOWNLOAD_HINT.split(": ", 1)[1],
            reference="hf-no-config")
    weights = _weight_files(folder, trust_pickle)
    with hf_offline():
        model = _from_pretrained(folder, weights, trust_pickle)
    config = model.config
    if hasattr(config, "use_cache"):
        config.use_cache = False
    architecture = type(model).__name__
    if architecture in _WHISPER_ENCODER_ONLY:
        model = model.get_encoder()
    graph_inputs = _config_inputs(model, config, architecture)
    # the batch and sequence axes of token inputs are the user's to choose (--input)
    flexible = [TensorSpec(s.name, ("batch", "sequence"), s.dtype)
                if s.dtype == "int64" and s.rank == 2 else s for s in graph_inputs]
    resolved = merge_inputs(flexible, inputs, source="the model's config") if inputs \
        else graph_inputs
    module = HFForward(model, [s.name for s in resolved])
    module.eval()
    limits = _value_limits(config, resolved)
    # the token inputs' sequence axis stays dynamic in the formats that can (up to the
    # model's position table) unless --input fixed the shapes
    axes = [] if inputs else _sequence_axis(config, resolved)
    return LoadedModel(
        spec=spec, kind="torch", inputs=resolved, module=module,
        files=[config_path, *weights],
        options={"source": "hugging face folder", "architecture": architecture,
                 "folder": str(folder.resolve()), "value_limits": limits,
                 **({"dynamic_axes": [a.to_dict() for a in axes]} if axes else {}),
                 **({"trust_pickle": True} if weights[0].suffix == ".bin" else {})},
        tokenizer_folder=folder.resolve(), value_limits=limits, dynamic_axes=axes)


def _sequence_axis(config: Any, inputs: list[TensorSpec]) -> list[DynamicAxis]:
    """The sequence axis of the token inputs (``1 x SEQ`` int64), dynamic from 1 to
    ``max_position_embeddings``; none for a model without token inputs."""
    tokens = [s for s in inputs if s.dtype == "int64" and s.rank == 2 and s.is_static]
    if not tokens:
        return []
    size = int(tokens[0].shape[1])
    positions = int(getattr(config, "max_position_embeddings", size) or size)
    return [DynamicAxis(SEQUENCE, 1, tuple(s.name for s in tokens), size, max(size, positions))]


def _weight_files(folder: Path, trust_pickle: bool) -> list[Path]:
    """The weight files of ``folder`` (safetensors first), checked; pickled ones only
    with the trust flag."""
    from edgepipe.model.files import validate_artifact

    for name in SAFE_WEIGHTS:
        if (folder / name).is_file():
            files = _with_shards(folder, name)
            for file in files:
                if file.suffix == ".safetensors":
                    validate_artifact(file)
            return files
    pickled = [folder / n for n in PICKLED_WEIGHTS if (folder / n).is_file()]
    if pickled:
        if not trust_pickle:
            raise UnsafePickleError(
                f"'{folder}' holds its weights only as {pickled[0].name}, a pickle; loading "
                "it could run code stored in the file, so edgepipe refuses it.",
                hint=f"if you trust the file, pass {TRUST_FLAG}; better, convert it once with "
                "model.save_pretrained(DIR, safe_serialization=True), which writes "
                "model.safetensors.")
        return _with_shards(folder, pickled[0].name)
    raise ModelError(
        f"'{folder}' has config.json but no weights (model.safetensors, sharded safetensors "
        "with model.safetensors.index.json, or pytorch_model.bin).",
        hint="save the model with model.save_pretrained(DIR), or download the weights too.",
        reference="hf-no-weights")


def _with_shards(folder: Path, name: str) -> list[Path]:
    """``name`` and, for an index, the shard files it names (each must be in ``folder``)."""
    path = folder / name
    if not name.endswith(".index.json"):
        return [path]
    try:
        weight_map = json.loads(path.read_text())["weight_map"]
        shards = sorted({str(v) for v in weight_map.values()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"'{path}' is not a readable shard index: {first_line(exc)}",
                         hint="save the model again with model.save_pretrained(DIR).",
                         reference="hf-no-weights") from exc
    files = [folder / s for s in shards]
    missing = [s for s, f in zip(shards, files, strict=True)
               if Path(s).name != s or not f.is_file()]
    if missing:
        raise ModelError(f"'{path}' names shards that are not in '{folder}': "
                         f"{', '.join(missing[:4])}.",
                         hint="download or copy every shard into the folder.",
                         reference="hf-no-weights")
    return [path, *files]


def _from_pretrained(folder: Path, weights: list[Path], trust_pickle: bool) -> Any:
    """The model of ``folder``: the transformers class its config names (a class transformers
    itself defines; no remote code), else ``AutoModel``."""
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise ModelError(
            f"transformers cannot read the config of '{folder}': {first_line(exc)}",
            hint="edgepipe loads architectures that transformers "
            f"{transformers.__version__} defines, without trust_remote_code; check config.json.",
            reference="hf-load-failed") from exc
    names = list(getattr(config, "architectures", None) or [])
    cls = next((getattr(transformers, n) for n in names
                if isinstance(getattr(transformers, n, None), type)), transformers.AutoModel)
    safe = weights[0].suffix != ".bin"
    try:
        with _quiet_transformers():
            return cls.from_pretrained(
                str(folder), config=config, local_files_only=True, trust_remote_code=False,
                attn_implementation="eager", use_safetensors=safe)
    except Exception as exc:
        raise ModelError(
            f"transformers could not load {cls.__name__} from '{folder}': "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="check that the weights match config.json (save both with "
            "save_pretrained); --debug shows the traceback.",
            reference="hf-load-failed") from exc


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' weight-loading bar and its notes on the config (``loss_type``) kept off
    stderr while a model loads, unless edgepipe logs at debug level (``-v``); its settings
    are restored after."""
    import logging

    from transformers.utils import logging as hf_logging

    if logging.getLogger("edgepipe").isEnabledFor(logging.DEBUG):
        yield
        return
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _config_inputs(model: Any, config: Any, architecture: str) -> list[TensorSpec]:
    """The input specs the model's config implies (see the module docstring)."""
    import inspect

    main = getattr(model, "main_input_name", "input_ids")
    if main == "pixel_values":
        size = getattr(config, "image_size", 224)
        height, width = (size, size) if isinstance(size, int) else tuple(size)[:2]
        return [TensorSpec("pixel_values",
                           (1, int(getattr(config, "num_channels", 3)), int(height), int(width)),
                           "float32")]
    if main == "input_features":
        # the encoder's two convolutions halve the frames to max_source_positions (1500 in
        # every released Whisper: 3000 frames, 30 s of audio)
        positions = getattr(config, "max_source_positions", None)
        frames = 2 * int(positions) if positions else WHISPER_FRAMES
        return [TensorSpec("input_features",
                           (1, int(getattr(config, "num_mel_bins", 80)), frames), "float32")]
    if main != "input_ids":
        raise ModelError(
            f"{architecture} takes {main!r} as its main input; edgepipe does not know that "
            "input's shape from the config.",
            hint="supported: text encoders (input_ids), vision models (pixel_values) and "
            "Whisper's encoder (input_features).",
            reference="hf-unsupported")
    if getattr(config, "is_encoder_decoder", False) or getattr(config, "is_decoder", False):
        raise ModelError(
            f"{architecture} is a decoder or encoder-decoder model; edgepipe exports "
            "encoders only so far.",
            hint="supported: text encoders (BERT, MiniLM, DistilBERT, RoBERTa), vision "
            "models (ViT) and Whisper's encoder.",
            reference="hf-unsupported")
    positions = int(getattr(config, "max_position_embeddings", DEFAULT_SEQUENCE) or
                    DEFAULT_SEQUENCE)
    sequence = min(DEFAULT_SEQUENCE, positions)
    accepted = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in accepted and int(getattr(config, "type_vocab_size", 0) or 0) > 1:
        names.append("token_type_ids")
    return [TensorSpec(n, (1, sequence), "int64") for n in names if n in accepted]


def _value_limits(config: Any, inputs: list[TensorSpec]) -> dict[str, int]:
    """The ranges of the integer inputs: token ids below the vocabulary size, a mask of 0/1,
    token types below ``type_vocab_size``."""
    limits = {"input_ids": getattr(config, "vocab_size", None), "attention_mask": 2,
              "token_type_ids": getattr(config, "type_vocab_size", None)}
    return {s.name: int(limits[s.name]) for s in inputs
            if s.name in limits and limits[s.name]}


class HFForward(torch.nn.Module):
    """A transformers model with a plain forward: ``forward(*tensors)`` passes the tensors
    to the model by name (``names``) with ``return_dict=True`` and returns the ``logits``
    (else ``last_hidden_state``) as one tensor, which the exporters trace."""

    def __init__(self, model: Any, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        output = self.model(**dict(zip(self.names, tensors, strict=True)), return_dict=True)
        for key in ("logits", "last_hidden_state"):
            value = getattr(output, key, None)
            if value is not None:
                return value
        return output[0]
