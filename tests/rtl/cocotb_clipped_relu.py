"""cocotb test of rtl/clipped_relu.v against host.hw.clipped_relu, exhaustively over x."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import Timer
from cocotb_util import to_unsigned

from host.hw import clipped_relu


@cocotb.test()
async def matches_reference_for_every_input(dut) -> None:
    """All 256 int8 inputs for thresholds 0, 1, 5, 63, 100, 126, 127, and with enable = 0."""
    xs = np.arange(-128, 128)
    for t in (0, 1, 5, 63, 100, 126, 127):
        want = clipped_relu(xs, t)
        dut.enable.value = 1
        dut.thresh.value = t
        for x, y in zip(xs, want):
            dut.in_data.value = to_unsigned(x, 8)
            await Timer(1, unit="ns")
            got = dut.out_data.value.to_signed()
            assert got == int(y), f"T={t} x={x}: RTL {got}, reference {y}"
    # the clip boundary, stated explicitly: T passes, T + 1 gives 0 (not T)
    dut.thresh.value = 20
    for x, y in ((20, 20), (21, 0), (0, 0), (-1, 0), (127, 0)):
        dut.in_data.value = to_unsigned(x, 8)
        await Timer(1, unit="ns")
        assert dut.out_data.value.to_signed() == y, f"T=20 x={x}"
    dut.enable.value = 0
    for x in xs:
        dut.in_data.value = to_unsigned(x, 8)
        await Timer(1, unit="ns")
        assert dut.out_data.value.to_signed() == x, f"disabled: x={x} must pass through"
