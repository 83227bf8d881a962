"""Tests of host.codecs.registry (and base): canonical specs, sizes, bad specs and params."""

from __future__ import annotations

import numpy as np
import pytest

from host.codecs import get_codec, list_codecs
from host.errors import FlipLabError

# --- registry, sizes, bad input ------------------------------------------------------------------

def test_sizes_and_overheads():
    assert get_codec("parity8").overhead() == pytest.approx(8 / 7 - 1)
    assert get_codec("parity8").data_bits == 7 and get_codec("parity8").stored_bits(10) == 80
    assert get_codec("fixed8").overhead() == 0.0
    assert get_codec("sign").stored_bits(9) == 9
    assert get_codec("parity(int8)").bits == 9
    assert get_codec("parity(int8)").field_bits == 9 and get_codec("secded(int8)").field_bits == 72


def test_registry_canonical_specs():
    assert "secded(<codec>)" in list_codecs() and "sign" in list_codecs()
    for spec in ["float32", "fixed8:mid", "hamming8", "gray8", "int8", "parity(int8)",
                 "secded(parity8)", "sign", "bfloat16"]:
        assert get_codec(spec).spec == spec
        assert get_codec(get_codec(spec).spec) is get_codec(spec)


@pytest.mark.parametrize("spec,message", [
    ("foo", "unknown codec 'foo': known families are float32"), ("fixed1", "q = 2..16"),
    ("fixed17", "q = 2..16"), ("int33", "q = 2..32"), ("parity(parity8)", "cannot wrap parity"),
    ("secded(secded(fixed8))", "cannot wrap secded"), ("parity(float32)", "32-bit limit"),
    ("int8:mid", ":mid"), ("parity2", "q = 3..17"), ("", "non-empty"),
])
def test_bad_specs(spec, message):
    with pytest.raises(FlipLabError, match=message) as error:
        get_codec(spec)
    assert "\n" not in str(error.value)


def test_bad_fit_and_params():
    codec = get_codec("fixed8")
    with pytest.raises(FlipLabError, match="granularity"):
        codec.fit(np.ones(3), granularity="layer")
    with pytest.raises(FlipLabError, match="axis"):
        codec.fit(np.ones((2, 2)), axis=2, granularity="channel")
    with pytest.raises(FlipLabError, match="model_range"):
        codec.fit(np.ones(3), granularity="model")
    with pytest.raises(FlipLabError, match="lo <= hi"):
        codec.fit(np.ones(3), granularity="model", model_range=(1.0, -1.0))
    with pytest.raises(FlipLabError, match="NaN"):
        codec.fit(np.array([0.0, np.nan]))
    params = codec.fit(np.ones((2, 3)), axis=0, granularity="channel")
    with pytest.raises(FlipLabError, match="does not hold"):
        codec.decode(np.zeros(5, dtype=np.uint64), params)
    with pytest.raises(FlipLabError, match="does not match params shape"):
        codec.encode(np.ones((3, 2)), params)
    with pytest.raises(FlipLabError, match="w_min"):
        codec.decode(np.zeros(2, dtype=np.uint64), {"w_max": 1.0})
    with pytest.raises(FlipLabError, match="zero points for 2 channels"):
        get_codec("int8").fit(np.zeros((2, 2), dtype=np.int8), axis=0, zero_point=[1, 2, 3])
