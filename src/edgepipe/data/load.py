"""DATA specs -> in-memory datasets for calibration, training and evaluation.

Specs:

- ``path/data.npz``      array ``x`` (float32, NCHW or N x features) and optional ``y`` (int
                         labels); for a model with several inputs, one array per input name
- ``path/folder/``       one sub-folder per class, holding images (resized, normalized)
- ``builtin:digits``     scikit-learn's bundled 8x8 digits (no download): N x 64 values in
                         0..1, or upsampled to N x C x H x W for CNN-shaped models
- ``path/idx-folder/``   the idx files of MNIST, Fashion-MNIST or EMNIST (train-images-idx3-ubyte
                         and its kin, plain or .gz); the t10k files are the eval split
- ``builtin:fashion-mnist``  Debian's dataset-fashion-mnist package, an idx folder (70,000
                         28x28 gray images, 10 classes; the 10,000 t10k images evaluate)
- ``texts.txt``          one text per line (``texts.tsv``: ``label<TAB>text``), tokenized with
                         the ``tokenizer`` option, the folder of an ``hf:FOLDER`` model
                         (:mod:`edgepipe.data.text`)

Everything is loaded into memory: these are calibration and evaluation sets, not training
corpora. File readers live in :mod:`edgepipe.data.readers`, the :class:`Dataset` in
:mod:`edgepipe.data.dataset` and the seeded train / calib / eval splits in
:mod:`edgepipe.data.splits`, the idx format in :mod:`edgepipe.data.idx`; this module loads
specs and checks data against a model's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.data.dataset import Dataset
from edgepipe.data.idx import (
    FASHION_MNIST_CLASSES,
    IDX_SIZE,
    fashion_mnist_folder,
    idx_images,
    is_idx_folder,
    read_idx_folder,
)
from edgepipe.data.preprocessing import DIGITS_MAX, PIXEL_MAX, Preprocessing
from edgepipe.data.readers import (
    BUILTIN_DATA,
    DIGITS_SIZE,
    NORMALIZATIONS,
    check_input,
    check_labels,
    read_builtin,
    read_image_folder,
    read_npz,
)
from edgepipe.data.splits import Splits, make_splits
from edgepipe.data.text import is_text_spec, read_texts
from edgepipe.errors import DataError, ShapeError
from edgepipe.tensors import TensorSpec, format_shape

LAYOUTS = ("NCHW", "NHWC")


def load_data(
    spec: str | Path,
    *,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    normalize: str = "unit",
    layout: str = "NCHW",
    input_names: Sequence[str] | None = None,
    tokenizer: str | Path | None = None,
    inputs: Sequence[TensorSpec] | None = None,
) -> Dataset:
    """Load a DATA spec (see the module docstring).

    Text (``.txt``, ``.tsv``) is tokenized with the tokenizer in the folder ``tokenizer``
    for a model with these ``inputs`` (their names and the sequence length).

    ``image_size``, ``channels``, ``normalize`` ("none": values as stored, "unit": 0..1,
    "imagenet": ImageNet mean/std) and ``layout`` apply to image sources (a folder,
    ``builtin:digits``); an ``.npz`` is taken as stored. ``input_names`` are the model's
    input names, which a multi-input ``.npz`` must hold.
    """
    if normalize not in NORMALIZATIONS:
        raise DataError(f"Unknown normalization {normalize!r}.",
                        hint=f"use one of: {', '.join(NORMALIZATIONS)}.",
                        reference="bad-normalize")
    if layout not in LAYOUTS:
        raise DataError(f"Unknown layout {layout!r}.", hint=f"use {' or '.join(LAYOUTS)}.",
                        reference="bad-layout")
    size = _image_size(image_size)
    text = str(spec).strip()
    if text.lower() == "builtin:fashion-mnist":
        return _load_idx(fashion_mnist_folder(), "builtin:fashion-mnist", FASHION_MNIST_CLASSES,
                         size, channels, normalize, layout)
    if text.lower().startswith("builtin:"):
        arrays, labels, names = read_builtin(text.split(":", 1)[1], size, channels, normalize,
                                             layout)
        source = f"builtin:{text.split(':', 1)[1].lower()}"
        prepared = Preprocessing.of_images(
            source, normalize, maximum=DIGITS_MAX, layout=None if size is None else layout,
            resize=size, channel_order="gray", labels=names)
        return Dataset(arrays, labels, source=source, class_names=names,
                       preprocessing=prepared)
    path = Path(text)
    if not path.exists():
        raise DataError(
            f"No file or folder at '{text}'.",
            hint="give a .npz file, a folder of class sub-folders of images, a texts.txt, or "
            f"{', '.join('builtin:' + n for n in BUILTIN_DATA)}.",
            reference="data-not-found",
        )
    if path.is_dir() and is_idx_folder(path):
        return _load_idx(path, text, None, size, channels, normalize, layout)
    if path.is_dir():
        arrays, labels, names = read_image_folder(path, size, channels, normalize, layout)
        prepared = Preprocessing.of_images(
            text, normalize, maximum=PIXEL_MAX, layout=layout, resize=size,
            channel_order="gray" if channels == 1 else "RGB", labels=names)
        return Dataset(arrays, labels, source=text, class_names=names, preprocessing=prepared)
    if path.suffix.lower() == ".npz":
        arrays, labels = read_npz(path, input_names)
        return Dataset(arrays, labels, source=text, preprocessing=Preprocessing.as_stored(text))
    if is_text_spec(path):
        return read_texts(path, tokenizer, inputs)
    raise DataError(
        f"edgepipe cannot read data from '{text}' ({path.suffix or 'no suffix'}).",
        hint="save the arrays with numpy.savez(path, x=..., y=...) as a .npz file, or give a "
        "folder of class sub-folders of images.",
        reference="data-format",
    )


def _load_idx(folder: Path, source: str, class_names: list[str] | None,
              size: tuple[int, int] | None, channels: int | None, normalize: str,
              layout: str) -> Dataset:
    """An idx folder (see :mod:`edgepipe.data.idx`): train then t10k samples, the t10k ones
    marked as the predefined eval part."""
    data = read_idx_folder(folder, class_names)
    inputs, labels, test = idx_images(data, size, channels, normalize, layout)
    native = tuple(data.train_images.shape[1:])
    prepared = Preprocessing.of_images(
        source, normalize, maximum=PIXEL_MAX, layout=layout,
        resize=None if size is None or tuple(size) == native else size,
        channel_order="gray", labels=data.class_names)
    return Dataset(inputs, labels, source=source, class_names=data.class_names,
                   preprocessing=prepared, predefined_eval=test)


def _image_size(value: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or not all(isinstance(d, int) and d > 0 for d in size):
        raise DataError(f"Cannot use image size {value!r}.",
                        hint="give one positive int (32) or a pair (height, width).",
                        reference="bad-image-size")
    return size  # type: ignore[return-value]


def load_data_for_model(
    spec: str | Path,
    inputs: list[TensorSpec],
    num_classes: int | None = None,
    **options: Any,
) -> Dataset:
    """Load a DATA spec shaped for a model with these ``inputs``, and check that it fits.

    For image sources the image size, channels and layout come from a 4-D model input
    (``builtin:digits`` gives N x 64 to a 2-D input); explicit ``options`` win. A single
    array is renamed to the model's single input name, and floats are cast to its dtype.
    """
    options = {k: v for k, v in options.items() if v is not None}
    builtin = str(spec).strip().lower().startswith("builtin:")
    if (builtin or Path(str(spec)).is_dir()) and len(inputs) == 1:
        native = (None if not builtin else IDX_SIZE if "fashion-mnist" in str(spec).lower()
                  else DIGITS_SIZE)
        options = {**_image_options(inputs[0].shape, native), **options}
    dataset = load_data(spec, input_names=[s.name for s in inputs], inputs=inputs, **options)
    return fit_dataset(dataset, inputs, num_classes)


def fit_dataset(dataset: Dataset, inputs: list[TensorSpec],
                num_classes: int | None = None) -> Dataset:
    """``dataset`` matched to a model's ``inputs`` (in place): a single array renamed to the
    model's single input name, checked with :func:`check_data_fits`, floats cast to the
    input's dtype."""
    if len(dataset.inputs) == 1 and len(inputs) == 1:
        dataset.inputs = {inputs[0].name: dataset.x}
    check_data_fits(dataset, inputs, num_classes)
    for tensor in inputs:
        array = dataset.inputs[tensor.name]
        if array.dtype != np.dtype(tensor.dtype):
            dataset.inputs[tensor.name] = array.astype(tensor.dtype)
    return dataset


DATA_KINDS_HINT = ("give a DATA spec (data.npz, an image folder, builtin:digits), a Dataset, "
                   "or arrays: x, or (x, y) with x an array (a dict of arrays by input name "
                   "for several inputs) and y integer labels.")


def as_dataset(data: Any, inputs: list[TensorSpec], num_classes: int | None = None,
               **options: Any) -> Dataset:
    """Data for a model with these ``inputs``, from what a Python caller has: a DATA spec
    (``options`` as :func:`load_data_for_model` takes them), a :class:`Dataset`, or arrays
    (numpy arrays or torch tensors): ``x`` or ``(x, y)``. Checked against the inputs."""
    if isinstance(data, (str, Path)):
        return load_data_for_model(data, inputs, num_classes, **options)
    if isinstance(data, Dataset):
        copy = Dataset(dict(data.inputs), data.labels, data.source, data.class_names,
                       data.preprocessing, data.predefined_eval)
        return fit_dataset(copy, inputs, num_classes)
    x, y = data if isinstance(data, (tuple, list)) and len(data) == 2 else (data, None)
    if isinstance(x, dict):
        arrays = {str(name): check_input(_array(a, "x"), str(name), "arrays")
                  for name, a in x.items()}
    elif hasattr(x, "shape"):
        arrays = {"x": check_input(_array(x, "x"), "x", "arrays")}
    else:
        raise DataError(f"edgepipe cannot use a {type(data).__name__} as data.",
                        hint=DATA_KINDS_HINT, reference="data-type")
    count = len(next(iter(arrays.values())))
    labels = None if y is None else check_labels(_array(y, "y"), count, "arrays")
    return fit_dataset(Dataset(arrays, labels, source="arrays"), inputs, num_classes)


def _array(value: Any, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if not hasattr(value, "shape"):
        raise DataError(f"{what} is a {type(value).__name__}, not an array.",
                        hint=DATA_KINDS_HINT, reference="data-type")
    return np.asarray(value)


def _image_options(
    shape: tuple[int | str, ...], native: tuple[int, int] | None
) -> dict[str, Any]:
    """Image size, channels and layout that make images fit a model input of ``shape``.

    A dynamic height or width keeps the images' ``native`` size (None: as stored).
    """
    if len(shape) == 2:
        return {"image_size": None}  # builtin:digits as 64 features
    if len(shape) != 4:
        return {}
    nhwc = shape[3] in (1, 3) and shape[1] not in (1, 3)
    c, h, w = (shape[3], shape[1], shape[2]) if nhwc else shape[1:]
    options: dict[str, Any] = {"layout": "NHWC" if nhwc else "NCHW"}
    if isinstance(c, int):
        options["channels"] = c
    options["image_size"] = (h, w) if isinstance(h, int) and isinstance(w, int) else native
    return options


def check_data_fits(
    dataset: Dataset, inputs: list[TensorSpec], num_classes: int | None = None
) -> None:
    """Raise a ShapeError or DataError unless the data fits the model's inputs and classes.

    Per-sample shapes must match the input shapes without their batch dimension (dynamic
    dimensions take any size), dtype kinds must agree, and labels must lie in
    [0, num_classes).
    """
    arrays = _match_inputs(dataset, inputs)
    for tensor, array in zip(inputs, arrays, strict=True):
        want, got = tuple(tensor.shape[1:]), array.shape[1:]
        fits = len(want) == len(got) and all(
            isinstance(w, str) or w == g for w, g in zip(want, got, strict=True))
        if not fits:
            raise ShapeError(
                f"The data from '{dataset.source}' has samples of shape {format_shape(got)} "
                f"(arrays {format_shape(array.shape)}); the model input {tensor.name!r} takes "
                f"{format_shape(tensor.shape)}, i.e. samples of {format_shape(want)}.",
                hint=_shape_hint(dataset.source, tensor),
                reference="data-shape-mismatch",
            )
        if not _dtype_fits(array.dtype, np.dtype(tensor.dtype)):
            raise DataError(
                f"The data for input {tensor.name!r} is {array.dtype.name}; the model takes "
                f"{tensor.dtype}.",
                hint=f"save the array as {tensor.dtype} (floats scaled as the model expects).",
                reference="data-dtype-mismatch",
            )
    if num_classes is not None and dataset.labels is not None and len(dataset.labels):
        outside = dataset.labels >= num_classes
        if outside.any():
            raise DataError(
                f"{int(outside.sum())} labels of '{dataset.source}' are outside 0..{num_classes - 1} "
                f"(the largest is {int(dataset.labels.max())}, first at sample "
                f"{int(np.argmax(outside))}); the model has {num_classes} classes.",
                hint="check that the labels are class indices for this model (0-based).",
                reference="labels-out-of-range",
            )


def _match_inputs(dataset: Dataset, inputs: list[TensorSpec]) -> list[np.ndarray]:
    if len(inputs) == 1 and len(dataset.inputs) == 1:
        return [dataset.x]
    missing = [t.name for t in inputs if t.name not in dataset.inputs]
    if missing or len(inputs) != len(dataset.inputs):
        raise ShapeError(
            f"The model takes {len(inputs)} input(s) ({', '.join(t.name for t in inputs)}); "
            f"the data from '{dataset.source}' has {len(dataset.inputs)} "
            f"({', '.join(dataset.inputs)}).",
            hint="save one array per model input name in the .npz (plus y for labels).",
            reference="data-inputs-mismatch",
        )
    return [dataset.inputs[t.name] for t in inputs]


def _dtype_fits(data: np.dtype, model: np.dtype) -> bool:
    if model.kind == "f":
        return data.kind == "f"
    if model.kind in "iu":
        return data.kind in "iu"
    return data.kind == model.kind


def _shape_hint(source: str, tensor: TensorSpec) -> str:
    if source == "builtin:fashion-mnist" or (Path(source).is_dir() and is_idx_folder(Path(source))):
        return ("an idx folder makes N x C x H x W images (28x28 for Fashion-MNIST) for a 4-D "
                "model input (like 1x1x28x28); check --input-shape.")
    if source.startswith("builtin:digits"):
        return ("builtin:digits makes N x 64 for a 2-D input (like 1x64) or N x C x H x W "
                "images for a 4-D input (like 1x3x32x32); check --input-shape.")
    if Path(source).is_dir():
        return ("an image folder makes 4-D batches sized from a 4-D model input; give "
                "--input-shape like 1x3x224x224.")
    return (f"save arrays of shape (N, {', '.join(str(d) for d in tensor.shape[1:])}) for "
            f"input {tensor.name!r}, or check --input-shape.")


def splits_for(data: Any, inputs: list[TensorSpec], *, num_classes: int | None = None,
               seed: int = 0, calib_size: int = 256, normalize: str | None = None,
               tokenizer: str | Path | None = None) -> Splits:
    """Seeded train / calib / eval parts of ``data`` for a model with these ``inputs``, as
    every verb that trains, calibrates or measures makes them: a :class:`Splits` is used as
    given; anything :func:`as_dataset` takes is shaped for and checked against the inputs
    (labels against ``num_classes``) before it is split with ``seed``. ``tokenizer`` (the
    model's ``LoadedModel.tokenizer_folder``) tokenizes text data."""
    if isinstance(data, Splits):
        return data
    dataset = as_dataset(data, inputs, num_classes, normalize=normalize, tokenizer=tokenizer)
    return make_splits(dataset, seed=seed, calib_size=calib_size)
