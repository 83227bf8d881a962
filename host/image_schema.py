"""The schema of an image's tensor table, checked in full before anything reads it.

The CRCs of the header and table only say that the metadata is what was written; they say
nothing about whether what was written makes sense (a hand-edited table, another tool's
writer, a fuzzer). :func:`validate_table` checks every field of the parsed JSON — types,
ranges, finite numbers, shape against count, dtype, codec spec and the codec's own parameters,
bit layout, the ``model`` fields and the accelerator ``program`` — and
:func:`validate_graph` checks that the graph takes each tensor in the stored dtype and shape.
Each failure is one :class:`~host.errors.FlipLabError` line naming the field, e.g.
``tensor 'fc1.weight': shape[0] = -64 is negative``. docs/image-format.md lists the fields.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import ml_dtypes  # noqa: F401  (registers bfloat16 / float8 with numpy, for np.dtype(name))
import numpy as np

from host.codecs import Codec, get_codec
from host.codecs.base import GRANULARITIES
from host.codecs.fixed import FixedCodec
from host.codecs.ieee import FloatCodec
from host.codecs.integer import IntCodec
from host.codecs.parity import ParityCodec
from host.codecs.reliable import ReliableCodec
from host.codecs.secded import SecdedCodec
from host.codecs.sign import SignCodec
from host.errors import FlipLabError

FORMAT = "fliplab-image"
PROGRAM_FORMAT = "fliplab-accel-program"
#: numpy dtype names a tensor may be consumed in by the graph
DTYPES = frozenset({
    "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz",
    "float8_e5m2", "float8_e5m2fnuz", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64",
})
MAX_DIMS = 8  # tensor rank
MAX_WEIGHTS = 1 << 36  # per tensor; far above any model that fits a memory image
MAX_TENSORS = 1 << 16
MAX_NAME = 1024  # characters of a tensor / layer / input name
MAX_INT32 = (1 << 31) - 1
_TENSOR_KEYS = {"name": str, "layer": str, "op_type": str, "role": str, "shape": list,
                "dtype": str, "codec": str, "params": dict, "bit_offset": int,
                "stored_bits": int, "count": int}


def _fail(where: str, message: str) -> FlipLabError:
    return FlipLabError(f"{where}: {message}")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any, where: str, field: str, lo: int, hi: int) -> int:
    if not _is_int(value):
        raise _fail(where, f"{field} must be an integer, got {_type_name(value)} {value!r:.40}")
    if value < lo:
        raise _fail(where, f"{field} = {value} is negative" if lo == 0 and value < 0
                    else f"{field} = {value} is below {lo}")
    if value > hi:
        raise _fail(where, f"{field} = {value} is above the limit {hi}")
    return value


def _finite(value: Any, where: str, field: str) -> float:
    if not _is_number(value):
        raise _fail(where, f"{field} must be a number, got {_type_name(value)} {value!r:.40}")
    if not math.isfinite(value):
        raise _fail(where, f"{field} = {value} is not finite")
    try:
        return float(value)
    except OverflowError:
        raise _fail(where, f"{field} = {value!r:.40} is too large") from None


def _string(value: Any, where: str, field: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"{field} must be a string, got {_type_name(value)} {value!r:.40}")
    if not empty and not value:
        raise _fail(where, f"{field} is empty")
    if len(value) > MAX_NAME and field not in ("source",):
        raise _fail(where, f"{field} is {len(value)} characters, more than {MAX_NAME}")
    return value


def _int_list(value: Any, where: str, field: str, length: int, lo: int, hi: int) -> None:
    if not isinstance(value, list):
        raise _fail(where, f"{field} must be a list, got {_type_name(value)}")
    if len(value) != length:
        raise _fail(where, f"{field} has {len(value)} entries, expected {length}")
    for i, v in enumerate(value):
        _int(v, where, f"{field}[{i}]", lo, hi)


def _number_list(value: Any, where: str, field: str, length: int) -> None:
    if not isinstance(value, list):
        raise _fail(where, f"{field} must be a list, got {_type_name(value)}")
    if len(value) != length:
        raise _fail(where, f"{field} has {len(value)} entries, expected {length}")
    for i, v in enumerate(value):
        _finite(v, where, f"{field}[{i}]")


# ---------------------------------------------------------------------------------------------
# the table

def validate_table(table: Any, what: str, payload_bits: int) -> None:
    """Check a parsed tensor table in full; FlipLabError (one line, naming the field) if not.

    ``payload_bits`` is the size of the payload the table describes (every tensor must fit).
    """
    if not isinstance(table, dict):
        raise _fail(what, f"tensor table must be a JSON object, got {_type_name(table)}")
    if table.get("format") != FORMAT:
        raise _fail(what, f"tensor table format is {table.get('format')!r:.40}, expected {FORMAT!r}")
    for key in ("model", "tensors"):
        if key not in table:
            raise _fail(what, f"tensor table lacks {key!r}")
    _validate_model(table["model"], f"{what}: model")
    rows = table["tensors"]
    if not isinstance(rows, list):
        raise _fail(what, f"'tensors' must be a list, got {_type_name(rows)}")
    if len(rows) > MAX_TENSORS:
        raise _fail(what, f"'tensors' has {len(rows)} entries, more than {MAX_TENSORS}")
    names: set[str] = set()
    extents = []
    for index, row in enumerate(rows):
        name = _validate_tensor(row, what, index, payload_bits)
        if name in names:
            raise _fail(what, f"tensor {name!r} appears twice")
        names.add(name)
        extents.append((row["bit_offset"], row["stored_bits"], name))
    end = 0
    for offset, bits, name in sorted(extents):
        if offset < end:
            raise _fail(what, f"tensor {name!r}: bits {offset}.. overlap the tensor before it")
        end = offset + bits
    if "program" in table and table["program"] is not None:
        _validate_program(table["program"], f"{what}: program",
                          {r["name"]: r for r in rows}, payload_bits)


def _validate_model(model: Any, where: str) -> None:
    if not isinstance(model, dict):
        raise _fail(where, f"must be a JSON object, got {_type_name(model)}")
    for key in ("input", "output", "input_shape"):
        if key not in model:
            raise _fail(where, f"lacks {key!r}")
    _string(model["input"], where, "input", empty=False)
    _string(model["output"], where, "output", empty=False)
    shape = model["input_shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise _fail(where, f"input_shape must be a list of at most {MAX_DIMS} entries, got "
                           f"{shape!r:.60}")
    for i, dim in enumerate(shape):
        if isinstance(dim, str):
            _string(dim, where, f"input_shape[{i}]")
        elif dim is not None:
            _int(dim, where, f"input_shape[{i}]", 0, MAX_WEIGHTS)
    for key in ("source", "source_sha256", "graph_sha256"):
        if key in model:
            _string(model[key], where, key)


def _validate_tensor(row: Any, what: str, index: int, payload_bits: int) -> str:
    if not isinstance(row, dict):
        raise _fail(what, f"tensors[{index}] must be a JSON object, got {_type_name(row)}")
    name = row.get("name")
    where = f"{what}: tensor {name!r:.80}" if isinstance(name, str) else f"{what}: tensors[{index}]"
    for key, kind in _TENSOR_KEYS.items():
        if key not in row:
            raise _fail(where, f"lacks {key!r}")
        value = row[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            wanted = {int: "an integer", str: "a string", list: "a list",
                      dict: "a JSON object"}[kind]
            raise _fail(where, f"{key} must be {wanted}, got {_type_name(value)} {value!r:.40}")
    for key in ("name", "layer", "op_type", "role"):
        _string(row[key], where, key, empty=key != "name" and key != "layer")
    if not row["name"]:
        raise _fail(where, "name is empty")
    if "binarized" in row and not isinstance(row["binarized"], bool):
        raise _fail(where, f"binarized must be true or false, got {row['binarized']!r:.40}")
    shape = row["shape"]
    if len(shape) > MAX_DIMS:
        raise _fail(where, f"shape has {len(shape)} dimensions, more than {MAX_DIMS}")
    for i, dim in enumerate(shape):
        _int(dim, where, f"shape[{i}]", 0, MAX_WEIGHTS)
    count = _int(row["count"], where, "count", 0, MAX_WEIGHTS)
    if math.prod(shape) != count:
        raise _fail(where, f"shape {shape} holds {math.prod(shape)} weights but count is {count}")
    if row["dtype"] not in DTYPES:
        raise _fail(where, f"dtype {row['dtype']!r:.40} is not one of {', '.join(sorted(DTYPES))}")
    try:
        codec = get_codec(row["codec"])
    except FlipLabError as exc:
        raise _fail(where, str(exc)) from None
    if codec.spec != row["codec"]:
        raise _fail(where, f"codec {row['codec']!r:.40} is not in canonical form ({codec.spec!r})")
    validate_params(codec, row["params"], shape, row["dtype"], f"{where}: params")
    bit_offset = _int(row["bit_offset"], where, "bit_offset", 0, payload_bits)
    if bit_offset % 32:
        raise _fail(where, f"bit_offset = {bit_offset} is not a multiple of 32")
    stored = _int(row["stored_bits"], where, "stored_bits", 0, payload_bits)
    if stored != codec.stored_bits(count):
        raise _fail(where, f"stored_bits = {stored}, but {count} weights in {codec.spec} take "
                           f"{codec.stored_bits(count)}")
    if bit_offset + stored > payload_bits:
        raise _fail(where, f"bits {bit_offset}..{bit_offset + stored} lie beyond the "
                           f"{payload_bits}-bit payload")
    return row["name"]


# ---------------------------------------------------------------------------------------------
# codec parameters

def _base_codec(codec: Codec) -> Codec:
    while isinstance(codec, (ParityCodec, SecdedCodec, ReliableCodec)):
        codec = codec.inner
    return codec


def validate_params(codec: Codec, params: Any, shape: list[int], dtype: str, where: str) -> None:
    """``params`` are what ``codec.fit`` produces for a tensor of ``shape`` consumed as ``dtype``:
    the codec's own keys, of the right types, finite, per-channel lists of the right length."""
    if not isinstance(params, dict):
        raise _fail(where, f"must be a JSON object, got {_type_name(params)}")
    base = _base_codec(codec)
    if isinstance(base, FloatCodec):
        allowed: set[str] = set()
        numbers: tuple[str, ...] = ()
    elif isinstance(base, FixedCodec):
        allowed, numbers = {"granularity", "axis", "shape", "w_min", "w_max"}, ("w_min", "w_max")
    elif isinstance(base, SignCodec):
        allowed, numbers = {"granularity", "axis", "shape", "scale"}, ("scale",)
    elif isinstance(base, IntCodec):
        if params.get("kind") == "integer":
            allowed = {"kind", "granularity", "axis", "shape", "dtype", "offset", "zero_point"}
            numbers = ()
        elif params.get("kind") == "scale":
            allowed, numbers = {"kind", "granularity", "axis", "shape", "scale"}, ("scale",)
        else:
            raise _fail(where, f"kind must be 'integer' or 'scale' for {codec.spec}, got "
                               f"{params.get('kind')!r:.40}")
    else:  # a codec family this schema does not know: a bug, not a user's error
        raise AssertionError(f"no parameter schema for codec {codec.spec}")
    extra = sorted(set(params) - allowed)
    if extra:
        raise _fail(where, f"unknown key {extra[0]!r:.40} for codec {codec.spec}")
    channels = 1
    granularity = params.get("granularity", "tensor")
    if "granularity" in params and granularity not in GRANULARITIES:
        raise _fail(where, f"granularity {granularity!r:.40} is not one of {', '.join(GRANULARITIES)}")
    if granularity == "channel":
        for key in ("axis", "shape"):
            if key not in params:
                raise _fail(where, f"per-channel params lack {key!r}")
        if params["shape"] != shape:
            raise _fail(where, f"shape {params['shape']!r:.60} differs from the tensor's {shape}")
        axis = _int(params["axis"], where, "axis", 0, max(len(shape) - 1, 0))
        if not shape:
            raise _fail(where, "per-channel params on a 0-D tensor")
        channels = shape[axis]
    elif "axis" in params or "shape" in params:
        raise _fail(where, f"axis/shape given with granularity {granularity!r}")
    for key in numbers:
        if key not in params and not isinstance(base, SignCodec):
            raise _fail(where, f"lacks {key!r}")
        if key in params:
            _scalar_or_channels(params[key], where, key, channels, granularity)
    if isinstance(base, FixedCodec):
        lo, hi = (np.broadcast_to(np.asarray(params[k], dtype=np.float64), (channels,))
                  for k in ("w_min", "w_max"))
        if (hi < lo).any():
            raise _fail(where, "w_max is below w_min")
    if "scale" in params and (np.asarray(params["scale"], dtype=np.float64) < 0).any():
        raise _fail(where, "scale is negative")
    _check_decoded_range(base, params, dtype, where)
    if isinstance(base, IntCodec) and params.get("kind") == "integer":
        for key in ("dtype", "offset", "zero_point"):
            if key not in params:
                raise _fail(where, f"lacks {key!r}")
        if params["dtype"] != dtype or np.dtype(dtype).kind not in "iu":
            raise _fail(where, f"dtype {params['dtype']!r:.40} must be the tensor's integer "
                               f"dtype ({dtype})")
        _int(params["offset"], where, "offset", 0, 1 << (base.bits - 1))
        info = np.iinfo(np.dtype(dtype))
        zp = params["zero_point"]
        if isinstance(zp, list):
            _int_list(zp, where, "zero_point", channels, int(info.min), int(info.max))
        else:
            _int(zp, where, "zero_point", int(info.min), int(info.max))


def _check_decoded_range(base: Codec, params: dict, dtype: str, where: str) -> None:
    """Every decoded value must be representable in the tensor's float dtype (a w_max of 1e308
    is finite, but not in float32)."""
    np_dtype = np.dtype(dtype)
    if np_dtype.kind not in "fV" or isinstance(base, FloatCodec):
        return
    limit = float(ml_dtypes.finfo(np_dtype).max)
    if isinstance(base, FixedCodec):
        extent = max(float(np.max(np.abs(np.asarray(params[k], dtype=np.float64))))
                     for k in ("w_min", "w_max"))
    elif "scale" in params:
        extent = float(np.max(np.asarray(params["scale"], dtype=np.float64))) * 2.0 ** base.bits
    else:
        return
    if extent > limit:
        raise _fail(where, f"values up to {extent:.3g} do not fit {dtype} (largest {limit:.3g})")


def _scalar_or_channels(value: Any, where: str, key: str, channels: int, granularity: str) -> None:
    if isinstance(value, list):
        if granularity != "channel" and len(value) != 1:
            raise _fail(where, f"{key} is a list of {len(value)} without per-channel granularity")
        if len(value) not in (1, channels):
            raise _fail(where, f"{key} has {len(value)} entries for {channels} channels")
        for i, v in enumerate(value):
            _finite(v, where, f"{key}[{i}]")
    else:
        _finite(value, where, key)


# ---------------------------------------------------------------------------------------------
# the accelerator program

def _validate_program(program: Any, where: str, tensors: dict[str, dict], payload_bits: int) -> None:
    from host.hw.lower import BINARY_CODECS, INT8_CODECS

    if not isinstance(program, dict):
        raise _fail(where, f"must be a JSON object, got {_type_name(program)}")
    if program.get("format") != PROGRAM_FORMAT:
        raise _fail(where, f"format is {program.get('format')!r:.40}, expected {PROGRAM_FORMAT!r}")
    layers = program.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _fail(where, "layers must be a non-empty list")
    n_prev = None
    for index, layer in enumerate(layers):
        at = f"{where}: layers[{index}]"
        if not isinstance(layer, dict):
            raise _fail(at, f"must be a JSON object, got {_type_name(layer)}")
        for key in ("name", "weight", "type", "codec"):
            _string(layer.get(key), at, key, empty=False)
        kind = layer["type"]
        if kind not in ("int8", "binary"):
            raise _fail(at, f"type {kind!r:.40} is not 'int8' or 'binary'")
        n_in = _int(layer.get("n_in"), at, "n_in", 1, 1 << 16)
        n_out = _int(layer.get("n_out"), at, "n_out", 1, 1 << 16)
        if n_prev is not None and n_in != n_prev:
            raise _fail(at, f"n_in = {n_in} but the layer before gives {n_prev} outputs")
        n_prev = n_out
        entry = tensors.get(layer["weight"])
        if entry is None:
            raise _fail(at, f"weight {layer['weight']!r:.80} is not in the tensor table")
        table = INT8_CODECS if kind == "int8" else BINARY_CODECS
        if layer["codec"] != entry["codec"] or entry["codec"] not in table:
            raise _fail(at, f"codec {layer['codec']!r:.40} is not the weight's "
                            f"({entry['codec']!r:.40}) or not one of {', '.join(table)}")
        if entry["count"] != n_in * n_out:
            raise _fail(at, f"n_in x n_out = {n_in * n_out} but weight {layer['weight']!r:.80} "
                            f"holds {entry['count']}")
        q, parity = table[entry["codec"]]
        if layer.get("q") != q or layer.get("parity") is not parity:
            raise _fail(at, f"q/parity must be {q}/{parity} for codec {entry['codec']}")
        if layer.get("bit_offset") != entry["bit_offset"]:
            raise _fail(at, f"bit_offset {layer.get('bit_offset')!r:.40} is not the weight's "
                            f"{entry['bit_offset']}")
        if kind == "int8":
            if not isinstance(layer.get("act"), bool):
                raise _fail(at, "act must be true or false")
            _int_list(layer.get("bias"), at, "bias", n_out, -MAX_INT32 - 1, MAX_INT32)
            _int_list(layer.get("m"), at, "m", n_out, 0, MAX_INT32)
            _int_list(layer.get("s"), at, "s", n_out, 0, 62)
            for key in ("t", "lo", "hi", "in_zero_point", "out_zero_point"):
                _int(layer.get(key), at, key, -MAX_INT32 - 1, MAX_INT32)
            _finite(layer.get("out_scale"), at, "out_scale")
        else:
            out = layer.get("out")
            if out not in ("bits", "z"):
                raise _fail(at, f"out {out!r:.40} is not 'bits' or 'z'")
            if out == "bits":
                _int_list(layer.get("tau"), at, "tau", n_out, -MAX_INT32 - 1, MAX_INT32)
    for side in ("input", "output"):
        spec = program.get(side)
        at = f"{where}: {side}"
        if not isinstance(spec, dict):
            raise _fail(at, f"must be a JSON object, got {_type_name(spec)}")
        kind = spec.get("kind")
        if kind == "int8":
            _finite(spec.get("scale"), at, "scale")
            _int(spec.get("zero_point"), at, "zero_point", -128, 127)
        elif side == "input" and kind == "binary":
            _finite(spec.get("threshold"), at, "threshold")
        elif side == "output" and kind == "affine":
            _number_list(spec.get("scale"), at, "scale", n_prev or 0)
            _number_list(spec.get("offset"), at, "offset", n_prev or 0)
        else:
            raise _fail(at, f"kind {kind!r:.40} is not known")


# ---------------------------------------------------------------------------------------------
# the graph

def validate_graph(graph: bytes, model: dict, tensors: list, what: str) -> None:
    """The graph (when the image carries one) parses, matches ``graph_sha256``, has the named
    input and output, and takes every tensor of the table in its stored dtype and shape."""
    if not graph:
        return
    if "graph_sha256" in model and hashlib.sha256(graph).hexdigest() != model["graph_sha256"]:
        raise _fail(what, "model graph does not match its graph_sha256")
    import onnx

    from host.model.feeding import weight_slots

    try:
        proto = onnx.load_model_from_string(graph)
    except Exception:  # protobuf raises its own DecodeError type
        raise _fail(what, "model graph cannot be parsed as ONNX") from None
    g = proto.graph
    if model["input"] not in {v.name for v in g.input}:
        raise _fail(what, f"model input {model['input']!r:.80} is not an input of the graph")
    if model["output"] not in {v.name for v in g.output}:
        raise _fail(what, f"model output {model['output']!r:.80} is not an output of the graph")
    slots = weight_slots(proto)
    for t in tensors:
        slot = slots.get(t.name)
        if slot is None:
            raise _fail(what, f"tensor {t.name!r:.80} is not a weight the graph takes")
        tensor_type = slot.type.tensor_type
        try:
            expected = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
        except (KeyError, TypeError, ValueError):
            raise _fail(what, f"graph gives weight {t.name!r:.80} an unsupported element type") \
                from None
        dims = tuple(d.dim_value for d in tensor_type.shape.dim)
        if np.dtype(t.dtype) != expected or tuple(t.shape) != dims:
            raise _fail(what, f"tensor {t.name!r:.80} is {t.dtype}{list(t.shape)} but the graph "
                              f"takes {expected}{list(dims)}")
