"""host.image_schema: every field of a tensor table is checked before use, one line per error.

The damaged tables are made from real exports with ``reseal`` (both CRCs valid), so each one
reaches the schema rather than stopping at a CRC check.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.errors import FlipLabError
from host.export import CodecPlan, build_accel_image, build_image
from host.image import HEADER_SIZE, _parse_header, image_bytes, parse_image, reseal
from host.model import load_model
from host.models import resolve_model


def _export(model: str, codec: str | None = None, granularity: str = "model", accel=False) -> bytes:
    ws = load_model(resolve_model(model))
    build = build_accel_image if accel else build_image
    image, _ = build(ws, CodecPlan(codec, (), granularity), source=model)
    return image_bytes(image)


@pytest.fixture(scope="module")
def mlp() -> bytes:
    return _export("digits_mlp")


@pytest.fixture(scope="module")
def mlp_channel() -> bytes:
    return _export("digits_mlp", "parity8", "channel")


@pytest.fixture(scope="module")
def int8_accel() -> bytes:
    return _export("digits_mlp_int8", accel=True)


def table_of(buf: bytes) -> dict:
    _, tlen, *_ = _parse_header(buf, "image")
    return json.loads(buf[HEADER_SIZE:HEADER_SIZE + tlen])


def damaged(buf: bytes, edit) -> bytes:
    table = copy.deepcopy(table_of(buf))
    edit(table)
    return reseal(buf, json.dumps(table).encode())


def refused(buf: bytes) -> str:
    with pytest.raises(FlipLabError) as info:
        parse_image(buf)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_reseal_of_the_same_table_is_the_same_image(mlp, int8_accel):
    for buf in (mlp, int8_accel):
        _, tlen, *_ = _parse_header(buf, "image")
        assert reseal(buf, buf[HEADER_SIZE:HEADER_SIZE + tlen]) == buf
        parse_image(buf)


def _set(path, value):
    def edit(table):
        node = table
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _drop(path):
    def edit(table):
        node = table
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


# issue 8, "Why" point 3, and the rest of the schema, each with the words its message must say
CASES = [
    (_set(["tensors"], [1]), r"tensors\[0\] must be a JSON object, got int"),
    (_set(["tensors"], {}), "'tensors' must be a list"),
    (_set(["model"], {}), "model: lacks 'input'"),
    (_set(["model"], [1]), "model: must be a JSON object"),
    (_set(["model", "input"], 3), "model: input must be a string"),
    (_set(["model", "input_shape"], [None, -1]), r"input_shape\[1\] = -1 is negative"),
    (_set(["model", "input_shape"], "64"), "input_shape must be a list"),
    (_set(["model", "input"], "nope"), "model input 'nope' is not an input of the graph"),
    (_set(["model", "output"], "nope"), "model output 'nope' is not an output of the graph"),
    (_set(["tensors", 0, "count"], float("inf")), "tensor 'fc1.weight': count must be an integer, got float inf"),
    (_set(["tensors", 0, "count"], 4095), r"shape \[64, 64\] holds 4096 weights but count is 4095"),
    (_set(["tensors", 0, "shape"], [2**70]), r"shape\[0\] = 1180591620717411303424 is above the limit"),
    (_set(["tensors", 0, "shape"], [-64, -64]), r"tensor 'fc1.weight': shape\[0\] = -64 is negative"),
    (_set(["tensors", 0, "shape"], [64, 64.0]), r"shape\[1\] must be an integer, got float"),
    (_set(["tensors", 0, "shape"], [64, True]), r"shape\[1\] must be an integer, got bool"),
    (_set(["tensors", 0, "shape"], [1] * 9 + [4096]), "more than 8"),
    (_set(["tensors", 0, "params", "w_min"], "-1.0"), "params: w_min must be a number, got str"),
    (_set(["tensors", 0, "params", "w_min"], float("nan")), "params: w_min = nan is not finite"),
    (_set(["tensors", 0, "params", "w_max"], -5.0), "w_max is below w_min"),
    (_set(["tensors", 0, "params", "extra"], 1), "params: unknown key 'extra' for codec fixed8"),
    (_set(["tensors", 0, "params", "granularity"], "galaxy"), "granularity 'galaxy' is not one of"),
    (_drop(["tensors", 0, "params", "w_max"]), "params: lacks 'w_max'"),
    (_set(["tensors", 0, "params"], [1]), "params must be a JSON object, got list"),
    (_set(["tensors", 0, "dtype"], "complex1024"), "dtype 'complex1024' is not one of"),
    (_set(["tensors", 0, "codec"], "fixed99"), "tensor 'fc1.weight': fixed99"),
    (_set(["tensors", 0, "codec"], "parity(" * 3000 + "fixed8" + ")" * 3000), "longer than 200"),
    (_set(["tensors", 0, "codec"], "FIXED8"), "not in canonical form"),
    (_set(["tensors", 0, "bit_offset"], 16), "bit_offset = 16 is not a multiple of 32"),
    (_set(["tensors", 0, "bit_offset"], -32), "bit_offset = -32 is negative"),
    (_set(["tensors", 0, "bit_offset"], 32), "overlap the tensor before it"),
    (_set(["tensors", 0, "stored_bits"], 8), "stored_bits = 8, but 4096 weights in fixed8 take 32768"),
    (_set(["tensors", 0, "name"], ""), "name is empty"),
    (_set(["tensors", 1, "name"], "fc1.weight"), "tensor 'fc1.weight' appears twice"),
    (_set(["tensors", 0, "binarized"], "yes"), "binarized must be true or false"),
    (_drop(["tensors", 0, "layer"]), "tensor 'fc1.weight': lacks 'layer'"),
    (_set(["tensors", 0, "shape"], [32, 128]), r"is float32\[32, 128\] but the graph takes float32\[64, 64\]"),
    (_set(["tensors", 0, "dtype"], "float16"), "is float16.* but the graph takes float32"),
    (_set(["tensors", 0, "name"], "ghost"), "tensor 'ghost' is not a weight the graph takes"),
    (_set(["format"], "other"), "format is 'other'"),
    (_set(["program"], {"format": "nope"}), "program: format is 'nope'"),
    (_drop(["tensors"]), "lacks 'tensors'"),
    (_set(["model", "graph_sha256"], "0" * 64), "does not match its graph_sha256"),
]


@pytest.mark.parametrize("edit, message", CASES, ids=[m[:40] for _, m in CASES])
def test_damaged_table_is_refused_naming_the_field(mlp, edit, message):
    import re

    text = refused(damaged(mlp, edit))
    assert re.search(message, text), text


def test_a_table_that_is_not_an_object(mlp):
    assert "must be a JSON object, got list" in refused(reseal(mlp, b"[1, 2]"))


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a": ' + b"1" * 5000 + b"}", b"\xff\xfe",
                                 b'{"format": "fliplab-image", "model": Infinity}'])
def test_unreadable_tables(mlp, raw):
    refused(reseal(mlp, raw))


CHANNEL_CASES = [
    (_set(["tensors", 0, "params", "axis"], 5), r"axis = 5 is above the limit 1"),
    (_set(["tensors", 0, "params", "shape"], [64, 32]), "differs from the tensor's"),
    (_set(["tensors", 0, "params", "w_min"], [0.0] * 3), "w_min has 3 entries for 64 channels"),
    (_set(["tensors", 0, "params", "w_max", 5], None), r"w_max\[5\] must be a number, got null"),
    (_drop(["tensors", 0, "params", "axis"]), "per-channel params lack 'axis'"),
]


@pytest.mark.parametrize("edit, message", CHANNEL_CASES, ids=[m[:40] for _, m in CHANNEL_CASES])
def test_per_channel_params(mlp_channel, edit, message):
    import re

    parse_image(mlp_channel)
    text = refused(damaged(mlp_channel, edit))
    assert re.search(message, text), text


PROGRAM_CASES = [
    (_set(["program", "layers"], []), "layers must be a non-empty list"),
    (_set(["program", "layers", 0, "n_in"], 0), "n_in = 0 is below 1"),
    (_set(["program", "layers", 1, "n_in"], 32), "n_in = 32 but the layer before gives 64"),
    (_set(["program", "layers", 0, "bias"], [1] * 3), "bias has 3 entries, expected 64"),
    (_set(["program", "layers", 0, "s", 0], 2**70), r"s\[0\] = .* is above the limit 62"),
    (_set(["program", "layers", 0, "weight"], "x"), "weight 'x' is not in the tensor table"),
    (_set(["program", "layers", 0, "bit_offset"], 64), "bit_offset 64 is not the weight's 0"),
    (_set(["program", "layers", 0, "q"], 9), "q/parity must be 8/False"),
    (_set(["program", "layers", 0, "type"], "float"), "type 'float' is not"),
    (_set(["program", "input"], None), "input: must be a JSON object"),
    (_set(["program", "input", "kind"], "x"), "input: kind 'x' is not known"),
    (_set(["program", "output", "zero_point"], 1000), "zero_point = 1000 is above the limit 127"),
    (_set(["tensors", 0, "params", "zero_point", 0], 300), r"zero_point\[0\] = 300 is above"),
    (_set(["tensors", 0, "params", "dtype"], "int16"), "must be the tensor's integer dtype"),
    (_set(["tensors", 0, "params", "kind"], "magic"), "kind must be 'integer' or 'scale'"),
]


@pytest.mark.parametrize("edit, message", PROGRAM_CASES, ids=[m[:40] for _, m in PROGRAM_CASES])
def test_accelerator_program_and_integer_params(int8_accel, edit, message):
    import re

    text = refused(damaged(int8_accel, edit))
    assert re.search(message, text), text


# a property: whatever a table's values become, parsing ends in an image or one FlipLabError line

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_value_anywhere_gives_an_image_or_one_line(int8_accel, data):
    table = table_of(int8_accel)
    paths = [p for p in _paths(table) if p]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(_json_values)
    edited = damaged(int8_accel, _set(list(path), value))
    try:
        image = parse_image(edited)
    except FlipLabError as exc:
        assert "\n" not in str(exc)
    else:  # accepted: then the image must be usable by what reads it
        from host.decode import decode_weights

        decoded = decode_weights(image)
        assert all(np.isfinite(w.astype(np.float64)).all() or w.dtype.kind == "f"
                   for w in decoded.weights.values())
