"""Executors, chosen by name: what runs a model from a memory image.

=============  ====================================================================
name           what runs
=============  ====================================================================
onnxruntime    the ONNX graph with the decoded weights (host.executors.ort)
reference      the accelerator's integer reference, host/hw, on the layer program
rtl            the Verilog accelerator under cocotb + Icarus (host.sim)
board          the accelerator on an FPGA board over the serial protocol v2 (host.board.accel)
=============  ====================================================================

Each module is imported only when its executor is asked for, so naming a backend costs
nothing until it runs. ``get_executor(name)`` returns the class (see
:class:`~host.executors.base.Executor`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from host.errors import FlipLabError

if TYPE_CHECKING:
    from host.executors.base import Executor

#: name -> "module:class", imported on first use
_REGISTRY: dict[str, str] = {
    "onnxruntime": "host.executors.ort:OnnxExecutor",
    "reference": "host.executors.reference:ReferenceExecutor",
    "rtl": "host.executors.rtl:RtlExecutor",
    "board": "host.executors.board:BoardExecutor",
}

DEFAULT = "onnxruntime"


def executor_names() -> list[str]:
    """The registered executor names, default first."""
    return [DEFAULT] + sorted(n for n in _REGISTRY if n != DEFAULT)


def register(name: str, target: str) -> None:
    """Register an executor class under ``name``; ``target`` is ``"module:Class"``."""
    if name in _REGISTRY and _REGISTRY[name] != target:
        raise FlipLabError(f"executor {name!r} is registered already")
    _REGISTRY[name] = target


def get_executor(name: str) -> type[Executor]:
    """The executor class registered as ``name``."""
    target = _REGISTRY.get(name)
    if target is None:
        raise FlipLabError(f"unknown backend {name!r}; choose one of "
                           f"{', '.join(executor_names())}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
