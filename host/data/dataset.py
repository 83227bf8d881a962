"""Datasets: resolve a spec string to labelled samples shaped for a model's input.

Specs understood by ``load_dataset``:

- ``digits``, ``digits:test``, ``digits:train`` — the embedded handwritten digits
  (``host/data/digits.npz``, made by ``host/data/make_digits.py`` from scikit-learn's
  ``load_digits``: 8 x 8 pixels with values 0..16, a stratified 75/25 split with
  ``random_state=0``: 1,347 training and 450 test images). The ``:train``/``:test``
  suffix overrides the ``split`` argument. A file called ``digits`` is reached as ``./digits``.
- ``PATH.npz`` — a NumPy archive with ``x_test``/``y_test`` (or ``x_train``/``y_train`` for
  ``split="train"``); x is [N, ...] samples, y is [N] integer labels.
- ``IMAGES,LABELS`` — an IDX images file (e.g. ``t10k-images-idx3-ubyte``) and its IDX labels
  file; ``IMAGES`` alone works when the labels file sits beside it under the standard name
  (``...images-idx3...`` -> ``...labels-idx1...``).
- ``DIR`` — a directory holding the MNIST files ``t10k-images-idx3-ubyte`` /
  ``t10k-labels-idx1-ubyte`` (test) or ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
  (train); ``.idx3-ubyte`` spellings and ``.gz`` compression are accepted.

Integer samples are taken as 8-bit pixels (full scale 255), float samples as already in
[0, 1] (full scale 1), the embedded digits have full scale 16 (see host.data.normalize).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from host.data.idx import is_idx, parse_idx, read_bytes_maybe_gzip
from host.data.normalize import parse_normalization
from host.errors import FlipLabError

SPLITS = ("test", "train")
#: Full-intensity pixel value of the embedded digits (scikit-learn's 0..16 scale).
DIGITS_FULL_SCALE = 16.0
#: Full-intensity value of integer data from npz/IDX files (8-bit pixels).
INTEGER_FULL_SCALE = 255.0
#: Full-intensity value of float data from npz/IDX files (already on the unit scale).
FLOAT_FULL_SCALE = 1.0
#: MNIST file-name prefix of each split.
MNIST_PREFIX = {"test": "t10k", "train": "train"}

Dim = int | str | None


@dataclass(frozen=True)
class RawSplit:
    """Labelled samples as stored, before normalisation and reshaping."""

    name: str           # where they came from, for messages, e.g. "digits:test"
    x: np.ndarray       # [N, ...] samples as stored (uint8, int, or float)
    y: np.ndarray       # [N] int64 labels >= 0
    full_scale: float   # stored value of a full-intensity pixel (16, 255 or 1)


@dataclass(frozen=True)
class DataSpec:
    """Which labelled samples a command evaluates on (``--data``, ``--normalize``,
    ``--samples``): a dataset spec, its input normalisation (None: the one the image recorded
    at export, else ``unit``, ``none`` for an integer input), and the first N samples (None:
    all)."""

    data: str = "digits"
    normalize: str | None = "unit"
    samples: int | None = None

    def load(self, input_shape: Sequence[Dim], *, input_dtype: str = "float32",
             recorded: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The test split shaped for a model input (see :func:`load_dataset`).

        ``normalize=None`` takes ``recorded`` (the normalisation an image recorded at
        export), else ``none`` for an integer input (token ids), else ``unit``.
        """
        normalize = self.normalize
        if normalize is None:
            normalize = recorded or ("none" if np.dtype(input_dtype).kind in "iu" else "unit")
        return load_dataset(self.data, input_shape=input_shape, normalize=normalize,
                            samples=self.samples, input_dtype=input_dtype)

    def load_for(self, model: dict) -> tuple[np.ndarray, np.ndarray]:
        """The test split for an image's ``model`` record (input shape, dtype, normalisation)."""
        return self.load(model["input_shape"], input_dtype=model.get("input_dtype", "float32"),
                         recorded=model.get("normalize"))


def load_dataset(
    spec: str,
    *,
    input_shape: Sequence[Dim],
    split: str = "test",
    normalize: str = "unit",
    samples: int | None = None,
    input_dtype: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Load labelled samples named by ``spec``, normalised and shaped for a model input.

    ``input_shape`` is the model input's shape with its batch dimension first (symbolic as a
    str/None/non-positive int, or fixed); the other dimensions must be positive ints. The
    batch dimension becomes the number of samples N; each sample is reshaped (row-major) to
    ``input_shape[1:]``, which needs the same number of values. ``split`` is ``"test"`` or
    ``"train"``; ``normalize`` is a spec of host.data.normalize (``unit`` gives [0, 1]);
    ``samples=N`` keeps the first N samples (1 <= N <= available).

    ``input_dtype`` is the model input's element type: a float type receives the normalised
    values; an integer type (token ids of an Embedding) receives the stored values unchanged,
    which must be integers in its range, and takes only ``normalize="none"``.

    Returns ``(x, y)``: x [N, *input_shape[1:]] in ``input_dtype``, y int64 [N] labels.
    Raises FlipLabError for any bad spec, file, key, shape or count.
    """
    normalization = parse_normalization(normalize)
    target = _sample_shape(input_shape)
    raw = read_split(spec, split=split)
    x, y = raw.x, raw.y
    if samples is not None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise FlipLabError(f"samples must be an integer >= 1, got {samples!r}")
        if samples > len(y):
            raise FlipLabError(f"samples={samples} but {raw.name} holds only {len(y)} samples")
        x, y = x[:samples], y[:samples]
    per_sample = int(np.prod(x.shape[1:], dtype=np.int64))
    wanted = int(np.prod(target, dtype=np.int64))
    if per_sample != wanted:
        raise FlipLabError(
            f"{raw.name} has samples of shape {_fmt(x.shape[1:])} ({per_sample} values) but the "
            f"model input {_fmt(input_shape)} needs {_fmt(target)} ({wanted} values) per sample"
        )
    dtype = np.dtype(input_dtype)
    if dtype.kind in "iu":
        values = _as_integer_input(x, dtype, normalization.spec, raw.name)
    else:
        values = normalization.apply(x, raw.full_scale, source=raw.name)
    out = np.ascontiguousarray(values.reshape((len(y), *target)), dtype=dtype)
    return out, np.ascontiguousarray(y, dtype=np.int64)


def _as_integer_input(x: np.ndarray, dtype: np.dtype, normalize: str, name: str) -> np.ndarray:
    """Stored samples passed unchanged to an integer model input (e.g. int64 token ids)."""
    if normalize != "none":
        raise FlipLabError(f"the model's input is {dtype} (e.g. token ids), fed the stored values "
                           f"unchanged; normalize {normalize!r} does not apply, use 'none'")
    if x.size and (not np.all(np.isfinite(x)) or np.any(x != np.round(x))):
        raise FlipLabError(f"{name}: the model's input is {dtype} but the samples are not integers")
    info = np.iinfo(dtype)
    if x.size and (float(np.min(x)) < info.min or float(np.max(x)) > info.max):
        raise FlipLabError(f"{name}: values span [{np.min(x):g}, {np.max(x):g}], outside "
                           f"the {dtype} range of the model's input")
    return x


def read_split(spec: str, *, split: str = "test") -> RawSplit:
    """Resolve ``spec`` (see the module docstring) to the stored samples of one split."""
    if not isinstance(spec, str) or not spec.strip():
        raise FlipLabError("dataset spec is empty")
    spec = spec.strip()
    if split not in SPLITS:
        raise FlipLabError(f"unknown split '{split}': expected 'test' or 'train'")
    name, sep, suffix = spec.partition(":")
    if name == "digits":
        if sep:
            if suffix not in SPLITS:
                raise FlipLabError(f"unknown digits split '{suffix}': use digits:test or digits:train")
            split = suffix
        return load_digits(split)
    if "," in spec:
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) != 2 or not all(parts):
            raise FlipLabError(f"dataset '{spec}': expected IMAGES,LABELS (two IDX file paths)")
        return _read_idx_pair(Path(parts[0]), Path(parts[1]))
    path = Path(spec)
    if path.is_dir():
        return _read_mnist_dir(path, split)
    if not path.exists():
        raise FlipLabError(f"dataset not found: {spec} (expected digits, a .npz, IDX files or a directory)")
    return _read_file(path, split)


def load_digits(split: str = "test") -> RawSplit:
    """The embedded digits split: x uint8 [N, 8, 8] (0..16), y int64 [N] (0..9)."""
    if split not in SPLITS:
        raise FlipLabError(f"unknown split '{split}': expected 'test' or 'train'")
    with resources.files("host.data").joinpath("digits.npz").open("rb") as handle:
        with np.load(handle, allow_pickle=False) as archive:
            x = archive[f"x_{split}"]
            y = archive[f"y_{split}"].astype(np.int64)
    return RawSplit(f"digits:{split}", x, y, DIGITS_FULL_SCALE)


def _sample_shape(input_shape: Sequence[Dim]) -> tuple[int, ...]:
    """The per-sample shape: ``input_shape`` without its batch (first) dimension."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise FlipLabError(f"model input shape must be a list of dimensions, got {input_shape!r}")
    if len(input_shape) == 0:
        raise FlipLabError("model input is a scalar (shape []); it has no batch dimension")
    rest = []
    for dim in input_shape[1:]:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise FlipLabError(
                f"model input {_fmt(input_shape)} has a non-batch dimension {dim!r} that is not a "
                f"fixed positive size; cannot shape samples for it"
            )
        rest.append(int(dim))
    return tuple(rest)


def _fmt(shape: Sequence[Dim]) -> str:
    """Shape as ``[batch, 1, 8, 8]`` for messages."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    """Check and convert labels to int64 [N]; raise FlipLabError naming ``name``."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise FlipLabError(f"{name}: labels must be a 1-D array, got shape {list(y.shape)}")
    if y.dtype.kind in "iu":
        labels = y.astype(np.int64)
    elif (y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
          and (y.size == 0 or np.abs(y).max() < 2.0**53)):
        labels = y.astype(np.int64)
    else:
        raise FlipLabError(f"{name}: labels must be integers, got {y.dtype} values")
    if labels.size and labels.min() < 0:
        raise FlipLabError(f"{name}: labels must be >= 0, found {int(labels.min())}")
    return labels


def check_labels(y: np.ndarray, classes: int | None, source: str) -> None:
    """Refuse labels outside ``0 .. classes-1`` (``classes``: the model's output width; None
    when it is not known, then nothing is checked), naming the first offending value."""
    if classes is None or not len(y):
        return
    bad = np.flatnonzero((y < 0) | (y >= classes))
    if bad.size:
        i = int(bad[0])
        raise FlipLabError(f"{source}: label {int(y[i])} of sample {i} is outside the model's "
                           f"{classes} classes 0..{classes - 1} ({bad.size} of {len(y)} "
                           f"labels are)")


def _make_split(x: np.ndarray, y: np.ndarray, name: str, labels_name: str) -> RawSplit:
    """Validate stored samples/labels and pick their full scale from the sample dtype."""
    x = np.asarray(x)
    labels = _labels(y, labels_name)
    if x.dtype.kind in "iu":
        full_scale = INTEGER_FULL_SCALE
    elif x.dtype.kind == "f":
        full_scale = FLOAT_FULL_SCALE
    else:
        raise FlipLabError(f"{name}: samples must be numbers, got {x.dtype}")
    if x.ndim < 1 or len(x) == 0:
        raise FlipLabError(f"{name}: no samples (shape {list(x.shape)})")
    if len(x) != len(labels):
        raise FlipLabError(f"{name}: {len(x)} samples but {len(labels)} labels in {labels_name}")
    return RawSplit(name, x, labels, full_scale)


def _read_file(path: Path, split: str) -> RawSplit:
    """A single file: a .npz archive, or IDX images with their labels beside them."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise FlipLabError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".npz" or head[:2] == b"PK":
        return _read_npz(path, split)
    data = read_bytes_maybe_gzip(path)
    if not is_idx(data):
        raise FlipLabError(f"{path}: not a .npz archive or an IDX file")
    labels = _sibling_labels(path)
    if labels is None:
        raise FlipLabError(
            f"{path}: no labels file found beside these IDX images; give them as IMAGES,LABELS"
        )
    return _make_split(parse_idx(data, str(path)), _read_idx_labels(labels), str(path), str(labels))


def _read_npz(path: Path, split: str) -> RawSplit:
    """Samples ``x_<split>`` and labels ``y_<split>`` of a NumPy .npz archive."""
    x_key, y_key = f"x_{split}", f"y_{split}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            missing = [k for k in (x_key, y_key) if k not in keys]
            if missing:
                raise FlipLabError(
                    f"{path}: missing key {', '.join(repr(k) for k in missing)} for split "
                    f"'{split}' (found: {', '.join(keys) or 'none'})"
                )
            x, y = archive[x_key], archive[y_key]
    except FlipLabError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FlipLabError(f"{path}: cannot read as .npz ({str(exc).splitlines()[0]})") from None
    return _make_split(x, y, f"{path}[{x_key}]", f"{path}[{y_key}]")


def _read_idx_labels(path: Path) -> np.ndarray:
    """An IDX labels file (1-D)."""
    labels = parse_idx(read_bytes_maybe_gzip(path), str(path))
    if labels.ndim != 1:
        raise FlipLabError(f"{path}: IDX labels must be 1-D, got shape {list(labels.shape)}")
    return labels


def _read_idx_pair(images: Path, labels: Path) -> RawSplit:
    """IDX images and IDX labels given as two paths."""
    x = parse_idx(read_bytes_maybe_gzip(images), str(images))
    return _make_split(x, _read_idx_labels(labels), str(images), str(labels))


def _sibling_labels(images: Path) -> Path | None:
    """The standard labels file beside an IDX images file, if present."""
    name = images.name
    if "images" not in name or "idx3" not in name:
        return None
    base = name.replace("images", "labels").replace("idx3", "idx1")
    stem = base[:-3] if base.endswith(".gz") else base
    for candidate in (stem, stem + ".gz"):
        if (images.parent / candidate).is_file():
            return images.parent / candidate
    return None


def _find_mnist_file(directory: Path, split: str, kind: str) -> Path:
    """``<prefix>-<kind>-idxD-ubyte`` in ``directory`` (also ``.idxD-ubyte`` and ``.gz``)."""
    prefix = MNIST_PREFIX[split]
    idx = "idx3" if kind == "images" else "idx1"
    names = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
    for name in names:
        for candidate in (name, name + ".gz"):
            if (directory / candidate).is_file():
                return directory / candidate
    raise FlipLabError(f"{directory}: no {split} {kind} file (looked for {names[0]}[.gz])")


def _read_mnist_dir(directory: Path, split: str) -> RawSplit:
    """The MNIST files of ``split`` in ``directory``."""
    images = _find_mnist_file(directory, split, "images")
    labels = _find_mnist_file(directory, split, "labels")
    return _read_idx_pair(images, labels)
