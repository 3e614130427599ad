"""The in-memory dataset every verb takes: one array per model input, optional labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgepipe.data.preprocessing import Preprocessing
from edgepipe.errors import DataError


@dataclass
class Dataset:
    """Samples for a model: one array per input name (first axis = samples), optional labels.

    A single-input dataset names its array ``"x"`` until it is matched to a model
    (:func:`load_data_for_model` renames it to the model's input name).
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    source: str = ""
    class_names: list[str] | None = None
    # how the arrays were prepared (set by load_data; None for arrays from Python)
    preprocessing: Preprocessing | None = None
    # True for the samples the source sets aside for evaluation (the t10k files of an idx
    # folder): make_splits takes them as the eval part instead of drawing one.
    predefined_eval: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise DataError(f"The data from '{self.source}' has no arrays.",
                            hint="give at least one input array.", reference="data-empty")
        counts = {name: len(a) for name, a in self.inputs.items()}
        if self.labels is not None:
            counts["labels"] = len(self.labels)
        if self.predefined_eval is not None:
            counts["predefined_eval"] = len(self.predefined_eval)
        if len(set(counts.values())) > 1:
            raise DataError(
                f"The arrays of '{self.source}' hold different numbers of samples: "
                + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".",
                hint="every array (and y) needs the same length along its first axis.",
                reference="data-length-mismatch",
            )

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    @property
    def num_classes(self) -> int | None:
        """The number of classes: from the class names, else the largest label + 1."""
        if self.class_names:
            return len(self.class_names)
        if self.labels is not None and len(self.labels):
            return int(self.labels.max()) + 1
        return None

    @property
    def x(self) -> np.ndarray:
        """The array of a single-input dataset."""
        if len(self.inputs) != 1:
            raise DataError(
                f"The data has {len(self.inputs)} inputs ({', '.join(self.inputs)}).",
                hint="pick one with dataset.inputs[NAME].", reference="data-several-inputs")
        return next(iter(self.inputs.values()))

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The samples at ``indices`` (in that order), as a new Dataset."""
        index = np.asarray(indices, dtype=np.int64)
        return Dataset(
            inputs={name: a[index] for name, a in self.inputs.items()},
            labels=None if self.labels is None else self.labels[index],
            source=self.source,
            class_names=self.class_names,
            preprocessing=self.preprocessing,
            predefined_eval=None if self.predefined_eval is None else self.predefined_eval[index],
        )

    def batches(
        self, batch_size: int
    ) -> Iterator[tuple[list[np.ndarray], np.ndarray | None]]:
        """Consecutive batches: (arrays in input order, labels or None); the last may be short."""
        if batch_size < 1:
            raise DataError(f"The batch size must be at least 1, not {batch_size}.",
                            hint="pass a positive batch size.", reference="bad-batch-size")
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            arrays = [a[start:stop] for a in self.inputs.values()]
            yield arrays, None if self.labels is None else self.labels[start:stop]

    def describe(self) -> DatasetInfo:
        """The dataset as loaded, for manifests and ``--json`` output."""
        return DatasetInfo(
            source=self.source,
            count=len(self),
            shapes={name: list(a.shape) for name, a in self.inputs.items()},
            dtypes={name: a.dtype.name for name, a in self.inputs.items()},
            labelled=self.labels is not None,
            num_classes=self.num_classes,
            classes=self.class_names,
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What a :class:`Dataset` holds, without its arrays (for records and ``--json``)."""

    source: str
    count: int
    shapes: dict[str, list[int]]
    dtypes: dict[str, str]
    labelled: bool
    num_classes: int | None
    classes: list[str] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> DatasetInfo:
        return cls(**document)
