"""Integer dense layers of the accelerator: the int8 MAC path and the binarized XNOR path.

``dense_int8`` is what ``rtl/mac_dense.v`` computes per output neuron; ``binary_dense`` is what
``rtl/xnor_popcount.v`` computes. Both work on a batch of input vectors at once (a matrix-matrix
product in int64), so a whole data set is one call. docs/datapath.md states the semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.errors import FlipLabError
from host.hw.requant import (
    INT8_MAX,
    INT8_MIN,
    clipped_relu,
    requantize,
    rounding_shift,
    wrap_int32,
)


@dataclass(frozen=True)
class DenseResult:
    """Outputs of an int8 dense layer for a batch.

    Attributes:
        acc: int64 (batch, n_out), the 32-bit accumulator ``wrap32(bias + sum_i x_i * w_i)``,
            in [-2**31, 2**31 - 1].
        y: int64 (batch, n_out), the layer output in [-128, 127] (in [0, T] when ``relu``).
    """

    acc: np.ndarray
    y: np.ndarray


def _as_int8_matrix(a: np.ndarray, what: str, ndim: int, bits: int = 8) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise FlipLabError(f"{what} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.ndim != ndim:
        raise FlipLabError(f"{what} must have {ndim} dimensions, got shape {arr.shape}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise FlipLabError(f"{what} out of the int{bits} range [{lo}, {hi}]")
    return arr


def dense_int8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    m: np.ndarray | int,
    s: np.ndarray | int,
    t: int = INT8_MAX,
    *,
    relu: bool = True,
    lo: int = INT8_MIN,
    hi: int = INT8_MAX,
    x_bits: int = 8,
) -> DenseResult:
    """One int8 dense layer: accumulate, add bias, requantise, saturate, clipped ReLU.

    ``acc[b, j] = wrap32(bias[j] + sum_i x[b, i] * w[j, i])``;
    ``y = clipped_relu(requantize(acc, M[j], S[j]), T)`` if ``relu`` else ``requantize(...)``.
    With saturation bounds ``[lo, hi]`` other than the int8 range (layers of a model with
    activation zero points, docs/datapath.md "Zero points"), ``requantize`` saturates to
    ``[lo, hi]`` instead, and T may be up to ``hi``.

    Args:
        x: int8 inputs, shape (batch, n_in), values in [-128, 127] (``x_bits`` = 9: activations
            relative to their zero point, ``x_q - z_x``, in [-256, 255]).
        w: int8 weights, shape (n_out, n_in) (a nulled weight is simply 0).
        bias: int32 biases, shape (n_out,), values in [-2**31, 2**31 - 1].
        m: multiplier M in [0, 2**31 - 1], a scalar or one per output neuron (n_out,).
        s: shift S in [0, 62], a scalar or one per output neuron (n_out,).
        t: clip threshold T in [0, 127] for the whole layer (127 = plain ReLU).
        relu: apply the clipped ReLU (False for the logits layer).
        lo, hi: saturation bounds, -256 <= lo <= 0 <= hi <= 255 (default: the int8 range).
        x_bits: signed width of the inputs, 8 or 9.

    Returns:
        DenseResult with ``acc`` and ``y``, both int64 of shape (batch, n_out).
    """
    if x_bits not in (8, 9):
        raise FlipLabError(f"input width {x_bits} bits: the datapath takes 8 or 9")
    if not -256 <= lo <= 0 <= hi <= 255:
        raise FlipLabError(f"saturation bounds [{lo}, {hi}] outside -256 <= lo <= 0 <= hi <= 255")
    x = _as_int8_matrix(x, "inputs", 2, x_bits)
    w = _as_int8_matrix(w, "weights", 2)
    bias = np.asarray(bias, dtype=np.int64).reshape(-1)
    if x.shape[1] != w.shape[1]:
        raise FlipLabError(f"input width {x.shape[1]} does not match weight width {w.shape[1]}")
    if bias.shape[0] != w.shape[0]:
        raise FlipLabError(f"{bias.shape[0]} biases for {w.shape[0]} output neurons")
    if np.any(bias < -(1 << 31)) or np.any(bias > (1 << 31) - 1):
        raise FlipLabError("bias out of the int32 range")
    # int64 products summed in int64 are exact for n_in < 2**48; the register wraps at 32 bits.
    acc = wrap_int32(x @ w.T + bias[None, :])
    y = requantize(acc, np.asarray(m, dtype=np.int64), np.asarray(s, dtype=np.int64))
    if (lo, hi) != (INT8_MIN, INT8_MAX):
        # requantize saturated to int8; redo the final clamp from the unsaturated value
        y = np.clip(rounding_shift(acc * np.asarray(m, dtype=np.int64),
                                   np.asarray(s, dtype=np.int64)), lo, hi)
    if relu:
        if (lo, hi) == (INT8_MIN, INT8_MAX):
            y = clipped_relu(y, t)
        else:
            if not 0 <= int(t) <= hi:
                raise FlipLabError(f"clip threshold T = {t} out of range: must be 0..{hi}")
            y = np.where((y >= 0) & (y <= t), y, 0)
    return DenseResult(acc=acc, y=y)


def _as_bits(a: np.ndarray, what: str, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise FlipLabError(f"{what} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 1)):
        raise FlipLabError(f"{what} must be bits (0 or 1)")
    return arr.astype(np.int64)


def xnor_popcount(x_bits: np.ndarray, w_bits: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Binarized pre-activation ``z = 2 * popcount(XNOR(x, w) & valid) - popcount(valid)``.

    Bit 1 stands for +1 and bit 0 for -1, so ``z = sum_i valid_i * x_i * w_i`` in the +-1 domain:
    a weight whose ``valid`` bit is 0 (nulled after a parity failure) contributes 0, neither
    +1 nor -1.

    Args:
        x_bits: input bits, shape (batch, n_in), values 0/1 (or bool).
        w_bits: weight bits, shape (n_out, n_in).
        valid: validity mask, shape (n_out, n_in); None means all weights valid.

    Returns:
        int64 array (batch, n_out) with values in [-n_in, n_in] and the parity of n_valid.
    """
    x = _as_bits(x_bits, "input bits", 2)
    w = _as_bits(w_bits, "weight bits", 2)
    v = np.ones_like(w) if valid is None else _as_bits(valid, "valid mask", 2)
    if x.shape[1] != w.shape[1] or v.shape != w.shape:
        raise FlipLabError(
            f"shapes do not match: inputs {x.shape}, weights {w.shape}, valid mask {v.shape}"
        )
    # agreements: x = 1 and w = 1, or x = 0 and w = 0, counted over valid weights only
    agree = x @ (w * v).T + (1 - x) @ ((1 - w) * v).T
    return 2 * agree - v.sum(axis=1)[None, :]


def binary_dense(
    x_bits: np.ndarray,
    w_bits: np.ndarray,
    tau: np.ndarray | int,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Binarized dense layer: output bit ``(z >= tau)`` (greater **or equal**), z as above.

    Args:
        x_bits: input bits (batch, n_in).
        w_bits: weight bits (n_out, n_in).
        tau: integer thresholds (BatchNorm folded, see :func:`fold_batchnorm`), a scalar or
            one per output neuron (n_out,).
        valid: validity mask (n_out, n_in) or None.

    Returns:
        uint8 array (batch, n_out) of output bits (1 = +1, 0 = -1).
    """
    z = xnor_popcount(x_bits, w_bits, valid)
    return (z >= np.asarray(tau, dtype=np.int64)).astype(np.uint8)


def fold_batchnorm(
    gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float, n_in: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``sign(BatchNorm(z))`` into an integer threshold on z (seed 004).

    With ``sign(0) = +1``, the output is +1 iff ``gamma * (z - mean) / sqrt(var + eps) + beta
    >= 0``. For ``gamma > 0`` that is ``z >= c`` with ``c = mean - beta * sqrt(var + eps) / gamma``,
    i.e. ``z >= ceil(c)`` because z is an integer. For ``gamma < 0`` it is ``z <= c``, i.e.
    ``-z >= -floor(c) = ceil(-c)``: the neuron's weight bits are inverted (which negates z) and
    ``tau = -floor(c)``. For ``gamma == 0`` the output is constant: ``tau = -n_in - 1`` (always
    1) when ``beta >= 0``, else ``tau = n_in + 1`` (never). This is the folding
    models/train.py applies to digits_bnn (models/README.md), with the same clamp.

    Args:
        gamma, beta, mean, var: BatchNorm parameters, one per output neuron (n_out,), float.
        eps: BatchNorm epsilon (> 0).
        n_in: fan-in of the layer (bounds z to [-n_in, n_in]).

    Returns:
        (tau, invert): int64 thresholds clamped to [-n_in - 1, n_in + 1] and a bool array saying
        which neurons must have their weight bits inverted.
    """
    gamma = np.asarray(gamma, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    if np.any(var + eps <= 0):
        raise FlipLabError("BatchNorm variance + eps must be positive")
    std = np.sqrt(var + eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = mean - beta * std / gamma
    invert = gamma < 0
    tau = np.where(invert, -np.floor(np.where(invert, c, 0.0)), np.ceil(np.where(gamma > 0, c, 0.0)))
    tau = np.where(gamma == 0, np.where(beta >= 0, -n_in - 1, n_in + 1), tau)
    tau = np.clip(tau, -n_in - 1, n_in + 1).astype(np.int64)
    return tau, invert
