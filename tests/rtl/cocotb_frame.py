"""cocotb tests of the RTL frame engine: rtl/crc32.v, rtl/cobs_decode.v, rtl/cobs_encode.v.

Truth is independent of the RTL: the vectors of firmware/tests/vectors.txt (shared with the C
firmware), zlib.crc32 and the `crc` package, and the `cobs` package, on random frames.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import cocotb
from cobs import cobs
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb_util import env_int, rng, start_and_reset
from crc import Calculator, Crc32

VECTORS = Path(__file__).resolve().parents[2] / "firmware" / "tests" / "vectors.txt"


def vectors(kind: str) -> list[tuple[bytes, bytes]]:
    """(input, expected) pairs of one kind ('crc32' or 'cobs') from the shared vector file."""
    out = []
    for line in VECTORS.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == kind:
            raw = b"" if parts[1] == "-" else bytes.fromhex(parts[1])
            out.append((raw, bytes.fromhex(parts[2])))
    assert len(out) >= 10, f"too few {kind} vectors in {VECTORS}"
    return out


def random_frames(count: int, max_len: int) -> list[bytes]:
    """Random frames, zero-heavy and zero-free ones included (every COBS block shape)."""
    gen = rng()
    frames = []
    for k in range(count):
        n = int(gen.integers(0, max_len + 1))
        data = gen.integers(0, 256, n, dtype="uint8")
        if k % 3 == 1:
            data[gen.random(n) < 0.3] = 0
        elif k % 3 == 2:
            data[data == 0] = 1
        frames.append(data.tobytes())
    return frames


# ---------------------------------------------------------------------------- crc32 ----
async def crc_of(dut, data: bytes) -> tuple[int, bool]:
    """Feeds data after a clear; returns (crc, residue_ok) the cycle after the last byte."""
    dut.clear.value = 1
    dut.s_valid.value = 0
    await FallingEdge(dut.clk)
    dut.clear.value = 0
    for b in data:
        dut.s_valid.value = 1
        dut.s_data.value = b
        await FallingEdge(dut.clk)
    dut.s_valid.value = 0
    return int(dut.crc.value), bool(dut.residue_ok.value)


@cocotb.test()
async def crc32_vectors_and_random_frames(dut) -> None:
    """The shared vectors, then random frames against zlib and the `crc` package, and the
    residue of a frame followed by its own CRC."""
    await start_and_reset(dut)
    dut.clear.value = 0
    dut.s_valid.value = 0
    for data, want in vectors("crc32"):
        got, _ = await crc_of(dut, data)
        assert got == int.from_bytes(want, "big"), f"CRC of {data[:8].hex()}..: {got:08x} != {want.hex()}"
    calc = Calculator(Crc32.CRC32)
    for data in random_frames(env_int("FRAMES", 40), 300):
        got, _ = await crc_of(dut, data)
        assert got == zlib.crc32(data) == calc.checksum(data), data.hex()
        _, residue_ok = await crc_of(dut, data + zlib.crc32(data).to_bytes(4, "little"))
        assert residue_ok, f"residue of a good frame not recognised: {data.hex()}"
        bad = data + (zlib.crc32(data) ^ 1).to_bytes(4, "little")
        _, residue_ok = await crc_of(dut, bad)
        assert not residue_ok, "a wrong CRC passed the residue check"


@cocotb.test()
async def crc32_clear_with_a_byte_starts_a_new_message(dut) -> None:
    """clear and s_valid together: that byte is the first of the new message."""
    await start_and_reset(dut)
    await crc_of(dut, b"garbage")
    dut.clear.value = 1
    dut.s_valid.value = 1
    dut.s_data.value = ord("1")
    await FallingEdge(dut.clk)
    dut.clear.value = 0
    for b in b"23456789":
        dut.s_data.value = b
        await FallingEdge(dut.clk)
    dut.s_valid.value = 0
    assert int(dut.crc.value) == 0xCBF43926


# ---------------------------------------------------------------------- cobs_decode ----
class DecodeMonitor:
    """Collects the decoder's output: finished frames with their flags, and timeouts."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.current = bytearray()
        self.frames: list[tuple[bytes, bool, bool]] = []  # (data, cobs_error, oversize)
        self.timeouts = 0
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await FallingEdge(dut.clk)
            if dut.m_valid.value == 1:
                self.current.append(int(dut.m_data.value))
            if dut.frame_done.value == 1:
                self.frames.append((bytes(self.current), bool(dut.cobs_error.value), bool(dut.oversize.value)))
                self.current = bytearray()
            if dut.timeout.value == 1:
                self.timeouts += 1
                self.current = bytearray()


async def send(dut, wire: bytes, gap: int = 0) -> None:
    """Drives wire bytes, one per cycle, with `gap` idle cycles after each."""
    for b in wire:
        dut.s_valid.value = 1
        dut.s_data.value = b
        await FallingEdge(dut.clk)
        dut.s_valid.value = 0
        for _ in range(gap):
            await FallingEdge(dut.clk)
    dut.s_valid.value = 0
    for _ in range(2):
        await FallingEdge(dut.clk)


@cocotb.test()
async def cobs_decode_vectors_and_random_frames(dut) -> None:
    """Shared vectors and random frames encoded by `cobs`, back to back and with gaps; extra
    0x00 delimiters (empty frames) are ignored."""
    await start_and_reset(dut)
    dut.s_valid.value = 0
    mon = DecodeMonitor(dut)
    want = []
    for raw, encoded in vectors("cobs"):
        assert cobs.encode(raw) == encoded
        await send(dut, encoded + b"\x00")
        want.append(raw)
    for k, raw in enumerate(random_frames(env_int("FRAMES", 40), 700)):
        await send(dut, b"\x00" * (k % 2) + cobs.encode(raw) + b"\x00", gap=k % 3)
        want.append(raw)
    assert [f[0] for f in mon.frames] == want
    assert not any(err or over for _, err, over in mon.frames)


@cocotb.test()
async def cobs_decode_flags_bad_and_oversize_frames(dut) -> None:
    """A code byte pointing past the delimiter is a COBS error; more than MAX_ENCODED bytes is
    oversize (and emits no byte past the limit); the next frame decodes normally."""
    max_encoded = env_int("MAX_ENCODED", 4129)
    await start_and_reset(dut)
    dut.s_valid.value = 0
    mon = DecodeMonitor(dut)
    await send(dut, bytes([0x05, 0x11, 0x22, 0x00]))  # code 5 promises 4 bytes, 2 arrive
    await send(dut, cobs.encode(b"ok") + b"\x00")
    assert mon.frames[0][1:] == (True, False)
    assert mon.frames[1] == (b"ok", False, False)
    exact = bytes(k % 255 + 1 for k in range(max_encoded - 1 - (max_encoded - 1) // 255))
    assert len(cobs.encode(exact)) == max_encoded  # exactly at the limit
    await send(dut, cobs.encode(exact) + b"\x00")
    assert mon.frames[2] == (exact, False, False)
    longer = exact + b"\x01"
    await send(dut, cobs.encode(longer) + b"\x00")
    data, err, over = mon.frames[3]
    assert over and len(data) <= max_encoded
    await send(dut, cobs.encode(b"\x00after\x00") + b"\x00")
    assert mon.frames[4] == (b"\x00after\x00", False, False)


@cocotb.test()
async def cobs_decode_drops_a_partial_frame_after_the_timeout(dut) -> None:
    """TIMEOUT_CYCLES idle cycles inside a frame drop it; a gap of one cycle less does not."""
    limit = env_int("TIMEOUT_CYCLES", 50)
    await start_and_reset(dut)
    dut.s_valid.value = 0
    mon = DecodeMonitor(dut)
    enc = cobs.encode(b"\x01\x02\x00\x03") + b"\x00"
    await send(dut, enc, gap=limit - 1)  # slow but never silent for `limit` cycles
    assert mon.frames == [(b"\x01\x02\x00\x03", False, False)] and mon.timeouts == 0
    await send(dut, enc[:3])
    for _ in range(limit + 2):
        await FallingEdge(dut.clk)
    assert mon.timeouts == 1
    await send(dut, enc[3:])  # the rest alone is a different, short frame, or garbage
    await send(dut, enc)
    assert mon.frames[-1] == (b"\x01\x02\x00\x03", False, False)
    await send(dut, b"\x00")  # idle between frames never times out
    for _ in range(2 * limit):
        await FallingEdge(dut.clk)
    assert mon.timeouts == 1


# ---------------------------------------------------------------------- cobs_encode ----
async def encode_with(dut, frame: bytes, gen, stall: bool) -> bytes:
    """Runs the encoder over `frame` in a modelled block RAM; returns the bytes it sent, the
    0x00 delimiter included. With stall, the sink takes bytes at random cycles."""
    mem = bytes(frame) + bytes(8)  # reads past the end must not matter
    dut.length.value = len(frame)
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    out = bytearray()
    rd_data = 0
    for _ in range(20 * len(frame) + 100):
        ready = int(gen.random() < 0.5) if stall else 1
        dut.m_ready.value = ready
        dut.rd_data.value = rd_data
        await RisingEdge(dut.clk)
        valid, data = int(dut.m_valid.value), int(dut.m_data.value)
        addr = int(dut.rd_addr.value)
        rd_data = mem[addr] if addr < len(mem) else 0xEE  # registered read of this edge
        if valid and ready:
            out.append(data)
            if data == 0:
                await FallingEdge(dut.clk)
                assert dut.busy.value == 0
                return bytes(out)
        await FallingEdge(dut.clk)
        dut.rd_data.value = rd_data
    raise AssertionError(f"encoder did not finish a {len(frame)}-byte frame")


@cocotb.test()
async def cobs_encode_vectors_and_random_frames(dut) -> None:
    """Shared vectors and random frames against `cobs.encode`, with and without back-pressure."""
    gen = rng()
    await start_and_reset(dut)
    dut.start.value = 0
    dut.m_ready.value = 1
    for raw, encoded in vectors("cobs"):
        got = await encode_with(dut, raw, gen, stall=False)
        assert got == encoded + b"\x00", f"{raw[:8].hex()}..: {got.hex()} != {encoded.hex()}00"
    for k, raw in enumerate(random_frames(env_int("FRAMES", 40), 700)):
        got = await encode_with(dut, raw, gen, stall=bool(k % 2))
        assert got == cobs.encode(raw) + b"\x00", raw.hex()
