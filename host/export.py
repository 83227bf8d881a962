"""WeightSet -> memory image: choose a codec per tensor, fit its range, encode, pack.

A *codec plan* names a default codec and overrides by tensor/layer name pattern, e.g. keep the
first convolution in ``secded(parity8)`` and the rest in ``parity8``. Binarized tensors get
``sign`` unless an override names them. The quantisation range of range-based codecs (fixed,
hamming, gray, parity over those) is taken per model (one range over all tensors that share the
codec — our reading of seeds 000/001), per tensor, or per output channel.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from host.codecs import Codec, get_codec
from host.codecs.integer import IntCodec
from host.errors import FlipLabError
from host.image import WORD_BITS, Image, TensorEntry
from host.model import WeightSet, WeightTensor
from host.names import matches, short_names

GRANULARITIES = ("model", "tensor", "channel")


@dataclass(frozen=True)
class CodecPlan:
    """Which codec stores which tensor.

    ``default`` applies to every non-binarized tensor (``None``: ``fixed8`` for float tensors,
    ``int<bits>`` for integer QDQ codes, in the width the model declares: 4 for brevitas's
    4-bit weights stored as int8 codes, 32 for int32 biases); ``overrides`` are
    ``(pattern, spec)`` pairs matched with fnmatch against tensor and layer names, the first
    match winning.

    An integer tensor wider than the default's integers (an int32 bias under ``int8``) keeps
    ``int<its width>``, unprotected as the user asked; under a parity codec it is refused, the
    message naming the tensor and the override that stores it (see docs/models.md).
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

    def spec_for(self, t: WeightTensor, short: str = "") -> str:
        """The codec spec of ``t`` (``short``: its short name, host.names, also matched)."""
        for pattern, spec in self.overrides:
            if matches(t, short, pattern):
                return spec
        if t.binarized:
            return "sign"
        integer = np.issubdtype(t.values.dtype, np.integer)
        width = declared_width(t) if integer else None
        if self.default is not None:
            if width is not None:
                return _integer_spec(t, self.default, width)
            return self.default
        if integer:
            return f"int{width}"
        return "fixed8"


def declared_width(t: WeightTensor) -> int:
    """Bits per integer code the model declares (the quant record's, else the dtype's)."""
    if t.quant and t.quant.get("bits"):
        return int(t.quant["bits"])
    return t.values.dtype.itemsize * 8


def _integer_spec(t: WeightTensor, spec: str, width: int) -> str:
    """The user's default codec for integer codes, unless it cannot hold the declared width."""
    codec = get_codec(spec)
    inner = getattr(codec, "inner", None)
    plain = isinstance(codec, IntCodec)
    if not (plain or isinstance(inner, IntCodec)):
        return spec
    bits = codec.bits if plain else getattr(inner, "bits", 0)
    if bits >= width:
        return spec
    if plain:
        return f"int{width}"
    needed = _signed_bits(t.values)
    fix = f"--override '{t.name}=int{width}'"
    if needed + 1 <= 32:
        fix += f" (unprotected) or --override '{t.name}=parity(int{max(needed, 8)})'"
    raise FlipLabError(
        f"tensor {t.name!r} ({t.role} of {t.layer!r}) holds {width}-bit integers that {spec} "
        f"cannot store; store it with {fix}")


def _signed_bits(values: np.ndarray) -> int:
    """The narrowest two's-complement width holding every value (at least 2)."""
    lo, hi = (int(np.min(values)), int(np.max(values))) if values.size else (0, 0)
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


#: A float tensor whose clean quantisation SQNR is below this (dB) is reported...
LOW_SQNR_DB = 20.0
#: ...when per-channel ranges would raise it by at least this much (dB).
CHANNEL_GAIN_DB = 6.0


@dataclass(frozen=True)
class QuantisationError:
    """The clean quantisation error of one float tensor: what the codec loses with no bit
    error at all.

    ``sqnr_db`` = 10·log10(Σw² / Σ(w − ŵ)²) (inf when exact); ``sign_lost`` the share of
    nonzero weights whose decoded value ŵ does not have w's sign (rounded to 0 or flipped);
    ``channel_sqnr_db``: the same tensor with per-channel ranges (None when the codec has no
    range or the export already uses channel ranges).
    """

    tensor: str
    layer: str
    codec: str
    sqnr_db: float
    sign_lost: float
    channel_sqnr_db: float | None = None

    @property
    def channel_helps(self) -> bool:
        """True when this tensor loses clean accuracy that ``--range channel`` would keep."""
        return (self.channel_sqnr_db is not None and self.sqnr_db < LOW_SQNR_DB
                and self.channel_sqnr_db >= self.sqnr_db + CHANNEL_GAIN_DB)


@dataclass
class ExportReport:
    """What an export did, for the CLI's summary."""

    tensors: int = 0
    weights: int = 0
    payload_bytes: int = 0
    codecs: dict[str, int] = field(default_factory=dict)  # spec -> number of weights
    errors: list[QuantisationError] = field(default_factory=list)  # float tensors only

    def warnings(self, granularity: str) -> list[str]:
        """One line per tensor whose range setting loses clean accuracy, naming the better one."""
        return [f"tensor {e.tensor!r} ({e.layer}) in {e.codec} with --range {granularity}: clean "
                f"SQNR {e.sqnr_db:.1f} dB, {e.sign_lost:.1%} of weights lose their sign; "
                f"--range channel gives {e.channel_sqnr_db:.1f} dB"
                for e in self.errors if e.channel_helps]


def _sqnr_db(values: np.ndarray, decoded: np.ndarray) -> float:
    signal = float(np.sum(np.square(values, dtype=np.float64)))
    noise = float(np.sum(np.square(values.astype(np.float64) - decoded)))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")


def quantisation_error(t: WeightTensor, codec, params: dict, codes: np.ndarray,
                       granularity: str) -> QuantisationError:
    """Measure what ``codec`` with ``params`` loses on float tensor ``t`` with no bit error."""
    values = t.values.reshape(-1).astype(np.float64)
    decoded, _ = codec.decode(codes, params, dtype=np.float64)
    nonzero = values != 0
    lost = float(np.mean(np.sign(decoded[nonzero]) != np.sign(values[nonzero]))) if nonzero.any() else 0.0
    channel = None
    if granularity != "channel" and t.channel_axis is not None and "granularity" in params:
        channel_params = codec.fit(t.values, axis=t.channel_axis, granularity="channel")
        channel_decoded, _ = codec.decode(codec.encode(t.values, channel_params), channel_params,
                                          dtype=np.float64)
        channel = _sqnr_db(values, channel_decoded)
    return QuantisationError(t.name, t.layer, codec.spec, _sqnr_db(values, decoded), lost, channel)


#: weights encoded at a time where each is its own stored field (a codec's float64 and uint64
#: temporaries are some 10 bytes per weight each: bounded, whatever the tensor's size)
ENCODE_CHUNK = 1 << 20


def _encode(codec: Codec, values: np.ndarray, params: dict) -> np.ndarray:
    """``codec.encode(values, params)``, a chunk at a time where that is the same
    (:meth:`Codec.word_by_word`)."""
    if values.size <= ENCODE_CHUNK or not codec.word_by_word(params):
        return codec.encode(values, params)
    flat = values.reshape(-1)
    return np.concatenate([codec.encode(flat[i:i + ENCODE_CHUNK], params)
                           for i in range(0, flat.size, ENCODE_CHUNK)])


def build_image(ws: WeightSet, plan: CodecPlan, *, source: str = "",
                source_sha256: str = "", normalize: str | None = None,
                measure: bool = True) -> tuple[Image, ExportReport]:
    """Encode every weight tensor of ``ws`` with the plan's codec and pack them into an image.

    ``normalize``: the input normalisation spec the model expects, recorded in the image's
    ``model`` record (``host eval`` then uses it unless told otherwise). ``measure``: fill the
    report's quantisation errors (False: leave them out, e.g. for a campaign's images).
    """
    shorts = short_names(ws.tensors)
    for pattern, _ in plan.overrides:
        if not any(matches(t, short, pattern) for t, short in zip(ws.tensors, shorts)):
            raise FlipLabError(f"override pattern {pattern!r} matches no tensor or layer")
    specs = [plan.spec_for(t, short) for t, short in zip(ws.tensors, shorts)]
    model_ranges = _model_ranges(ws.tensors, specs)
    codecs = [get_codec(spec) for spec in specs]
    offsets = np.cumsum([0] + [-(-c.stored_bits(t.values.size) // WORD_BITS) * WORD_BITS
                               for t, c in zip(ws.tensors, codecs)])
    payload = np.zeros(int(offsets[-1]) // 8, dtype=np.uint8)  # each tensor packed into it
    entries = []
    report = ExportReport()
    if normalize is not None:
        from host.data import parse_normalization
        normalize = parse_normalization(normalize).spec
    for t, spec, codec, offset in zip(ws.tensors, specs, codecs, offsets.tolist()):
        kind = "int" if np.issubdtype(t.values.dtype, np.integer) else "float"
        # a nulled QDQ weight reads as its zero point, whose dequantised value is 0
        try:
            params = codec.fit(t.values, axis=t.channel_axis, granularity=plan.granularity,
                               model_range=model_ranges.get((spec, kind)),
                               zero_point=t.quant["zero_point"] if t.quant else None)
            codes = _encode(codec, t.values, params)
        except FlipLabError as error:
            raise FlipLabError(f"tensor {t.name!r} ({t.role} of {t.layer!r}): {error}") from None
        if measure and kind == "float" and not t.binarized and t.values.size:
            report.errors.append(quantisation_error(t, codec, params, codes, plan.granularity))
        stored = codec.stored_bits(t.values.size)
        entries.append(TensorEntry(
            name=t.name, layer=t.layer, op_type=t.op_type, role=t.role,
            shape=tuple(int(s) for s in t.values.shape), dtype=t.values.dtype.name, codec=codec.spec,
            params=params, bit_offset=offset, stored_bits=stored, count=int(t.values.size),
            binarized=t.binarized))
        segment = codec.pack(codes)
        del codes
        payload[offset // 8: offset // 8 + segment.size] = segment
        report.codecs[codec.spec] = report.codecs.get(codec.spec, 0) + int(t.values.size)
    graph = ws.graph.SerializeToString()
    model = {"input": ws.input_name, "input_shape": list(ws.input_shape),
             "output": ws.output_name, "source": source, "source_sha256": source_sha256,
             "graph_sha256": hashlib.sha256(graph).hexdigest()}
    if ws.input_dtype != "float32":
        model["input_dtype"] = ws.input_dtype  # optional: absent means float32
    if normalize is not None:
        model["normalize"] = normalize  # optional: the input normalisation chosen at export
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
                      source_sha256: str = "", normalize: str | None = None,
                      measure: bool = True) -> tuple[Image, ExportReport]:
    """``host export --lower accel``: lower the model to the accelerator's layer program
    (host.hw.lower, docs/datapath.md), pack only its weights, and store the program in the
    image. A ``sign``-family default codec (``--codec 'parity(sign)'``) applies to the
    binarized weights of a binarized model."""
    from host.hw.lower import attach_program, lower_model

    lowered, program = lower_model(ws)
    if plan.default in ("sign", "parity(sign)"):  # after the user's overrides: first match wins
        extra = tuple((t.name, plan.default) for t in lowered.tensors if t.binarized)
        plan = CodecPlan(plan.default, plan.overrides + extra, plan.granularity)
    image, report = build_image(lowered, plan, source=source, source_sha256=source_sha256,
                                measure=measure,
                                normalize=normalize)
    image.program = attach_program(program, image.tensors)
    return image, report


#: ``host export --data``: a clean image this many points below the float model is reported.
CLEAN_LOSS = 0.01


def clean_check(ws: WeightSet, plan: CodecPlan, image: Image, data) -> tuple[dict, list[str]]:
    """``host export --data``: the clean image's accuracy beside the model's own (its weights
    stored exactly, ``float32``) on ``data`` (a DataSpec); when the image loses more than
    ``CLEAN_LOSS`` and the range is not per channel, also the ``--range channel`` image's.

    Returns ({"accuracy", "model_accuracy"[, "channel_accuracy"]}, warning lines).
    """
    from host.evaluate import evaluate_image

    x, y = data.load_for(image.model)
    exact = CodecPlan("float32", plan.overrides, plan.granularity)
    result = {"accuracy": evaluate_image(image, x, y).accuracy,
              "model_accuracy": evaluate_image(build_image(ws, exact)[0], x, y).accuracy}
    warnings = []
    loss = result["model_accuracy"] - result["accuracy"]
    if loss > CLEAN_LOSS:
        line = (f"the clean image scores {result['accuracy']:.4f}, the model itself "
                f"{result['model_accuracy']:.4f}: the codec loses {loss:.1%} with no bit error")
        if plan.granularity != "channel":
            channel = CodecPlan(plan.default, plan.overrides, "channel")
            result["channel_accuracy"] = evaluate_image(build_image(ws, channel)[0], x, y).accuracy
            line += f"; --range channel scores {result['channel_accuracy']:.4f}"
        warnings.append(line)
    return result, warnings
