"""cocotb test of rtl/adder_tree.v: the sum of N signed operands, exactly."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import Timer
from cocotb_util import env_int, pack_lanes, rng


@cocotb.test()
async def sums_signed_operands(dut) -> None:
    """Random operands plus the extremes (all minimum, all maximum, alternating)."""
    n = env_int("N", 8)
    bits = env_int("IN_BITS", 16)
    out_bits = bits + max(0, (n - 1).bit_length())
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    gen = rng()
    vectors = [np.full(n, lo), np.full(n, hi), np.array([lo if k % 2 else hi for k in range(n)]),
               np.zeros(n, dtype=np.int64)]
    vectors += [gen.integers(lo, hi + 1, size=n) for _ in range(300)]
    for vec in vectors:
        dut.in_data.value = pack_lanes(vec, bits)
        await Timer(1, unit="ns")
        got = dut.out_sum.value.to_signed()
        assert len(dut.out_sum.value) == out_bits
        assert got == int(np.sum(vec)), f"sum of {vec.tolist()}: RTL {got}"
