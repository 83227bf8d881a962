"""Reference of ``rtl/weight_loader.v``: unpack q-bit fields from payload words, check parity.

The payload is a little-endian bit stream over 32-bit words: stream bit ``i`` is bit
``i % 32`` of word ``i // 32`` (docs/internals.md). Field ``k`` starting at ``bit_offset``
occupies stream bits ``[bit_offset + k*q, bit_offset + (k+1)*q)``, its bit 0 (least significant)
at the lowest stream bit; a field may straddle two words.

Parity mode (the weight-nulling codecs of seed 000): the q-bit field holds an even-parity word;
its least significant bit is the check bit and ``data = field >> 1`` (q - 1 bits). A field whose
q bits have odd parity is a *detected error*: its data is replaced by 0 and its error flag set.
Plain mode passes the field through (``data = field``, never an error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.errors import FlipLabError

WORD_BITS = 32  # payload word width; a field is at most one word wide


@dataclass(frozen=True)
class LoadedFields:
    """What the weight loader streams out for one tensor.

    Attributes:
        data: int64 (count,), the unsigned data bits (q - 1 bits in parity mode, q otherwise),
            0 where a parity error was detected.
        error: bool (count,), True where a parity error was detected (parity mode only).
        n_errors: number of detected errors (``error.sum()``), what the RTL counter adds.
    """

    data: np.ndarray
    error: np.ndarray
    n_errors: int


def stream_bits(words: np.ndarray) -> np.ndarray:
    """The payload as a bit stream: uint8 array of 0/1, stream bit i = bit i % 32 of word i // 32."""
    w = np.asarray(words, dtype=np.uint32).reshape(-1)
    return np.unpackbits(w.astype("<u4").view(np.uint8), bitorder="little")


def extract_fields(words: np.ndarray, bit_offset: int, q: int, count: int) -> np.ndarray:
    """Raw q-bit fields (int64, unsigned values) of ``count`` consecutive fields from ``bit_offset``."""
    if not 1 <= q <= WORD_BITS:
        raise FlipLabError(f"field width {q} out of range: 1..{WORD_BITS} bits")
    if bit_offset < 0 or count < 0:
        raise FlipLabError("bit offset and field count must be non-negative")
    bits = stream_bits(words)
    end = bit_offset + count * q
    if end > bits.size:
        raise FlipLabError(
            f"fields end at stream bit {end}, beyond the {bits.size}-bit payload"
        )
    chunk = bits[bit_offset:end].reshape(count, q).astype(np.int64)
    return chunk @ (np.int64(1) << np.arange(q, dtype=np.int64))


def unpack_fields(
    words: np.ndarray, bit_offset: int, q: int, count: int, *, parity: bool
) -> LoadedFields:
    """Unpack and (in parity mode) check ``count`` q-bit fields, as the RTL loader does.

    Args:
        words: payload as 32-bit words (any integer dtype holding values < 2**32).
        bit_offset: first stream bit of field 0, >= 0 (need not be word aligned).
        q: field width in bits, 1..32 (2..32 in parity mode).
        count: number of fields, >= 0.
        parity: even-parity mode (check bit = field bit 0) or plain pass-through.

    Returns:
        LoadedFields(data, error, n_errors).
    """
    if parity and q < 2:
        raise FlipLabError("a parity field needs at least 2 bits (1 data bit + 1 check bit)")
    fields = extract_fields(words, bit_offset, q, count)
    if not parity:
        return LoadedFields(fields, np.zeros(count, dtype=bool), 0)
    ones = np.zeros(count, dtype=np.int64)
    for j in range(q):  # q <= 32 vectorised passes, one per bit position
        ones += (fields >> j) & 1
    error = (ones & 1).astype(bool)
    data = np.where(error, 0, fields >> 1)
    return LoadedFields(data, error, int(error.sum()))


def sign_extend(data: np.ndarray, bits: int) -> np.ndarray:
    """Read ``bits``-bit unsigned values as two's complement (e.g. 8 data bits -> int8 weight)."""
    d = np.asarray(data, dtype=np.int64)
    return np.where(d >= (1 << (bits - 1)), d - (1 << bits), d)
