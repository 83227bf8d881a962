"""cocotb test of rtl/requantize.v against host.hw.requantize (round half up, int8 saturation)."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge
from cocotb_util import rng, start_and_reset, to_unsigned

from host.hw import requantize

ACC_MIN, ACC_MAX = -(1 << 31), (1 << 31) - 1
M_MAX = (1 << 31) - 1


def corner_cases() -> list[tuple[int, int, int]]:
    """(acc, M, S) triples for ties, saturation and the extreme operands."""
    cases = []
    # exact ties: acc*M/2^S = k + 1/2 for positive and negative k (half up: -2.5 -> -2)
    for acc in (1, 3, 5, -1, -3, -5, 255, -255):
        cases.append((acc, 1, 1))
    for s in (2, 7, 20, 31, 62):
        half = 1 << (s - 1)
        for k in (0, 1, 2, -1, -2, -3, 100, -100):
            p = k * (1 << s) + half  # exactly k + 1/2 after the shift
            if p % 3 == 0 and ACC_MIN <= p // 3 <= ACC_MAX:
                cases.append((p // 3, 3, s))
            if ACC_MIN <= p <= ACC_MAX:
                cases.append((p, 1, s))
            # one below and above the tie
            for d in (-1, 1):
                if ACC_MIN <= p + d <= ACC_MAX:
                    cases.append((p + d, 1, s))
    # saturation boundaries: results 127, 128, -128, -129
    for r in (126, 127, 128, 1000, -127, -128, -129, -1000):
        cases.append((r, 1, 0))
        cases.append((r * 16, 1, 4))
        cases.append((r * 16 + 8, 1, 4))  # r + 1/2 rounds up to r + 1
    # extreme operands
    for acc in (ACC_MIN, ACC_MAX, 0, -1, 1):
        for m in (0, 1, M_MAX, 1 << 30):
            for s in (0, 1, 31, 32, 61, 62):
                cases.append((acc, m, s))
    return cases


def random_cases(gen: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    """Random (acc, M, S) with M normalised as quantize_multiplier makes it and S near 31..40."""
    acc = gen.integers(ACC_MIN, ACC_MAX + 1, size=n)
    acc_small = gen.integers(-(1 << 16), 1 << 16, size=n)
    acc = np.where(gen.random(n) < 0.7, acc_small, acc)
    m = gen.integers(1 << 30, 1 << 31, size=n)
    s = gen.integers(25, 45, size=n)
    wide = gen.random(n) < 0.2
    m = np.where(wide, gen.integers(0, M_MAX + 1, size=n), m)
    s = np.where(wide, gen.integers(0, 63, size=n), s)
    return list(zip(acc.tolist(), m.tolist(), s.tolist()))


@cocotb.test()
async def matches_reference(dut) -> None:
    """Stream corner cases then random operands one per cycle; compare every output."""
    gen = rng()
    cases = corner_cases() + random_cases(gen, 1500)
    acc = np.array([c[0] for c in cases], dtype=np.int64)
    m = np.array([c[1] for c in cases], dtype=np.int64)
    s = np.array([c[2] for c in cases], dtype=np.int64)
    want = requantize(acc, m, s)
    await start_and_reset(dut)
    got: list[int] = []
    for k in range(len(cases) + 5):
        if k < len(cases):
            dut.in_valid.value = 1
            dut.in_acc.value = to_unsigned(acc[k], 32)
            dut.mult.value = int(m[k])
            dut.shift.value = int(s[k])
        else:
            dut.in_valid.value = 0
        await FallingEdge(dut.clk)
        if dut.out_valid.value == 1:
            got.append(dut.out_data.value.to_signed())
    assert len(got) == len(cases)
    bad = [(cases[i], got[i], int(want[i])) for i in range(len(cases)) if got[i] != want[i]]
    assert not bad, f"{len(bad)} mismatches (acc, M, S), RTL, reference: {bad[:10]}"
