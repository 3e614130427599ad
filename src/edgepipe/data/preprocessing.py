"""How data was prepared for a model: the :class:`Preprocessing` an artifact's record keeps.

Derived from the DATA spec and the options actually used when the data was loaded
(:func:`edgepipe.data.load_data` sets ``Dataset.preprocessing``); export, compress and split
write it into ``manifest.json`` with each artifact, and ``eval``, ``profile`` and ``split run``
prepare their data the same way unless told otherwise (:func:`choose_normalize`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from edgepipe.documents import Document

log = logging.getLogger("edgepipe")

# The inputs a model saw, per channel: x = (raw * scale - mean) / std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PIXEL_MAX = 255.0  # 8-bit image files
DIGITS_MAX = 16.0  # scikit-learn's digits hold 0..16


@dataclass(frozen=True)
class Preprocessing(Document):
    """How the data given to the model was prepared: each value is ``(raw * scale - mean) /
    std`` per channel, images read with ``channel_order``, resized to ``resize`` and laid out
    as ``layout``; ``labels`` name the classes by index.

    ``normalize`` is the ``--normalize`` choice that made it (none, unit, imagenet); None for
    arrays taken as stored (an .npz, arrays from Python), which edgepipe does not rescale.
    """

    source: str  # the DATA spec (a folder, builtin:digits, data.npz) or "arrays"
    normalize: str | None
    scale: float | None = None  # raw values times this (1/255 for 8-bit images in 0..1)
    mean: list[float] | None = None  # per channel, after scaling (imagenet)
    std: list[float] | None = None
    layout: str | None = None  # NCHW or NHWC for images; None for feature vectors
    resize: list[int] | None = None  # [height, width] images were resized to
    channel_order: str | None = None  # RGB, BGR or gray
    labels: list[str] | None = None  # class names, by label index
    # text (edgepipe.data.text): the folder of the tokenizer and the fixed token length
    tokenizer: str | None = None
    sequence_length: int | None = None

    @classmethod
    def of_images(cls, source: str, normalize: str, *, maximum: float, layout: str | None,
                  resize: tuple[int, int] | None, channel_order: str,
                  labels: list[str] | None) -> Preprocessing:
        """Images (or the built-in digits) read with ``--normalize normalize``: raw values run
        0..``maximum``."""
        imagenet = normalize == "imagenet"
        return cls(source=source, normalize=normalize,
                   scale=1.0 if normalize == "none" else 1.0 / maximum,
                   mean=list(IMAGENET_MEAN) if imagenet else None,
                   std=list(IMAGENET_STD) if imagenet else None,
                   layout=layout, resize=None if resize is None else list(resize),
                   channel_order=channel_order, labels=labels)

    @classmethod
    def as_stored(cls, source: str, labels: list[str] | None = None) -> Preprocessing:
        """Arrays used as they are (an .npz, arrays from Python)."""
        return cls(source=source, normalize=None, labels=labels)

    def with_layout(self, layout: str | None) -> Preprocessing:
        """The same preparation for an artifact whose input takes ``layout`` (an NHWC
        TFLite export of an NCHW model); other layouts leave it as it is."""
        if self.layout is None or layout not in ("NCHW", "NHWC"):
            return self
        return dataclasses.replace(self, layout=layout)

    def describe(self) -> str:
        """One line for people: ``unit (x / 255), RGB, resized to 32x32, NCHW``."""
        if self.tokenizer is not None:
            return (f"text tokenized with {self.tokenizer}, padded or truncated to "
                    f"{self.sequence_length} tokens")
        if self.normalize is None:
            return "arrays as stored"
        scaling = {"none": "values as stored", "unit": "0..1",
                   "imagenet": "0..1 then ImageNet mean/std"}.get(self.normalize, self.normalize)
        parts = [f"{self.normalize} ({scaling})"]
        parts += [p for p in (self.channel_order, self.resize and
                              f"resized to {self.resize[0]}x{self.resize[1]}", self.layout) if p]
        return ", ".join(parts)


def choose_normalize(recorded: Preprocessing | None, explicit: str | None,
                     what: str) -> str | None:
    """The ``--normalize`` to load data with for ``what`` (an artifact): ``explicit`` when
    given (with a warning on stderr when it differs from the recorded one), else the
    recorded one, else None (the loader's default)."""
    kept = recorded.normalize if recorded else None
    if explicit is None:
        if kept is not None:
            log.debug("%s: data prepared as recorded in manifest.json: %s", what,
                      recorded.describe() if recorded else kept)
        return kept
    if kept is not None and explicit != kept:
        log.warning("%s was made with --normalize %s (manifest.json: %s); --normalize %s "
                    "prepares the data differently, so its metric may not be comparable.",
                    what, kept, recorded.describe() if recorded else kept, explicit)
    return explicit


def check_labels_match(recorded: Preprocessing | None, names: list[str] | None,
                       what: str) -> None:
    """Warn on stderr when the data's class names differ from those ``what`` was made with
    (a class folder missing or added changes every label after it)."""
    if recorded is None or not recorded.labels or not names or list(names) == recorded.labels:
        return
    log.warning("The data's classes (%s) differ from those %s was made with (%s); labels are "
                "class indices, so top-1 compares different classes.",
                _short(names), what, _short(recorded.labels))


def _short(names: list[str]) -> str:
    return ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
