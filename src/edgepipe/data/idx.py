"""A strict reader for the idx format of MNIST, Fashion-MNIST and EMNIST, and ``builtin:fashion-mnist``.

An idx folder holds four files, each plain or gzipped (``.gz``)::

    train-images-idx3-ubyte   N x H x W unsigned bytes   (the training set)
    train-labels-idx1-ubyte   N unsigned bytes           (its class indices)
    t10k-images-idx3-ubyte    M x H x W unsigned bytes   (the test set)
    t10k-labels-idx1-ubyte    M unsigned bytes

Each file is a header (two zero bytes, a dtype code, the number of dimensions, then each
dimension as a big-endian uint32) followed by the values, big-endian, row-major. The files are
untrusted input, so the reader checks everything before it trusts it: the magic and dtype code,
that the declared size fits a limit (:data:`MAX_IDX_BYTES`) and the file (a plain file's length
must equal header + values; a gzipped file cannot hold more than ~1032 bytes per compressed
byte), and it decompresses at most the declared size plus one byte, so a gzip bomb stops at
the header's word. Label counts must match image counts, train and test images must have the
same size, and test labels must be classes the train labels know. Every problem is a
:class:`~edgepipe.errors.DataError` naming the file.

How train and t10k map onto edgepipe's splits: the folder loads as one dataset, the train
samples first, then the t10k samples, and the t10k samples are marked as the source's own
evaluation set (``Dataset.predefined_eval``). :func:`~edgepipe.data.make_splits` then uses
them as the eval part (``eval --split eval`` measures on exactly the 10,000 test images, as
published results do) and the train files as the train part; calibration samples are still
drawn, seeded, from the train part. ``--split all`` takes all train + test samples. The
``--seed`` thus only changes which train samples calibrate, never which samples evaluate.

``builtin:fashion-mnist`` is Debian's ``dataset-fashion-mnist`` package (an idx folder under
``/usr/share/datasets/fashion-mnist``), found at run time among :data:`FASHION_MNIST_DIRS`;
nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import logging
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.errors import DataError

log = logging.getLogger("edgepipe")

# dtype code -> big-endian numpy dtype (the idx format's six types)
IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_IDX_BYTES = 4 << 30  # no idx file edgepipe reads may declare more values than this
MAX_IDX_DIMS = 16
GZIP_MAX_RATIO = 1032  # deflate cannot expand one compressed byte into more than ~1032
_CHUNK = 1 << 20

# The four files of an idx folder, by (part, kind).
IDX_FILES = {("train", "images"): "train-images-idx3-ubyte",
             ("train", "labels"): "train-labels-idx1-ubyte",
             ("t10k", "images"): "t10k-images-idx3-ubyte",
             ("t10k", "labels"): "t10k-labels-idx1-ubyte"}

FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
# Where Debian's package puts the files (dpkg -L dataset-fashion-mnist), then other prefixes.
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),
                      Path("/usr/local/share/datasets/fashion-mnist"),
                      Path(sys.prefix) / "share" / "datasets" / "fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
IDX_SIZE = (28, 28)  # the native image size of MNIST and its kin


@dataclass
class IdxData:
    """The four arrays of an idx folder, validated: uint8 images N x H x W, int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]


# ---------------------------------------------------------------- one file


def read_idx(path: Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """The array of one idx file (plain, or gzipped when its name ends in ``.gz``).

    Raises a DataError for a file that is unreadable, has a wrong magic or dtype code, is
    shorter or longer than its header says, or declares more than ``max_bytes`` of values.
    """
    path = Path(path)
    compressed = path.suffix == ".gz"
    try:
        stored = path.stat().st_size
        opener = gzip.open if compressed else open
        with opener(path, "rb") as stream:
            dtype, dims = _read_header(stream, path)
            header = 4 + 4 * len(dims)
            count = int(np.prod(dims, dtype=object))  # Python ints: no overflow
            size = count * dtype.itemsize
            _check_declared(path, dims, size, header, stored, compressed, max_bytes)
            data = _read_exactly(stream, size, path, dims)
            if stream.read(1):
                raise DataError(
                    f"'{path}' holds more data than its header declares "
                    f"({_dims(dims)} values, {header + size} bytes"
                    + (" decompressed" if compressed else "") + ").",
                    hint="the file is corrupt or not an idx file; get it again from its source.",
                    reference="idx-trailing-data")
    except EOFError as exc:  # a gzip stream cut short
        raise DataError(f"'{path}' is truncated: its gzip stream ends early ({exc}).",
                        hint="the file was cut short (an interrupted download?); get it again.",
                        reference="idx-truncated") from exc
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"Cannot read the idx file '{path}': {exc}",
                        hint="check the file; a .gz file must be gzip-compressed idx data.",
                        reference="idx-unreadable") from exc
    return np.frombuffer(data, dtype=dtype).reshape(dims)


def _read_header(stream, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(f"'{path}' is truncated: {len(magic)} bytes, shorter than an idx "
                        "header.", hint="get the file again from its source.",
                        reference="idx-truncated")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES or magic[3] == 0:
        raise DataError(
            f"'{path}' is not an idx file: it starts with bytes {magic.hex(' ')}, not "
            "00 00 <dtype code> <number of dimensions>.",
            hint="give the MNIST-format files (train-images-idx3-ubyte and its kin, plain or "
            ".gz); a .gz file must be named .gz.", reference="idx-bad-magic")
    ndims = magic[3]
    if ndims > MAX_IDX_DIMS:
        raise DataError(f"'{path}' declares {ndims} dimensions; idx data has at most "
                        f"{MAX_IDX_DIMS} here.", hint="the file is corrupt or not an idx file.",
                        reference="idx-bad-magic")
    raw = stream.read(4 * ndims)
    if len(raw) < 4 * ndims:
        raise DataError(f"'{path}' is truncated inside its header ({ndims} dimensions "
                        f"declared, {len(raw) // 4} given).",
                        hint="get the file again from its source.", reference="idx-truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4"))
    return IDX_DTYPES[magic[2]], dims


def _check_declared(path: Path, dims: tuple[int, ...], size: int, header: int, stored: int,
                    compressed: bool, max_bytes: int) -> None:
    """Refuse a declared size no allocation should be made for, before reading any value."""
    if size > max_bytes:
        raise DataError(
            f"'{path}' declares {_dims(dims)} values ({size:,} bytes), more than edgepipe "
            f"reads from one idx file ({max_bytes:,} bytes).",
            hint="the header is corrupt, or the data is too large to load into memory; "
            "split it into smaller files.", reference="idx-too-large")
    if not compressed and stored != header + size:
        longer = stored > header + size
        raise DataError(
            f"'{path}' is {stored:,} bytes, but its header declares {_dims(dims)} values: "
            f"{header + size:,} bytes" + (" (it has trailing data)." if longer else
                                          " (the file is truncated)."),
            hint="the file is corrupt or cut short; get it again from its source.",
            reference="idx-trailing-data" if longer else "idx-truncated")
    if compressed and size > GZIP_MAX_RATIO * stored:
        raise DataError(
            f"'{path}' declares {_dims(dims)} values ({size:,} bytes), more than a "
            f"{stored:,}-byte gzip file can hold.",
            hint="the file is truncated or its header is corrupt; get it again from its source.",
            reference="idx-truncated")


def _read_exactly(stream, size: int, path: Path, dims: tuple[int, ...]) -> bytes:
    """``size`` bytes of ``stream``, read in chunks so that a short file allocates no more
    than it holds."""
    chunks, have = [], 0
    while have < size:
        chunk = stream.read(min(_CHUNK, size - have))
        if not chunk:
            raise DataError(
                f"'{path}' is truncated: its header declares {_dims(dims)} values "
                f"({size:,} bytes) and it holds {have:,}.",
                hint="the file was cut short (an interrupted download?); get it again.",
                reference="idx-truncated")
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def _dims(dims: tuple[int, ...]) -> str:
    return " x ".join(str(d) for d in dims)


# ---------------------------------------------------------------- a folder


def idx_file(folder: Path, part: str, kind: str) -> Path | None:
    """The file of ``(part, kind)`` in ``folder``: the plain file, else the ``.gz``, else None."""
    name = IDX_FILES[(part, kind)]
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def is_idx_folder(folder: Path) -> bool:
    """Whether ``folder`` holds at least one of the four idx files (then it is read as one)."""
    return any(idx_file(folder, part, kind) is not None for part, kind in IDX_FILES)


def read_idx_folder(folder: Path, class_names: list[str] | None = None) -> IdxData:
    """The four arrays of an idx folder, checked against each other.

    ``class_names`` (when known, as for Fashion-MNIST) bound the labels; otherwise the
    classes are ``0``..``K-1`` with K one more than the largest train label.
    """
    files = {key: idx_file(folder, *key) for key in IDX_FILES}
    missing = [IDX_FILES[key] for key, path in files.items() if path is None]
    if missing:
        raise DataError(
            f"The idx folder '{folder}' lacks {', '.join(missing)} (plain or .gz).",
            hint="an idx folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or .gz.",
            reference="idx-files-missing")
    arrays = {}
    for (part, kind), path in files.items():
        array = read_idx(path)
        rank = 3 if kind == "images" else 1
        if array.ndim != rank or array.dtype != np.dtype(">u1"):
            raise DataError(
                f"'{path}' holds {array.dtype.name} values of shape {array.shape}; {kind} "
                f"must be unsigned bytes of rank {rank} "
                + ("(N x height x width)." if rank == 3 else "(one label per image)."),
                hint="check the file names: images go in *-images-idx3-ubyte, labels in "
                "*-labels-idx1-ubyte.", reference="idx-wrong-kind")
        if array.shape[0] == 0 or (rank == 3 and 0 in array.shape):
            raise DataError(f"'{path}' holds no samples (shape {array.shape}).",
                            hint="give idx files with at least one image and label.",
                            reference="idx-wrong-kind")
        arrays[(part, kind)] = array
    for part in ("train", "t10k"):
        images, labels = arrays[(part, "images")], arrays[(part, "labels")]
        if len(images) != len(labels):
            raise DataError(
                f"The {part} files of '{folder}' hold {len(images)} images but {len(labels)} "
                "labels.", hint="the images and labels files must come from the same set.",
                reference="idx-count-mismatch")
    train, test = arrays[("train", "images")], arrays[("t10k", "images")]
    if train.shape[1:] != test.shape[1:]:
        raise DataError(
            f"The train images of '{folder}' are {_dims(train.shape[1:])}, the t10k images "
            f"{_dims(test.shape[1:])}.", hint="both sets must come from the same dataset.",
            reference="idx-size-mismatch")
    train_labels = arrays[("train", "labels")].astype(np.int64)
    test_labels = arrays[("t10k", "labels")].astype(np.int64)
    known = len(class_names) if class_names else int(train_labels.max()) + 1
    for part, labels in (("train", train_labels), ("t10k", test_labels)):
        outside = labels >= known
        if outside.any():
            raise DataError(
                f"{int(outside.sum())} {part} labels of '{folder}' are outside 0..{known - 1} "
                f"(the first is {int(labels[np.argmax(outside)])}, at sample "
                f"{int(np.argmax(outside))})"
                + (f"; the dataset has {known} classes." if class_names else
                   "; the train labels name no such class."),
                hint="the labels file is corrupt or from another dataset.",
                reference="idx-label-range")
    names = list(class_names) if class_names else [str(c) for c in range(known)]
    return IdxData(np.asarray(train, dtype=np.uint8), train_labels,
                   np.asarray(test, dtype=np.uint8), test_labels, names)


# ---------------------------------------------------------------- builtin:fashion-mnist


def fashion_mnist_folder() -> Path:
    """The folder of Debian's ``dataset-fashion-mnist`` files, or a DataError saying how to
    get them."""
    for folder in FASHION_MNIST_DIRS:
        if folder.is_dir() and is_idx_folder(folder):
            return folder
    raise DataError(
        "builtin:fashion-mnist needs the Fashion-MNIST files, and none are installed "
        f"(looked in {', '.join(str(f) for f in FASHION_MNIST_DIRS)}).",
        hint=f"install Debian's package: apt install {FASHION_MNIST_PACKAGE}; or give "
        "--data FOLDER holding the four idx files (train-images-idx3-ubyte.gz and its kin).",
        reference="fashion-mnist-missing")


def idx_images(
    data: IdxData, size: tuple[int, int] | None, channels: int | None, normalize: str,
    layout: str
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``data`` as edgepipe's arrays: the train then the test images as float32 (scaled by
    ``normalize``, resized to ``size``, ``channels`` copies of the gray channel, in
    ``layout``), their labels, and the mask of test samples (the predefined eval part)."""
    from edgepipe.data.readers import _normalize, _to_layout, resize_bilinear

    if channels is not None and channels < 1:
        raise DataError(f"channels must be at least 1, not {channels}.",
                        hint="use 1 (grayscale) or 3 (RGB-shaped).", reference="bad-channels")
    images = np.concatenate([data.train_images, data.test_images]).astype(np.float32)
    if normalize != "none":
        images /= 255.0
    if size is not None and tuple(size) != images.shape[1:]:
        images = resize_bilinear(images, size)
    images = images[..., None]
    if channels not in (None, 1):
        images = np.repeat(images, channels, axis=-1)
    if normalize == "imagenet":
        images = _normalize(images, normalize)  # 3 channels, or a bad-normalize DataError
    labels = np.concatenate([data.train_labels, data.test_labels])
    test = np.zeros(len(labels), dtype=bool)
    test[len(data.train_labels):] = True
    return {"x": _to_layout(images, layout)}, labels, test
