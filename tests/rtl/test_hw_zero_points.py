"""host.hw's int8 layer with activation zero points (docs/datapath.md, "Zero points"):
9-bit activations relative to their zero point, saturation to [lo, hi], clip T up to hi."""

from __future__ import annotations

from fractions import Fraction
from math import floor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.errors import FlipLabError
from host.hw import dense_int8, quantize_multiplier


def naive(x, w, b, m, s, lo, hi, t, relu) -> list[list[int]]:
    """Per element, exact rationals: clamp(floor(acc*M/2^S + 1/2), lo, hi), then the clip."""
    out = []
    for row in x:
        ys = []
        for j in range(len(w)):
            acc = int(b[j]) + sum(int(a) * int(v) for a, v in zip(row, w[j]))
            acc = (acc + 2**31) % 2**32 - 2**31
            r = floor(Fraction(acc * int(m[j]), 2 ** int(s[j])) + Fraction(1, 2))
            y = min(max(r, lo), hi)
            if relu:
                y = y if 0 <= y <= t else 0
            ys.append(y)
        out.append(ys)
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_offset_layer_matches_exact_definition(data) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1))
    gen = np.random.default_rng(seed)
    n_in, n_out = int(gen.integers(1, 12)), int(gen.integers(1, 6))
    x = gen.integers(-256, 256, (3, n_in))
    w = gen.integers(-128, 128, (n_out, n_in))
    b = gen.integers(-30000, 30000, n_out)
    ms = [quantize_multiplier(float(gen.uniform(1e-3, 0.2))) for _ in range(n_out)]
    m, s = np.array([v[0] for v in ms]), np.array([v[1] for v in ms])
    lo = int(data.draw(st.integers(-256, 0)))
    hi = int(data.draw(st.integers(0, 255)))
    t = int(data.draw(st.integers(0, hi)))
    relu = data.draw(st.booleans())
    got = dense_int8(x, w, b, m, s, t, relu=relu, lo=lo, hi=hi, x_bits=9).y
    assert got.tolist() == naive(x, w, b, m, s, lo, hi, t, relu)


def test_zero_point_worked_example() -> None:
    """docs/datapath.md: x_q = [-128, 0, 127] with z_x = -128, z_y = -128 (lo 0, hi 255)."""
    a = np.array([[-128, 0, 127]]) + 128  # [0, 128, 255]
    w = np.array([[3, -2, 1]])
    m, s = quantize_multiplier(0.5)
    assert (m, s) == (1 << 30, 31)
    y = dense_int8(a, w, np.array([100]), m, s, relu=False, lo=0, hi=255, x_bits=9).y
    assert y.tolist() == [[50]]  # acc 99, 49.5 rounds half up to 50; y_q = 50 - 128 = -78
    y = dense_int8(a, w, np.array([-200]), m, s, relu=False, lo=0, hi=255, x_bits=9).y
    assert y.tolist() == [[0]]  # acc -201 -> -100 -> lo = 0: the absorbed ReLU
    kw = dict(relu=True, lo=0, hi=255, x_bits=9)
    assert dense_int8(a, w, np.array([100]), m, s, 50, **kw).y.tolist() == [[50]]  # T passes
    assert dense_int8(a, w, np.array([100]), m, s, 49, **kw).y.tolist() == [[0]]   # T + 1 -> 0


def test_offset_layer_refusals() -> None:
    one = np.array([[1]])
    with pytest.raises(FlipLabError, match="int9 range"):
        dense_int8(np.array([[256]]), one, np.array([0]), 1, 0, x_bits=9)
    with pytest.raises(FlipLabError, match="saturation bounds"):
        dense_int8(one, one, np.array([0]), 1, 0, lo=1, hi=255, x_bits=9)
    with pytest.raises(FlipLabError, match="clip threshold"):
        dense_int8(one, one, np.array([0]), 1, 0, 200, lo=0, hi=100, x_bits=9)
