"""Input-codec baselines: send the input as an image file and run the whole model on the server.

The eval samples, as the model sees them, are turned back into 8-bit images with the
recorded :class:`~edgepipe.data.preprocessing.Preprocessing` (grayscale or RGB; three equal
channels go as one gray channel), encoded with Pillow (PNG, lossless, optimized; JPEG at
quality 5..95; WebP at quality 5..100, or lossless), decoded, prepared again as the model
takes them and run through the float model. Everything is measured on those samples: bytes
per sample from the encoded files (mean, p95, max), top-1 on the labels and agreement with
the model's prediction on the uncompressed input, and the encode (device) and decode
(server) time per sample on this machine. On a catalog device the encode time is estimated
from the one measured here (see :func:`scale_to`), and labelled so.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgepipe.data.preprocessing import DIGITS_MAX, PIXEL_MAX, Preprocessing
from edgepipe.errors import InputError

CODECS = ("png", "jpeg", "webp")
# the qualities Pillow takes for each lossy codec (JPEG above 95 only grows the file)
QUALITY_RANGE = {"jpeg": (5, 95), "webp": (5, 100)}
PLAN_QUALITIES = (10, 30, 50, 70, 90)  # split plan's grid unless --quality is given
FULL_QUALITIES = {"jpeg": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
                  "webp": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)}
ACCURACY_SLACK = 1.0  # top-1 points a coded input may lose and still count as an option


@dataclass(frozen=True)
class Setting:
    """One codec at one quality: ``png``, ``jpeg`` q, ``webp`` q, or ``webp`` lossless
    (``quality`` None)."""

    codec: str
    quality: int | None = None

    @property
    def name(self) -> str:
        """``PNG``, ``JPEG q=50``, ``WebP q=50``, ``WebP lossless``."""
        title = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP"}[self.codec]
        if self.codec == "png":
            return title
        return f"{title} lossless" if self.quality is None else f"{title} q={self.quality}"

    @property
    def lossless(self) -> bool:
        return self.codec == "png" or self.quality is None

    def encode(self, pixels: np.ndarray, mode: str) -> bytes:
        from PIL import Image

        image = Image.fromarray(pixels)  # H x W: L, H x W x 3: RGB
        if image.mode != mode:
            raise ValueError(f"{pixels.shape} pixels make a {image.mode} image, not {mode}")
        buffer = io.BytesIO()
        if self.codec == "png":
            image.save(buffer, format="PNG", optimize=True)
        elif self.codec == "jpeg":
            image.save(buffer, format="JPEG", quality=self.quality)
        elif self.quality is None:
            image.save(buffer, format="WEBP", lossless=True)
        else:
            image.save(buffer, format="WEBP", quality=self.quality)
        return buffer.getvalue()


def decode(data: bytes, mode: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert(mode))


def check_quality(codec: str, quality: int) -> int:
    """``quality`` if ``codec`` takes it, else an InputError naming the range."""
    low, high = QUALITY_RANGE[codec]
    if not low <= quality <= high:
        raise InputError(f"--quality {quality} is out of range for {codec}: it takes "
                         f"{low} to {high}.",
                         hint=f"give qualities from {low} to {high} (e.g. --quality 50); PNG "
                              "is lossless and takes none.", reference="bad-codec-quality")
    return quality


def settings_for(codecs: list[str], qualities: list[int] | None = None, *,
                 full: bool = False) -> list[Setting]:
    """The settings measured: PNG once; JPEG and WebP at each quality (``qualities``, else
    :data:`PLAN_QUALITIES`, or every quality of :data:`FULL_QUALITIES` with ``full``);
    WebP lossless too."""
    chosen = []
    for codec in dict.fromkeys(c.strip().lower() for c in codecs):
        if codec not in CODECS:
            raise InputError(f"Unknown input codec {codec!r}.",
                             hint=f"use {', '.join(CODECS)} (repeat --codec), or none.",
                             reference="unknown-codec")
        chosen.append(codec)
    settings: list[Setting] = []
    for codec in chosen:
        if codec == "png":
            settings.append(Setting("png"))
            continue
        grid = qualities if qualities else FULL_QUALITIES[codec] if full else PLAN_QUALITIES
        settings += [Setting(codec, check_quality(codec, int(q))) for q in sorted(set(grid))]
        if codec == "webp":
            settings.append(Setting("webp"))
    return settings


@dataclass(frozen=True)
class Pixels:
    """How the model's input maps to 8-bit pixels and back: ``x = (u * gain - mean) / std``
    per channel with ``u = pixel / 255``, or the data's range mapped to 0..255."""

    layout: str  # NCHW or NHWC
    channels: int  # the model's
    mode: str  # the image encoded: L (gray) or RGB
    gain: float
    mean: np.ndarray
    std: np.ndarray
    reversed_channels: bool  # BGR data: encoded as RGB
    how: str

    def to_pixels(self, x: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, H, W, 3) uint8 images of the model's inputs ``x``."""
        hwc = x if self.layout == "NHWC" else np.moveaxis(x, 1, -1)
        unit = (hwc.astype(np.float64) * self.std + self.mean) / self.gain
        pixels = np.clip(np.round(unit * 255.0), 0, 255).astype(np.uint8)
        if self.reversed_channels:
            pixels = pixels[..., ::-1]
        return np.ascontiguousarray(pixels[..., 0] if self.mode == "L" else pixels)

    def from_pixels(self, pixels: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """The model's inputs for (N, H, W[, 3]) uint8 images: the inverse of to_pixels."""
        hwc = pixels[..., None] if pixels.ndim == 3 else pixels
        if self.reversed_channels:
            hwc = hwc[..., ::-1]
        if hwc.shape[-1] != self.channels:
            hwc = np.repeat(hwc, self.channels, axis=-1)
        x = (hwc.astype(np.float64) / 255.0 * self.gain - self.mean) / self.std
        x = x if self.layout == "NHWC" else np.moveaxis(x, -1, 1)
        return np.ascontiguousarray(x.astype(dtype))


def pixels_for(x: np.ndarray, preprocessing: Preprocessing | None) -> Pixels:
    """The 8-bit image behind the model's inputs ``x`` (N first), from how the data was
    prepared; an InputError for anything that is not a gray or RGB image."""
    layout = preprocessing.layout if preprocessing and preprocessing.layout else None
    if x.ndim != 4 or (layout is None and preprocessing is not None
                       and preprocessing.normalize is not None):
        raise InputError(
            f"An image codec needs an image input; this model takes "
            f"{'x'.join(map(str, x.shape[1:]))} values per sample"
            + (" (feature vectors)" if x.ndim == 2 else "") + ".",
            hint="input codecs apply to gray or RGB images (N x C x H x W or N x H x W x C, "
                 "C = 1 or 3); give --codec none, or leave --codec out.",
            reference="codec-needs-image")
    if layout is None:
        layout = "NHWC" if x.shape[3] in (1, 3) and x.shape[1] not in (1, 3) else "NCHW"
    channels = x.shape[1] if layout == "NCHW" else x.shape[3]
    if channels not in (1, 3):
        raise InputError(f"An image codec needs 1 (gray) or 3 (RGB) channels; this input has "
                         f"{channels} ({'x'.join(map(str, x.shape[1:]))}, {layout}).",
                         hint="give --codec none, or leave --codec out.",
                         reference="codec-needs-image")
    ones = np.ones(channels)
    if preprocessing is None or preprocessing.normalize is None:
        low, high = float(x.min()), float(x.max())
        span = max(high - low, 1e-12)
        gain, mean, std = span, -low * ones, ones
        how = (f"no recorded pixel scale (arrays as stored): the data's range [{low:g}, "
               f"{high:g}] mapped to 0..255")
    else:
        maximum = (1.0 / preprocessing.scale if preprocessing.normalize != "none" and
                   preprocessing.scale else DIGITS_MAX
                   if preprocessing.source == "builtin:digits" else PIXEL_MAX)
        gain = maximum * (preprocessing.scale or 1.0)
        mean = np.asarray(preprocessing.mean, dtype=np.float64) if preprocessing.mean else (
            0 * ones)
        std = np.asarray(preprocessing.std, dtype=np.float64) if preprocessing.std else ones
        how = (f"the recorded preprocessing ({preprocessing.describe()}) inverted: values "
               f"0..{maximum:g} as 0..255")
    order = preprocessing.channel_order if preprocessing else None
    base = Pixels(layout, channels, "RGB" if channels == 3 else "L", gain,
                  mean * np.ones(channels), std * np.ones(channels), order == "BGR", how)
    if channels == 3:
        rgb = base.to_pixels(x)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0],
                                                                       rgb[..., 2]):
            return Pixels(layout, channels, "L", gain, base.mean, base.std, False,
                          how + "; the three channels are equal: sent as one gray channel")
    return base


@dataclass
class CodecPoint:
    """One setting, measured on the samples: bytes, accuracy, encode and decode time."""

    option: str  # split plan's row: "all on server (JPEG q=50 input)"
    codec: str
    quality: int | None
    lossless: bool
    bytes_mean: float
    bytes_p95: float
    bytes_max: int
    accuracy: float | None
    agreement: float | None  # with the prediction on the uncompressed input
    encode_s: float  # median per sample, measured here (one Pillow call from Python)
    decode_s: float  # median per sample
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CodecResult:
    """Every setting measured, with the uncompressed and the 8-bit input's accuracy."""

    image: dict[str, Any]  # shape, mode, how the pixels were recovered
    float_accuracy: float | None
    uint8_accuracy: float | None
    uint8_bytes: int
    samples: int
    points: list[CodecPoint] = field(default_factory=list)
    label: str = "measured"

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "points"},
                "points": [p.to_dict() for p in self.points]}

    def within_slack(self, point: CodecPoint) -> bool:
        """Whether ``point`` loses at most :data:`ACCURACY_SLACK` top-1 points against the
        uncompressed input (always, without labels: nothing to hold it to)."""
        if point.accuracy is None or self.float_accuracy is None:
            return True
        return 100 * (self.float_accuracy - point.accuracy) <= ACCURACY_SLACK + 1e-9


def option_name(setting: Setting) -> str:
    return f"all on server ({setting.name} input)"


def predict(module: Any, x: np.ndarray) -> list[np.ndarray]:
    from edgepipe.split.api import _predict

    return _predict(module, x)


def measure_codecs(module: Any, x: np.ndarray, labels: np.ndarray | None,
                   preprocessing: Preprocessing | None,
                   settings: list[Setting]) -> CodecResult:
    """Each setting on the samples ``x`` (as the model sees them) through the torch
    ``module``: see the module docstring."""
    from edgepipe.compress.outputs import classifier_index

    pixels_map = pixels_for(x, preprocessing)
    pixels = pixels_map.to_pixels(x)
    reference = predict(module, x)
    classifier = classifier_index(reference, labels)
    scores = classifier if classifier is not None else next(
        (i for i, o in enumerate(reference) if o.ndim == 2 and o.shape[1] > 1), None)

    def top1(outputs: list[np.ndarray]) -> tuple[float | None, float | None]:
        accuracy = None if classifier is None or labels is None else float(
            (outputs[classifier].argmax(1) == labels).mean())
        agreement = None if scores is None else float(
            (outputs[scores].argmax(1) == reference[scores].argmax(1)).mean())
        return accuracy, agreement

    float_accuracy, _ = top1(reference)
    uint8_accuracy, _ = top1(predict(module, pixels_map.from_pixels(pixels, x.dtype)))
    result = CodecResult(
        image={"shape": list(pixels.shape[1:]), "mode": pixels_map.mode,
               "layout": pixels_map.layout, "how": pixels_map.how},
        float_accuracy=float_accuracy, uint8_accuracy=uint8_accuracy,
        uint8_bytes=int(np.prod(x.shape[1:])), samples=int(len(x)))
    for setting in settings:
        encoded, encode_s, decode_s, decoded = [], [], [], []
        for image in pixels:
            start = time.perf_counter()
            data = setting.encode(image, pixels_map.mode)
            middle = time.perf_counter()
            decoded.append(decode(data, pixels_map.mode))
            encode_s.append(middle - start)
            decode_s.append(time.perf_counter() - middle)
            encoded.append(len(data))
        accuracy, agreement = top1(predict(module, pixels_map.from_pixels(np.stack(decoded),
                                                                          x.dtype)))
        sizes = np.asarray(encoded)
        result.points.append(CodecPoint(
            option=option_name(setting), codec=setting.codec, quality=setting.quality,
            lossless=setting.lossless, bytes_mean=float(sizes.mean()),
            bytes_p95=float(np.percentile(sizes, 95)), bytes_max=int(sizes.max()),
            accuracy=accuracy, agreement=agreement, encode_s=float(np.median(encode_s)),
            decode_s=float(np.median(decode_s)), samples=int(len(x))))
    return result


def per_core_rate(target: Any) -> float | None:
    """A target's fp32 peak MAC/s per core (GMAC/s), the figure encode times scale by."""
    peak = target.peak_gmacs.get("fp32") if target.peak_gmacs else None
    if peak is None or target.cpu is None:
        return None
    return peak.value / max(1, target.cpu.cores)


def scale_to(seconds: float, target: Any, here: Any) -> tuple[float, str]:
    """``seconds`` measured on this machine (``here``: the host's catalog entry) as on
    ``target``: (seconds, "measured") on the host, else scaled by the ratio of the two
    per-core fp32 peak MAC rates of the catalog (a codec runs on one core), labelled
    estimated. Without the figures it stays the host's time, labelled estimated."""
    if target.kind == "host":
        return seconds, "measured"
    mine, theirs = per_core_rate(here), per_core_rate(target)
    if not mine or not theirs:
        return seconds, "estimated"
    return seconds * mine / theirs, "estimated"


SCALING_NOTE = ("Pillow's encode time (median per sample, one call from Python: the call's "
                "own overhead included) measured on this machine; on a catalog device scaled by "
                "this machine's fp32 peak GMAC/s per core over the device's (a codec runs on "
                "one core), an unvalidated estimate")
