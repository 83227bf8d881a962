"""Packaging that pyproject.toml cannot say on its own: the non-Python files FlipLab runs.

The reference models, the Verilog of the accelerator and the firmware sources stay in the
repository's top-level ``models/``, ``rtl/`` and ``firmware/`` folders (where the design puts
them), and ship in the wheel as the data-only packages ``host._share.models``, ``host._share.rtl``
and ``host._share.firmware`` (a ``package_dir`` mapping, no copies in the tree).
``host._share`` finds them at run time in a wheel and in a source checkout alike.
Everything else (metadata, dependencies, scripts) is in pyproject.toml.
"""

from setuptools import find_packages, setup

#: package -> source folder (relative to this file)
SHARED_DIRS = {"host._share.models": "models", "host._share.rtl": "rtl",
               "host._share.firmware": "firmware"}

#: files of each package that the wheel carries; the firmware's sub-folders are listed as
#: packages of their own so that setuptools ships their files as package data
SHARED_DATA = {
    "host._share.models": ["*.onnx", "cards.json", "README.md"],
    "host._share.rtl": ["*.v"],
    "host._share.firmware": ["Makefile"],
    "host._share.firmware.core": ["*.c", "*.h"],
    "host._share.firmware.nvm": ["*.c", "*.h"],
    "host._share.firmware.hal": ["*.h"],
    "host._share.firmware.targets": [],
    "host._share.firmware.targets.host": ["*.c", "*.h"],
}

setup(
    packages=find_packages(include=["host", "host.*"]) + list(SHARED_DATA),
    package_dir=SHARED_DIRS,
    package_data={"host.data": ["*.npz"], **SHARED_DATA},
)
