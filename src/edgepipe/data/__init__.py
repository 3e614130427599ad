"""DATA specs -> in-memory datasets, checked against a model's inputs, and seeded splits.

- :mod:`edgepipe.data.dataset`: :class:`Dataset`, one array per input name plus labels;
- :mod:`edgepipe.data.readers`: .npz files, image folders and built-in datasets;
- :mod:`edgepipe.data.load`: :func:`load_data` (a spec), :func:`load_data_for_model` (a spec
  shaped for a model), :func:`as_dataset` (a spec, a Dataset or arrays) and
  :func:`splits_for` (any of these, split for a model, as the verbs take their data);
- :mod:`edgepipe.data.preprocessing`: :class:`Preprocessing`, how the data was prepared
  (recorded with each artifact, used again by eval, profile and split run);
- :mod:`edgepipe.data.splits`: :class:`Splits` and :func:`make_splits`, the seeded train /
  calibration / evaluation parts.
"""

from edgepipe.data.dataset import Dataset, DatasetInfo
from edgepipe.data.load import (
    DATA_KINDS_HINT,
    as_dataset,
    check_data_fits,
    fit_dataset,
    load_data,
    load_data_for_model,
    splits_for,
)
from edgepipe.data.preprocessing import Preprocessing, check_labels_match, choose_normalize
from edgepipe.data.splits import Splits, SplitsInfo, make_splits

# The name data splitting had before it moved here; kept until the code being reorganised
# beside this package (compress) calls make_splits. New code uses make_splits.
split = make_splits

__all__ = ["DATA_KINDS_HINT", "Dataset", "DatasetInfo", "Preprocessing", "Splits", "SplitsInfo",
           "as_dataset", "check_data_fits", "check_labels_match", "choose_normalize",
           "fit_dataset", "load_data", "load_data_for_model", "make_splits", "splits_for"]
