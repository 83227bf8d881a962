"""Build ``host/data/digits.npz``, the embedded default dataset (needs scikit-learn).

The source is scikit-learn's bundled handwritten digits (``sklearn.datasets.load_digits``):
1,797 grey-scale images of 8 x 8 pixels, each pixel an integer 0..16, labels 0..9.
The fixed split is ``sklearn.model_selection.train_test_split(images, target,
test_size=0.25, stratify=target, random_state=0, shuffle=True)``: 1,347 training and
450 test images, class proportions kept. The file holds four uint8 arrays:

- ``x_train`` [1347, 8, 8], ``y_train`` [1347]
- ``x_test``  [450, 8, 8],  ``y_test``  [450]

Run from the repository root: ``python -m host.data.make_digits`` (or give an output path).
The product only reads the shipped file (``host.data.load_dataset("digits")``); this script
and scikit-learn are needed only to re-create it, and tests check the two agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

#: Fraction of the 1,797 images held out for the test split.
TEST_SIZE = 0.25
#: ``random_state`` of the stratified ``train_test_split``.
RANDOM_STATE = 0
#: Where the shipped file lives, beside this script.
DEFAULT_OUTPUT = Path(__file__).with_name("digits.npz")


def make_digits_split() -> dict[str, np.ndarray]:
    """Return the embedded split as uint8 arrays, computed from scikit-learn.

    Returns a dict with ``x_train``/``x_test`` (uint8 [N, 8, 8], pixel values 0..16) and
    ``y_train``/``y_test`` (uint8 [N], labels 0..9).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.asarray(digits.images)
    target = np.asarray(digits.target)
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        target,
        test_size=TEST_SIZE,
        stratify=target,
        random_state=RANDOM_STATE,
        shuffle=True,
    )
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        as_uint8 = np.asarray(value).astype(np.uint8)
        if not np.array_equal(as_uint8, value):
            raise ValueError(f"{key}: scikit-learn digits are not integers 0..255")
        out[key] = np.ascontiguousarray(as_uint8)
    return out


def write_digits(path: Path = DEFAULT_OUTPUT) -> Path:
    """Write the split to ``path`` as a compressed ``.npz``; return the path."""
    arrays: dict[str, Any] = make_digits_split()
    np.savez_compressed(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m host.data.make_digits [OUTPUT]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT,
                        help=f"output .npz (default: {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    path = write_digits(args.output)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
