"""Seeded train / calibration / evaluation splits of a :class:`~edgepipe.data.Dataset`.

Deterministic from the seed alone: the same seed gives the same indices on every run and
machine, so a record that names a seed and an index digest names the samples exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgepipe.data.dataset import Dataset
from edgepipe.data.preprocessing import Preprocessing
from edgepipe.errors import DataError


@dataclass
class Splits:
    """Seeded train / calibration / evaluation parts of one dataset.

    ``eval`` is disjoint from ``train``; ``calib`` is a subset of ``train`` (calibrating on
    training samples keeps the evaluation set unseen by every step).
    """

    train: Dataset
    calib: Dataset
    eval: Dataset
    train_indices: np.ndarray
    calib_indices: np.ndarray
    eval_indices: np.ndarray
    seed: int
    stratified: bool = True  # False: too few samples per class, drawn over all samples

    @property
    def preprocessing(self) -> Preprocessing | None:
        """How the dataset the parts come from was prepared (None when not known)."""
        return self.train.preprocessing

    def describe(self) -> SplitsInfo:
        """Counts, seed and index digests, so a record can show which samples were used."""
        parts = (self.train_indices, self.calib_indices, self.eval_indices)
        return SplitsInfo(self.seed, self.stratified, *(len(v) for v in parts),
                          *(_index_digest(v) for v in parts))


PARTS = ("train", "calib", "eval")


@dataclass(frozen=True)
class SplitsInfo:
    """Which samples each part of a :class:`Splits` holds: the seed, the counts and a digest
    of each part's indices."""

    seed: int
    stratified: bool
    train_count: int
    calib_count: int
    eval_count: int
    train_sha256: str
    calib_sha256: str
    eval_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """``stratified`` appears only when False (records made before it existed match)."""
        document = asdict(self)
        if self.stratified:
            del document["stratified"]
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SplitsInfo:
        return cls(**{"stratified": True, **document})


def make_splits(
    dataset: Dataset, *, seed: int = 0, eval_fraction: float = 0.2, calib_size: int = 256
) -> Splits:
    """Split ``dataset`` into train, calib (drawn from train) and eval parts.

    A dataset whose source sets aside its own test samples (``predefined_eval``, the t10k
    files of an idx folder) keeps them as the eval part and the rest as train (unless ``eval_fraction``
    is 0); only calib is drawn. Otherwise:

    Stratified by label when labelled (each class gives ``round(eval_fraction * count)``
    samples to eval); when that leaves eval empty (classes of one or two samples each),
    ``round(eval_fraction * n)`` samples (at least one) are drawn over all samples instead
    and ``stratified`` is False. The draw uses only ``seed`` and numpy's PCG64 stream of doubles, so
    the same seed gives the same indices on every run and machine. Indices are sorted.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise DataError(f"eval_fraction must be in [0, 1), not {eval_fraction}.",
                        hint="pass a fraction such as 0.2.", reference="bad-split")
    if calib_size < 0:
        raise DataError(f"calib_size must be >= 0, not {calib_size}.",
                        hint="pass a sample count such as 256.", reference="bad-split")
    rng = np.random.default_rng(seed)
    n = len(dataset)
    fixed = dataset.predefined_eval
    if fixed is not None and eval_fraction > 0 and fixed.any() and not fixed.all():
        # The source's own test set (an idx folder's t10k files) is the eval part, whatever
        # the seed or eval_fraction; calibration is still drawn, seeded, from train.
        eval_idx = np.flatnonzero(fixed).astype(np.int64)
        train_idx = np.flatnonzero(~fixed).astype(np.int64)
        calib_idx = np.sort(train_idx[_permutation(rng, len(train_idx))[:calib_size]])
        return Splits(dataset.subset(train_idx), dataset.subset(calib_idx),
                      dataset.subset(eval_idx), train_idx, calib_idx, eval_idx, seed)
    groups = ([np.flatnonzero(dataset.labels == c) for c in np.unique(dataset.labels)]
              if dataset.labels is not None else [np.arange(n)])
    eval_parts = []
    for members in groups:
        shuffled = members[_permutation(rng, len(members))]
        eval_parts.append(shuffled[: int(round(eval_fraction * len(members)))])
    eval_idx = np.sort(np.concatenate(eval_parts)).astype(np.int64)
    stratified = True
    if len(eval_idx) == 0 and eval_fraction > 0 and n >= 2 and dataset.labels is not None:
        stratified = False  # e.g. 20 classes of one photo each: round(0.2 x 1) = 0 per class
        count = min(n - 1, max(1, int(round(eval_fraction * n))))
        eval_idx = np.sort(_permutation(rng, n)[:count]).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(n), eval_idx).astype(np.int64)
    if len(train_idx) == 0:
        raise DataError(f"'{dataset.source}' has too few samples ({n}) to split.",
                        hint="give more samples or a smaller eval_fraction.",
                        reference="bad-split")
    calib_idx = np.sort(train_idx[_permutation(rng, len(train_idx))[:calib_size]])
    return Splits(dataset.subset(train_idx), dataset.subset(calib_idx),
                  dataset.subset(eval_idx), train_idx, calib_idx, eval_idx, seed, stratified)


def _permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    # argsort of raw doubles rather than rng.permutation: numpy may change how Generator
    # methods use the stream between versions, the doubles of PCG64 it keeps stable.
    return np.argsort(rng.random(n), kind="stable")


def _index_digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()[:16]
