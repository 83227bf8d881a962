"""Readable short names for weight tensors, and the one rule that matches a tensor pattern.

Exporters name weights opaquely (the legacy exporter's ``onnx::LSTM_109``, the default
exporter's ``val_43``, brevitas's ``slice_1``); the layer that reads a tensor is usually
readable (``/rnn/LSTM``, ``node_linear_1``). A tensor's *short name* is its layer's path
without the exporter's decoration, dot-joined, plus the tensor's role::

    /rnn/LSTM      + recurrence  ->  rnn.recurrence
    /fc1/Gemm      + weight      ->  fc1.weight
    node_linear_1  + bias        ->  linear_1.bias

(a leading ``/``, a trailing ``/<op_type>`` and a leading ``node_`` are dropped; a collision
within one model gets ``_2``, ``_3``… in graph order). ``--tensors`` / ``--override`` patterns
match a tensor's name, its layer or its short name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Protocol


class Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def layer(self) -> str: ...
    @property
    def op_type(self) -> str: ...
    @property
    def role(self) -> str: ...


def layer_stem(layer: str, op_type: str) -> str:
    """``/rnn/LSTM`` -> ``rnn``; ``node_linear_1`` -> ``linear_1``; ``Conv_3`` -> ``Conv_3``."""
    stem = layer.strip("/")
    if op_type and stem.endswith("/" + op_type):
        stem = stem[: -len(op_type) - 1]
    if stem.startswith("node_") and len(stem) > len("node_"):
        stem = stem[len("node_"):]
    stem = stem.replace("/", ".").strip(".")
    return stem or op_type.lower() or "layer"


def short_names(tensors: Sequence[Named]) -> list[str]:
    """The short name of each tensor (same order), unique within ``tensors``."""
    taken: dict[str, int] = {}
    names = []
    for t in tensors:
        base = f"{layer_stem(t.layer, t.op_type)}.{t.role}"
        count = taken.get(base, 0) + 1
        taken[base] = count
        names.append(base if count == 1 else f"{base}_{count}")
    return names


def matches(t: Named, short: str, pattern: str) -> bool:
    """True when the fnmatch ``pattern`` (case-sensitive) matches the tensor's name, layer or
    short name."""
    return any(fnmatch.fnmatchcase(text, pattern) for text in (t.name, t.layer, short))


def select(tensors: Sequence[Named], patterns: Iterable[str], what: str) -> list:
    """The tensors matching any plain pattern (every tensor when all patterns are exclusions)
    minus those matching any ``!PATTERN``, in order; a pattern that matches none is an error
    naming ``what`` (e.g. "tensor or layer of the image")."""
    from host.errors import FlipLabError

    patterns = list(patterns)
    shorts = short_names(tensors)
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    for p in include + exclude:
        if not p:
            raise FlipLabError("empty tensor pattern ('!' needs a pattern after it)")
        if not any(matches(t, s, p) for t, s in zip(tensors, shorts)):
            raise FlipLabError(f"pattern {p!r} matches no {what}")
    return [t for t, s in zip(tensors, shorts)
            if (not include or any(matches(t, s, p) for p in include))
            and not any(matches(t, s, p) for p in exclude)]
