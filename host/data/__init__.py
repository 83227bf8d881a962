"""Datasets: the embedded default (scikit-learn's 8 x 8 digits) and loaders for npz / IDX files.

``load_dataset(spec, input_shape=..., split=..., normalize=..., samples=...)`` returns float32
samples shaped for a model input and int64 labels; see host.data.dataset for the specs and
host.data.normalize for the normalisations. The embedded split is made by
``host/data/make_digits.py`` (stratified 75/25, random_state=0: 1,347 train, 450 test).
"""

from host.data.dataset import DataSpec, RawSplit, check_labels, load_dataset, load_digits, read_split
from host.data.idx import parse_idx, read_idx
from host.data.normalize import Normalization, parse_normalization

__all__ = [
    "DataSpec",
    "Normalization",
    "RawSplit",
    "check_labels",
    "load_dataset",
    "load_digits",
    "parse_idx",
    "parse_normalization",
    "read_idx",
    "read_split",
]
