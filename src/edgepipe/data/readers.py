"""Readers behind :func:`edgepipe.data.load_data`: .npz files, image folders, built-ins.

Each reader returns ``(inputs, labels, class_names)`` with validated arrays: numeric,
finite, at least 2-D, and labels as non-negative int64. A problem raises a DataError that
names the file, the array or the sample.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgepipe.data.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from edgepipe.errors import DataError

NORMALIZATIONS = ("none", "unit", "imagenet")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")
BUILTIN_DATA = ("digits", "fashion-mnist")  # fashion-mnist: read by edgepipe.data.idx
DIGITS_SIZE = (8, 8)
_IMAGENET_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
_IMAGENET_STD = np.array(IMAGENET_STD, dtype=np.float32)

Arrays = dict[str, np.ndarray]


# ---------------------------------------------------------------- .npz


def read_npz(path: Path, input_names: Sequence[str] | None) -> tuple[Arrays, np.ndarray | None]:
    """Arrays of an .npz: ``x`` (or one per name in ``input_names``) and optional ``y``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            arrays = {name: _read_member(archive, name, path) for name in names}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"'{path}' is not a readable .npz file: {exc}",
                        hint="save it with numpy.savez(path, x=..., y=...).",
                        reference="data-unreadable") from exc
    labels = arrays.pop("y", None)
    wanted = _input_names(arrays, list(input_names or []), path, names)
    inputs = {name: check_input(arrays[name], name, path) for name in wanted}
    if len(inputs) == 1 and "x" not in inputs:
        inputs = {"x": next(iter(inputs.values()))}
    count = len(next(iter(inputs.values())))
    return inputs, None if labels is None else check_labels(labels, count, path)


def _read_member(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as exc:  # an object array, refused because loading it runs pickle
        raise DataError(
            f"Array {name!r} in '{path}' holds Python objects, not numbers.",
            hint="save numeric arrays (float32 inputs, int64 labels).",
            reference="data-not-numeric",
        ) from exc


def _input_names(arrays: Arrays, model_names: list[str], path: Path, names: list[str]) -> list[str]:
    """Which arrays are the inputs: those named like the model's inputs, else ``x``."""
    have = ", ".join(names) or "no arrays"
    if len(model_names) > 1:
        missing = [n for n in model_names if n not in arrays]
        if missing:
            raise DataError(
                f"'{path}' has no array for the model input(s) {', '.join(missing)} "
                f"(it has {have}).",
                hint="save one array per model input name, e.g. numpy.savez(path, "
                + ", ".join(f"{n}=..." for n in model_names) + ", y=...).",
                reference="npz-missing-array",
            )
        return model_names
    if model_names:
        for name in (model_names[0], "x"):
            if name in arrays:
                return [name]
    elif "x" in arrays and len(arrays) == 1:
        return ["x"]
    elif len(arrays) > 1:
        return list(arrays)  # several inputs, named by the file
    raise DataError(
        f"'{path}' has no array named 'x' (it has {have}).",
        hint="save the inputs as x (and labels as y): numpy.savez(path, x=..., y=...).",
        reference="npz-missing-x",
    )


def check_input(array: np.ndarray, name: str, path: Path | str) -> np.ndarray:
    if array.dtype.kind not in "fiub":
        raise DataError(
            f"Array {name!r} in '{path}' is {array.dtype}, not numeric.",
            hint="save inputs as numbers (float32 for float models, int64 for token ids).",
            reference="data-not-numeric",
        )
    if array.ndim < 2:
        raise DataError(
            f"Array {name!r} in '{path}' has shape {array.shape}; inputs need a sample axis "
            "and at least one more (N x features, or N x C x H x W).",
            hint="a single sample is x[None]; a list of scalars is x[:, None].",
            reference="data-bad-rank",
        )
    if len(array) == 0:
        raise DataError(f"Array {name!r} in '{path}' has no samples.",
                        hint="save at least one sample.", reference="data-empty")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array).reshape(len(array), -1)
        if bad.any():
            samples = np.flatnonzero(bad.any(axis=1))
            raise DataError(
                f"Array {name!r} in '{path}' has {int(bad.sum())} NaN or Inf values in "
                f"{len(samples)} samples; the first is sample {int(samples[0])}.",
                hint="drop or repair those samples before using the data.",
                reference="data-not-finite",
            )
    return array


def check_labels(labels: np.ndarray, count: int, source: Path | str) -> np.ndarray:
    """Labels as a 1-D int64 array of ``count`` non-negative class indices, or a DataError."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"The labels y in '{source}' have shape {labels.shape}; they must be 1-D.",
            hint="save one class index per sample (for one-hot labels, y.argmax(1)).",
            reference="labels-bad-shape",
        )
    if len(labels) != count:
        raise DataError(
            f"'{source}' has {count} samples but {len(labels)} labels in y.",
            hint="y needs one label per sample of x.", reference="labels-length-mismatch",
        )
    whole = labels.dtype.kind in "iub" or (
        labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels) & (labels == np.round(labels)))))
    if not whole:
        detail = ""
        if labels.dtype.kind == "f":
            first = int(np.flatnonzero(~(np.isfinite(labels) & (labels == np.round(labels))))[0])
            detail = f"; sample {first} has {labels[first]!r}"
        raise DataError(
            f"The labels y in '{source}' are not integers ({labels.dtype}{detail}).",
            hint="save class indices as int64 (map class names to 0..K-1 first).",
            reference="labels-not-integer",
        )
    labels = labels.astype(np.int64)
    if (labels < 0).any():
        raise DataError(
            f"The labels y in '{source}' have {int((labels < 0).sum())} negative values "
            f"(first at sample {int(np.argmax(labels < 0))}: {int(labels.min())} is the smallest).",
            hint="labels are class indices 0..K-1; remap or drop the negative ones.",
            reference="labels-negative",
        )
    return labels


# ---------------------------------------------------------------- images


def read_image_folder(
    folder: Path, size: tuple[int, int] | None, channels: int | None, normalize: str, layout: str
) -> tuple[Arrays, np.ndarray, list[str]]:
    """Images of a folder with one sub-folder per class (sorted names are the classes)."""
    from PIL import Image

    mode = _pil_mode(channels)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        raise DataError(
            f"'{folder}' has no class sub-folders"
            + (f" (it holds {len(loose)} images directly)." if loose else "."),
            hint="put the images of each class into a sub-folder named after the class.",
            reference="no-class-folders",
        )
    files = {c: _image_files(folder / c) for c in classes}
    empty = [c for c in classes if not files[c]]
    if empty:
        raise DataError(
            f"'{folder}' has no images in {len(empty)} of its {len(classes)} class folders "
            f"({', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}).",
            hint=f"add images ({', '.join(IMAGE_EXTENSIONS)}) or remove the empty folders.",
            reference="no-images",
        )
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in files[name]:
            try:
                with Image.open(path) as image:
                    image = image.convert(mode)
                    if size is not None:
                        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    images.append(np.asarray(image, dtype=np.float32))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise DataError(f"Cannot read the image '{path}': {exc}",
                                hint="replace or remove the file.",
                                reference="image-unreadable") from exc
            labels.append(label)
    sizes = sorted({im.shape[:2] for im in images})
    if len(sizes) > 1:
        raise DataError(
            f"The images in '{folder}' have {len(sizes)} different sizes ({sizes[0]}, "
            f"{sizes[-1]}, ...).", hint="give an image size to resize them to.",
            reference="image-sizes-differ")
    batch = np.stack(images)
    if batch.ndim == 3:
        batch = batch[..., None]  # grayscale: add the channel axis
    batch = _normalize(batch / 255.0 if normalize != "none" else batch, normalize)
    return ({"x": _to_layout(batch, layout)}, np.asarray(labels, dtype=np.int64), classes)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_EXTENSIONS)


def _pil_mode(channels: int | None) -> str:
    if channels in (None, 3):
        return "RGB"
    if channels == 1:
        return "L"
    raise DataError(f"Images can have 1 or 3 channels, not {channels}.",
                    hint="use channels 1 (grayscale) or 3 (RGB).", reference="bad-channels")


def _normalize(batch: np.ndarray, normalize: str) -> np.ndarray:
    """NHWC ``batch`` (already 0..1 unless ``normalize`` is "none") normalized as asked."""
    if normalize == "imagenet":
        if batch.shape[-1] != 3:
            raise DataError(
                f"ImageNet normalization needs 3 channels; the images have {batch.shape[-1]}.",
                hint="use normalize 'unit' for grayscale images, or 3 channels.",
                reference="bad-normalize")
        batch = (batch - _IMAGENET_MEAN) / _IMAGENET_STD
    return batch.astype(np.float32)


def _to_layout(nhwc: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2) if layout == "NCHW" else nhwc)


# ---------------------------------------------------------------- built-ins


def read_builtin(
    name: str, size: tuple[int, int] | None, channels: int | None, normalize: str, layout: str
) -> tuple[Arrays, np.ndarray, list[str]]:
    """``builtin:digits`` (scikit-learn's 8x8 digits, 1797 samples); ``builtin:fashion-mnist``
    is an idx folder, which :func:`edgepipe.data.load_data` reads before it gets here."""
    if name.lower() != "digits":
        raise DataError(
            f"No built-in dataset named {name!r}.",
            hint=f"built-in datasets: {', '.join('builtin:' + n for n in BUILTIN_DATA)}.",
            reference="unknown-builtin-data",
        )
    from sklearn.datasets import load_digits

    digits = load_digits()
    values = digits.data.astype(np.float32)  # 0..16
    scaled = values if normalize == "none" else values / 16.0
    labels = digits.target.astype(np.int64)
    names = [str(t) for t in digits.target_names]
    if size is None:
        if channels not in (None, 1) or normalize == "imagenet":
            raise DataError(
                "builtin:digits as 64 features has one channel and no ImageNet normalization.",
                hint="give an image size (like 32) for image-shaped digits.",
                reference="bad-normalize" if normalize == "imagenet" else "bad-channels")
        return {"x": scaled}, labels, names
    if channels is not None and channels < 1:
        raise DataError(f"channels must be at least 1, not {channels}.",
                        hint="use 1 (grayscale) or 3 (RGB-shaped).", reference="bad-channels")
    images = resize_bilinear(scaled.reshape(-1, *DIGITS_SIZE), size)[..., None]
    images = np.repeat(images, 3 if channels is None else channels, axis=-1)
    return {"x": _to_layout(_normalize(images, normalize), layout)}, labels, names


def resize_bilinear(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize N x H x W images bilinearly (half-pixel centres, like torch align_corners=False)."""
    rows = _interpolation_matrix(images.shape[1], size[0])
    cols = _interpolation_matrix(images.shape[2], size[1])
    return np.einsum("hi,nij,wj->nhw", rows, images, cols).astype(np.float32)


def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    source = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    weight = source - low
    matrix = np.zeros((n_out, n_in), dtype=np.float64)
    matrix[np.arange(n_out), low] += 1 - weight
    matrix[np.arange(n_out), high] += weight
    return matrix
