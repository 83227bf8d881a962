"""Where the non-Python files FlipLab runs are: reference models, RTL sources, firmware sources.

In the source tree they are the top-level folders ``models/``, ``rtl/`` and ``firmware/``; the
wheel carries them as the data-only packages ``host._share.models``, ``host._share.rtl`` and
``host._share.firmware`` (setup.py maps the folders there). :func:`shared_dir` finds them in
both cases with :mod:`importlib.resources`: inside the installed ``host`` package first (a
wheel), else beside it (a source checkout, installed editable or run in place).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from host.errors import FlipLabError

#: the shared folders and a file each must contain
SHARED = {"models": "digits_mlp.onnx", "rtl": "accel_top.v", "firmware": "Makefile"}


def shared_dir(name: str) -> Path:
    """The folder ``name`` (``models``, ``rtl`` or ``firmware``) as a real filesystem path.

    Raises:
        FlipLabError: the folder is in neither place (a broken installation).
    """
    marker = SHARED[name]
    host_pkg = Path(str(files("host")))  # a filesystem path: FlipLab is never run from a zip
    for candidate in (host_pkg / "_share" / name, host_pkg.parent / name):
        if (candidate / marker).is_file():
            return candidate
    raise FlipLabError(f"the {name}/ folder of FlipLab is missing (looked in {host_pkg / '_share'} "
                       f"and {host_pkg.parent}): reinstall fliplab")


def is_source_checkout(path: Path) -> bool:
    """True when ``path`` is one of the source tree's folders, not a copy inside the package
    (a source checkout may build into its folders; an installed package is left alone)."""
    return Path(str(files("host"))) not in path.parents
