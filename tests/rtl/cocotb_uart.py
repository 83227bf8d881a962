"""cocotb tests of rtl/uart_tx.v and rtl/uart_rx.v against a Python model of an 8N1 line."""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, Timer
from cocotb_util import CLOCK_NS, env_int, rng, start_and_reset

FRAME_BITS = 10  # start, 8 data bits, stop


def decode_line(samples: list[int], div: int) -> tuple[list[int], list[int]]:
    """Decode a per-cycle record of an 8N1 line; returns (bytes, start cycles).

    Every bit must hold its level for exactly ``div`` cycles and the stop bit must be 1.
    """
    out, starts, i = [], [], 0
    while i < len(samples):
        if samples[i] == 1:
            i += 1
            continue
        frame = samples[i:i + FRAME_BITS * div]
        assert len(frame) == FRAME_BITS * div, f"frame at cycle {i} cut short"
        bits = []
        for k in range(FRAME_BITS):
            cell = frame[k * div:(k + 1) * div]
            assert len(set(cell)) == 1, f"bit {k} of the frame at cycle {i} is not stable: {cell}"
            bits.append(cell[0])
        assert bits[0] == 0 and bits[-1] == 1, f"bad start/stop at cycle {i}: {bits}"
        out.append(sum(b << k for k, b in enumerate(bits[1:9])))
        starts.append(i)
        i += FRAME_BITS * div
    return out, starts


@cocotb.test()
async def tx_frames(dut) -> None:
    """Random bytes, back to back and with gaps: bit timing, LSB first, start/stop levels."""
    div = env_int("CLK_DIV", 8)
    gen = rng()
    await start_and_reset(dut)
    data = [0x00, 0xFF, 0x55, 0xA5] + gen.integers(0, 256, 16).tolist()
    gaps = [0 if k < 10 else int(gen.integers(0, 3 * div)) for k in range(len(data))]
    samples, sent, k, wait = [], [], 0, 0
    dut.s_valid.value = 0
    while k < len(data) or dut.busy.value == 1 or wait:
        if k < len(data) and wait == 0:
            dut.s_valid.value = 1
            dut.s_data.value = data[k]
            if dut.s_ready.value == 1:  # taken at the coming edge
                sent.append(data[k])
                k += 1
                wait = gaps[k] if k < len(data) else 0
        else:
            dut.s_valid.value = 0
            wait = max(0, wait - 1)
        await FallingEdge(dut.clk)
        samples.append(int(dut.txd.value))
    for _ in range(2 * div):
        await FallingEdge(dut.clk)
        samples.append(int(dut.txd.value))
    got, starts = decode_line(samples, div)
    assert got == data == sent
    # the first ten frames were offered back to back: no idle cycle between them
    spacing = [starts[j + 1] - starts[j] for j in range(9)]
    assert spacing == [FRAME_BITS * div] * 9, f"frame spacing {spacing} cycles"


async def drive_frame(dut, byte: int, bit_ns: float, stop: int = 1) -> None:
    """Drive one 8N1 frame on rxd with a bit time of ``bit_ns`` nanoseconds."""
    bits = [0] + [(byte >> k) & 1 for k in range(8)] + [stop]
    for b in bits:
        dut.rxd.value = b
        await Timer(bit_ns, unit="ns")
    dut.rxd.value = 1


async def collect(dut, out: list, errors: list) -> None:
    """Record every received byte and framing error."""
    while True:
        await FallingEdge(dut.clk)
        if dut.m_valid.value == 1:
            out.append(dut.m_data.value.to_unsigned())
        if dut.frame_error.value == 1:
            errors.append(len(out))


@cocotb.test()
async def rx_bytes_glitches_and_framing_errors(dut) -> None:
    """Back-to-back frames at the nominal and +-3 % baud, a glitch, a bad stop bit."""
    div = env_int("CLK_DIV", 8)
    gen = rng()
    dut.rxd.value = 1
    await start_and_reset(dut)
    got, errors = [], []
    cocotb.start_soon(collect(dut, got, errors))
    want = []
    for skew in (0.0, 0.03, -0.03):
        bit_ns = div * CLOCK_NS * (1.0 + skew)
        for byte in [0x00, 0xFF, 0x80, 0x01] + gen.integers(0, 256, 8).tolist():
            await drive_frame(dut, byte, bit_ns)
            want.append(byte)
        await Timer(2 * div * CLOCK_NS, unit="ns")
    assert got == want and errors == []
    # a low pulse shorter than half a bit is not a start bit
    dut.rxd.value = 0
    await Timer((div // 4) * CLOCK_NS, unit="ns")
    dut.rxd.value = 1
    await Timer(FRAME_BITS * div * CLOCK_NS, unit="ns")
    assert got == want and errors == []
    # a stop bit of 0: framing error, no byte; the next frame after the line idles is fine
    await drive_frame(dut, 0x3C, div * CLOCK_NS, stop=0)
    await Timer(3 * div * CLOCK_NS, unit="ns")
    assert got == want and errors == [len(want)]
    await drive_frame(dut, 0xC3, div * CLOCK_NS)
    await Timer(2 * div * CLOCK_NS, unit="ns")
    assert got == want + [0xC3]
