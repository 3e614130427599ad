"""Text DATA: ``texts.txt`` (one sample per line) or ``texts.tsv`` (``label<TAB>text`` per
line), tokenized for a model with the tokenizer of its Hugging Face folder.

The seam: a text file cannot become arrays without the model's tokenizer and sequence
length, so the data loaders take them as options: ``tokenizer`` (a folder that
``AutoTokenizer`` reads, offline) and the model's input specs (the sequence length is the
second dimension of its ``input_ids``). The verbs that hold a loaded model pass its
``LoadedModel.tokenizer_folder`` (set by ``hf:FOLDER`` specs); ``eval`` of an artifact takes
the folder from the artifact's ``manifest.json`` (its recorded preprocessing, else its
source's ``hf:`` spec).

Every text is padded and truncated to the model's fixed sequence length; texts longer than
it are truncated with one warning on stderr that counts them; empty lines are skipped and
counted. The arrays are int64, one per model input the tokenizer makes (``input_ids``,
``attention_mask``, ``token_type_ids``). Labels of a ``.tsv`` are class indices, or class
names that the folder's ``config.json`` maps (``label2id``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.data.dataset import Dataset
from edgepipe.data.preprocessing import Preprocessing
from edgepipe.errors import DataError, first_line
from edgepipe.tensors import TensorSpec

log = logging.getLogger("edgepipe")

TEXT_SUFFIXES = (".txt", ".tsv")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "tokenizer.model", "spiece.model", "sentencepiece.bpe.model")
_TOKENIZER_HINT = ("save the tokenizer into the model folder with "
                   "tokenizer.save_pretrained(FOLDER) (it writes tokenizer.json and "
                   "tokenizer_config.json), or download the folder with its tokenizer files.")


def is_text_spec(spec: str | Path) -> bool:
    return Path(str(spec).strip()).suffix.lower() in TEXT_SUFFIXES


def read_texts(path: Path, tokenizer: str | Path | None,
               inputs: Sequence[TensorSpec] | None) -> Dataset:
    """``path`` (.txt or .tsv) tokenized with the tokenizer in the folder ``tokenizer`` for a
    model with these ``inputs`` (see the module docstring)."""
    if tokenizer is None:
        raise DataError(
            f"'{path}' is text, and text needs the model's tokenizer; this model has none "
            "that edgepipe knows of.",
            hint="text data works with hf:FOLDER models whose folder holds a tokenizer; for "
            "other models give arrays in a .npz (numpy.savez(path, input_ids=..., "
            "attention_mask=..., y=...)).",
            reference="text-needs-tokenizer")
    specs = list(inputs or [])
    ids = next((s for s in specs if s.name == "input_ids"), None)
    if ids is None or ids.rank != 2 or not isinstance(ids.shape[1], int):
        names = ", ".join(s.name for s in specs) or "none"
        raise DataError(
            f"Text data needs a model input 'input_ids' of shape 1 x SEQ (a fixed length); "
            f"the model's inputs are {names}.",
            hint="text fills inputs named input_ids, attention_mask (token_type_ids) of a "
            "fixed length: an hf:FOLDER text model, or an artifact exported from one with "
            "its manifest.json beside it (a .tflite's args_0... and a .pte's inputs are "
            "matched by position); otherwise give the tokens as a .npz under its names.",
            reference="text-needs-tokenizer")
    length = int(ids.shape[1])
    texts, labels, skipped = _read_lines(path, Path(tokenizer))
    if not texts:
        raise DataError(f"'{path}' has no text (its {skipped} lines are empty).",
                        hint="write one sample per line (label<TAB>text in a .tsv).",
                        reference="data-empty")
    if skipped:
        log.warning("%s: skipped %d empty line(s).", path, skipped)
    encoder = load_tokenizer(Path(tokenizer))
    lengths = [len(t) for t in encoder(texts, truncation=False)["input_ids"]]
    longer = sum(n > length for n in lengths)
    if longer:
        log.warning("%s: %d of %d texts are longer than the model's %d tokens and were "
                    "truncated.", path, longer, len(texts), length)
    encoded = encoder(texts, padding="max_length", truncation=True, max_length=length,
                      return_tensors="np")
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.name not in encoded:
            raise DataError(
                f"The tokenizer in '{tokenizer}' makes {', '.join(encoded)}; the model also "
                f"takes {spec.name!r}.",
                hint="use the tokenizer the model was trained with (in its folder).",
                reference="data-inputs-mismatch")
        arrays[spec.name] = np.asarray(encoded[spec.name], dtype=np.int64)
    source = str(path)
    prepared = Preprocessing(source=source, normalize=None,
                             tokenizer=str(Path(tokenizer).resolve()), sequence_length=length)
    return Dataset(arrays, None if labels is None else np.asarray(labels, dtype=np.int64),
                   source=source, preprocessing=prepared)


def load_tokenizer(folder: Path) -> Any:
    """``AutoTokenizer`` of ``folder``, offline and without remote code."""
    if not any((folder / n).is_file() for n in TOKENIZER_FILES):
        raise DataError(
            f"The model folder '{folder}' has no tokenizer (none of "
            f"{', '.join(TOKENIZER_FILES[:3])}), so text data cannot be tokenized for it.",
            hint=_TOKENIZER_HINT, reference="hf-no-tokenizer")
    try:
        with hf_offline():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                 trust_remote_code=False)
    except Exception as exc:
        raise DataError(
            f"No tokenizer could be loaded from the model folder '{folder}': "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint=_TOKENIZER_HINT, reference="hf-no-tokenizer") from exc


@contextlib.contextmanager
def hf_offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` set while transformers loads from a
    folder (restored after): with ``local_files_only`` as well, nothing reaches for the
    network. Used for the tokenizer here and the model in :mod:`edgepipe.model.hf`."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _read_lines(path: Path, folder: Path) -> tuple[list[str], list[int] | None, int]:
    """The texts of ``path``, their labels (a .tsv) and how many empty lines were skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' is not UTF-8 text: {first_line(exc)}",
                        hint="save the file as UTF-8, one sample per line.",
                        reference="data-unreadable") from exc
    except OSError as exc:
        raise DataError(f"Cannot read '{path}': {first_line(exc)}", hint="check the file.",
                        reference="data-unreadable") from exc
    tsv = path.suffix.lower() == ".tsv"
    label2id = _label2id(folder) if tsv else {}
    texts: list[str] = []
    labels: list[int] = []
    skipped = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            skipped += 1
            continue
        if not tsv:
            texts.append(line)
            continue
        label, tab, text = line.partition("\t")
        if not tab or not text.strip():
            raise DataError(f"Line {number} of '{path}' is not label<TAB>text.",
                            hint="write each line of a .tsv as a label, a tab and the text; "
                            "a .txt file holds texts without labels.",
                            reference="text-bad-label")
        labels.append(_label(label.strip(), label2id, path, number))
        texts.append(text)
    return texts, labels if tsv else None, skipped


def _label(text: str, label2id: dict[str, int], path: Path, number: int) -> int:
    if text in label2id:
        return label2id[text]
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        known = ", ".join(label2id) or "none in config.json"
        raise DataError(
            f"Line {number} of '{path}' has the label {text!r}, which is neither a class "
            f"index (0, 1, ...) nor a class name of the model ({known}).",
            hint="use class indices, or the names in config.json's label2id.",
            reference="text-bad-label")
    return value


def _label2id(folder: Path) -> dict[str, int]:
    try:
        mapping = json.loads((folder / "config.json").read_text()).get("label2id") or {}
        return {str(k): int(v) for k, v in mapping.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
