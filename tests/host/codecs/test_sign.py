"""Tests of host.codecs.sign: one bit per weight, +-1 (times a scale)."""

from __future__ import annotations

import numpy as np

from host.codecs import get_codec

# --- sign ---------------------------------------------------------------------------------------

def test_sign_codec():
    codec = get_codec("sign")
    w = np.array([-0.5, 0.0, 2.0, -1e-9])
    params = codec.fit(w)
    codes = codec.encode(w, params)
    assert codes.tolist() == [0, 1, 1, 0]
    values, _ = codec.decode(codes, params, dtype=np.float32)
    assert values.tolist() == [-1, 1, 1, -1]
    values, _ = codec.decode(codes, {"scale": 0.5}, dtype=np.float32)
    assert values.tolist() == [-0.5, 0.5, 0.5, -0.5]
    assert codec.pack(codes).tolist() == [0b0110]
