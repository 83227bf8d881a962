"""Fixed-point arithmetic of the accelerator: accumulator wrap, requantisation, saturation, clip.

These functions define the integer semantics that ``rtl/requantize.v``, ``rtl/clipped_relu.v``
and ``rtl/mac_dense.v`` implement, bit for bit (docs/datapath.md, "Integer semantics").
Every function takes and returns numpy integer arrays (or Python ints, which broadcast) and
computes in int64 internally; none of them loops over elements in Python.

Requantisation of a 32-bit accumulator ``acc`` by a multiplier ``M`` and a right shift ``S``::

    p = acc * M                                  exact, |p| < 2**62
    r = (p + 2**(S-1)) >> S    if S > 0          ">>" is the arithmetic (floor) shift
    r = p                      if S == 0
    y = min(max(r, -128), 127)                   saturation to int8

that is ``r = floor(acc * M / 2**S + 1/2)``: **round half up** (ties go towards +infinity, so
+2.5 -> 3 and -2.5 -> -2). Then the clipped ReLU of FT-ClipAct (seed 003) with threshold T:
``f(y) = y if 0 <= y <= T else 0`` (values above T become 0, not T; T = 127 is the plain ReLU).
"""

from __future__ import annotations

import math

import numpy as np

from host.errors import FlipLabError

INT8_MIN = -128
INT8_MAX = 127
ACC_BITS = 32  # accumulator width: two's complement, wraps modulo 2**32
MULT_BITS = 32  # M is stored in a 32-bit field and must lie in [0, 2**31 - 1]
MULT_MAX = (1 << (MULT_BITS - 1)) - 1
SHIFT_BITS = 6  # S is stored in a 6-bit field and must lie in [0, SHIFT_MAX]
SHIFT_MAX = 62  # keeps p + 2**(S-1) inside a signed 64-bit product register
THRESH_MAX = INT8_MAX  # clip threshold T in [0, 127]; T = 127 is the plain ReLU


def wrap_int32(x: np.ndarray | int) -> np.ndarray:
    """Reduce integers modulo 2**32 into the two's complement range [-2**31, 2**31 - 1].

    This is what a 32-bit accumulator register holds after any sequence of additions whose
    exact sum is ``x``. Returns an int64 array of the same shape.
    """
    a = np.asarray(x, dtype=np.int64)
    return ((a + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)


def _check_mult_shift(m: np.ndarray, s: np.ndarray) -> None:
    if np.any(m < 0) or np.any(m > MULT_MAX):
        raise FlipLabError(f"requantisation multiplier M out of range: must be 0..{MULT_MAX}")
    if np.any(s < 0) or np.any(s > SHIFT_MAX):
        raise FlipLabError(f"requantisation shift S out of range: must be 0..{SHIFT_MAX}")


def rounding_shift(p: np.ndarray | int, s: np.ndarray | int) -> np.ndarray:
    """Round-half-up right shift: ``floor(p / 2**s + 1/2)``, exactly, for int64 ``p``.

    ``p`` must satisfy ``|p| < 2**62`` and ``s`` lie in 0..62 so the sum cannot overflow.
    Returns int64 (broadcast shape of ``p`` and ``s``).
    """
    p = np.asarray(p, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return np.right_shift(p + half, s)


def saturate_int8(x: np.ndarray | int) -> np.ndarray:
    """Clamp integers to the int8 range [-128, 127]; returns int64 of the same shape."""
    return np.clip(np.asarray(x, dtype=np.int64), INT8_MIN, INT8_MAX)


def requantize(acc: np.ndarray | int, m: np.ndarray | int, s: np.ndarray | int) -> np.ndarray:
    """Requantise 32-bit accumulators to int8: ``sat8(floor(acc * M / 2**S + 1/2))``.

    Args:
        acc: accumulator values, each in [-2**31, 2**31 - 1] (use :func:`wrap_int32` first).
        m: multiplier M in [0, 2**31 - 1], scalar or broadcastable to ``acc`` (per channel).
        s: right shift S in [0, 62], scalar or broadcastable to ``acc``.

    Returns:
        int64 array with values in [-128, 127].

    Raises:
        FlipLabError: if M or S is out of range, or an accumulator is not a 32-bit value.
    """
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    _check_mult_shift(m, s)
    if np.any(acc < -(1 << 31)) or np.any(acc > (1 << 31) - 1):
        raise FlipLabError("accumulator out of the 32-bit range: wrap it with wrap_int32 first")
    return saturate_int8(rounding_shift(acc * m, s))


def clipped_relu(x: np.ndarray | int, t: np.ndarray | int) -> np.ndarray:
    """Clipped ReLU of FT-ClipAct: ``x if 0 <= x <= T else 0`` (above T gives 0, not T).

    Args:
        x: int8 values in [-128, 127].
        t: threshold T in [0, 127], scalar or broadcastable to ``x``; T = 127 is the plain ReLU.

    Returns:
        int64 array with values in [0, T].
    """
    x = np.asarray(x, dtype=np.int64)
    t = np.asarray(t, dtype=np.int64)
    if np.any(t < 0) or np.any(t > THRESH_MAX):
        raise FlipLabError(f"clip threshold T out of range: must be 0..{THRESH_MAX}")
    return np.where((x >= 0) & (x <= t), x, 0)


def quantize_multiplier(scale: float) -> tuple[int, int]:
    """Turn a positive real scale into the integer pair (M, S) with ``M / 2**S ~= scale``.

    M is normalised into [2**30, 2**31) (31 significant bits) when the scale allows it, i.e.
    ``M = round(scale * 2**S)`` with the largest S <= 62 that keeps M < 2**31. The relative
    error ``|M / 2**S - scale| / scale`` is at most 2**-31 for scales in [2**-31, 2**31) and
    grows for smaller scales (at S = 62 the absolute error is at most 2**-63).

    Args:
        scale: the real factor from accumulator units to output units, > 0 and < 2**31.

    Returns:
        (M, S) with 0 <= M <= 2**31 - 1 and 0 <= S <= 62.

    Raises:
        FlipLabError: if ``scale`` is not a finite number in (0, 2**31).
    """
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0.0 or scale >= float(1 << 31):
        raise FlipLabError(f"requantisation scale {scale!r} out of range: need 0 < scale < 2**31")
    mant, exp = math.frexp(scale)  # scale = mant * 2**exp, mant in [0.5, 1)
    shift = 31 - exp
    mult = round(mant * (1 << 31))  # in [2**30, 2**31]
    if mult == 1 << 31:  # the mantissa rounded up to 1.0
        if shift > 0:
            mult >>= 1
            shift -= 1
        else:  # scale in [2**31 - 1/2, 2**31): the nearest representable M
            mult = MULT_MAX
    if shift > SHIFT_MAX:
        extra = shift - SHIFT_MAX
        mult = int(rounding_shift(mult, extra))
        shift = SHIFT_MAX
    return int(mult), int(shift)
