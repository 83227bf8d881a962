"""WeightSet -> memory image: choose a codec per tensor, fit its range, encode, pack.

A *codec plan* names a default codec and overrides by tensor/layer name pattern, e.g. keep the
first convolution in ``secded(parity8)`` and the rest in ``parity8``. Binarized tensors get
``sign`` unless an override names them. The quantisation range of range-based codecs (fixed,
hamming, gray, parity over those) is taken per model (one range over all tensors that share the
codec — our reading of seeds 000/001), per tensor, or per output channel.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from host.codecs import get_codec
from host.errors import FlipLabError
from host.image import WORD_BITS, Image, TensorEntry
from host.model import WeightSet, WeightTensor

GRANULARITIES = ("model", "tensor", "channel")


@dataclass(frozen=True)
class CodecPlan:
    """Which codec stores which tensor.

    ``default`` applies to every non-binarized tensor (``None``: ``fixed8`` for float tensors,
    the exact ``int<bits>`` for integer QDQ codes); ``overrides`` are ``(pattern, spec)`` pairs
    matched with fnmatch against tensor and layer names, the first match winning.
    """

    default: str | None = None
    overrides: tuple[tuple[str, str], ...] = ()
    granularity: str = "model"

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise FlipLabError(f"unknown range granularity {self.granularity!r}; "
                               f"choose one of {', '.join(GRANULARITIES)}")
        for spec in [self.default] + [s for _, s in self.overrides]:
            if spec is not None:
                get_codec(spec)  # validates the spec early, with its own message

    @staticmethod
    def parse_override(text: str) -> tuple[str, str]:
        """``'conv1*=secded(parity8)'`` -> ``('conv1*', 'secded(parity8)')``."""
        pattern, sep, spec = text.partition("=")
        if not sep or not pattern or not spec:
            raise FlipLabError(f"override {text!r} is not PATTERN=CODEC (e.g. 'conv1*=secded(parity8)')")
        return pattern.strip(), spec.strip()

    def spec_for(self, t: WeightTensor) -> str:
        for pattern, spec in self.overrides:
            if fnmatch.fnmatchcase(t.name, pattern) or fnmatch.fnmatchcase(t.layer, pattern):
                return spec
        if t.binarized:
            return "sign"
        if self.default is not None:
            return self.default
        if np.issubdtype(t.values.dtype, np.integer):
            return f"int{t.values.dtype.itemsize * 8}"
        return "fixed8"


@dataclass
class ExportReport:
    """What an export did, for the CLI's summary."""

    tensors: int = 0
    weights: int = 0
    payload_bytes: int = 0
    codecs: dict[str, int] = field(default_factory=dict)  # spec -> number of weights


def build_image(ws: WeightSet, plan: CodecPlan, *, source: str = "",
                source_sha256: str = "") -> tuple[Image, ExportReport]:
    """Encode every weight tensor of ``ws`` with the plan's codec and pack them into an image."""
    specs = [plan.spec_for(t) for t in ws.tensors]
    for pattern, _ in plan.overrides:
        if not any(fnmatch.fnmatchcase(t.name, pattern) or fnmatch.fnmatchcase(t.layer, pattern)
                   for t in ws.tensors):
            raise FlipLabError(f"override pattern {pattern!r} matches no tensor or layer")
    model_ranges = _model_ranges(ws.tensors, specs)
    entries, segments, offset = [], [], 0
    report = ExportReport()
    for t, spec in zip(ws.tensors, specs):
        codec = get_codec(spec)
        kind = "int" if np.issubdtype(t.values.dtype, np.integer) else "float"
        # a nulled QDQ weight reads as its zero point, whose dequantised value is 0
        params = codec.fit(t.values, axis=t.channel_axis, granularity=plan.granularity,
                           model_range=model_ranges.get((spec, kind)),
                           zero_point=t.quant["zero_point"] if t.quant else None)
        codes = codec.encode(t.values, params)
        stored = codec.stored_bits(t.values.size)
        entries.append(TensorEntry(
            name=t.name, layer=t.layer, op_type=t.op_type, role=t.role,
            shape=tuple(int(s) for s in t.values.shape), dtype=t.values.dtype.name, codec=codec.spec,
            params=params, bit_offset=offset, stored_bits=stored, count=int(t.values.size),
            binarized=t.binarized))
        segments.append(codec.pack(codes))
        offset += -(-stored // WORD_BITS) * WORD_BITS
        report.codecs[codec.spec] = report.codecs.get(codec.spec, 0) + int(t.values.size)
    payload = np.zeros(offset // 8, dtype=np.uint8)
    for e, seg in zip(entries, segments):
        payload[e.bit_offset // 8: e.bit_offset // 8 + seg.size] = seg
    graph = ws.graph.SerializeToString()
    model = {"input": ws.input_name, "input_shape": list(ws.input_shape),
             "output": ws.output_name, "source": source, "source_sha256": source_sha256,
             "graph_sha256": hashlib.sha256(graph).hexdigest()}
    report.tensors, report.weights = len(entries), sum(e.count for e in entries)
    report.payload_bytes = int(payload.size)
    return Image(entries, model, graph, payload), report


def _model_ranges(tensors: list[WeightTensor], specs: list[str]) -> dict:
    """One [min, max] over all tensors sharing a codec spec (and value kind): 'per model'."""
    ranges: dict[tuple[str, str], tuple[float, float]] = {}
    for t, spec in zip(tensors, specs):
        if t.values.size == 0:
            continue
        kind = "int" if np.issubdtype(t.values.dtype, np.integer) else "float"
        lo, hi = float(np.min(t.values)), float(np.max(t.values))
        old = ranges.get((spec, kind))
        ranges[(spec, kind)] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return ranges


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_accel_image(ws: WeightSet, plan: CodecPlan, *, source: str = "",
                      source_sha256: str = "") -> tuple[Image, ExportReport]:
    """``host export --lower accel``: lower the model to the accelerator's layer program
    (host.hw.lower, docs/datapath.md), pack only its weights, and store the program in the
    image. A ``sign``-family default codec (``--codec 'parity(sign)'``) applies to the
    binarized weights of a binarized model."""
    from host.hw.lower import attach_program, lower_model

    lowered, program = lower_model(ws)
    if plan.default in ("sign", "parity(sign)"):  # after the user's overrides: first match wins
        extra = tuple((t.name, plan.default) for t in lowered.tensors if t.binarized)
        plan = CodecPlan(plan.default, plan.overrides + extra, plan.granularity)
    image, report = build_image(lowered, plan, source=source, source_sha256=source_sha256)
    image.program = attach_program(program, image.tensors)
    return image, report
