"""cocotb test of rtl/lane_loader.v against host.hw.unpack_fields, beat by beat.

Random layers (fan-in not a multiple of LANES, so last beats are partial; q = 1..16; parity
and plain modes; bit offsets that are not word aligned), parity errors planted by flipping
payload bits, random back-pressure, and the throughput claim: with out_ready high the beats
of a layer come one per cycle.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotb_util import env_int, rng, start_and_reset

from host.hw import unpack_fields

WORD_BITS = 128
MAX_Q = 16


async def load_ram(dut, words32: np.ndarray) -> None:
    per = WORD_BITS // 32
    w = np.concatenate([words32, np.zeros(-len(words32) % per, dtype=np.uint32)])
    for addr, row in enumerate(w.reshape(-1, per)):
        await FallingEdge(dut.clk)
        dut.wr_en.value = 1
        dut.wr_addr.value = addr
        dut.wr_data.value = sum(int(v) << (32 * b) for b, v in enumerate(row))
    await FallingEdge(dut.clk)
    dut.wr_en.value = 0


async def run_layer(dut, gen, lanes: int, bit_offset: int, q: int, parity: bool, n_in: int,
                    n_out: int, ready_prob: float) -> tuple[list, int]:
    """Start the loader, collect its beats (with random stalls); returns (beats, cycles)."""
    await FallingEdge(dut.clk)
    dut.cfg_bit_offset.value = bit_offset
    dut.cfg_q.value = q
    dut.cfg_parity.value = int(parity)
    dut.cfg_n_in.value = n_in
    dut.cfg_n_out.value = n_out
    dut.start.value = 1
    dut.out_ready.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    beats, cycles = [], 0
    expected = n_out * -(-n_in // lanes)
    while len(beats) < expected:
        dut.out_ready.value = int(gen.random() < ready_prob)
        await ReadOnly()
        if int(dut.out_valid.value) and int(dut.out_ready.value):
            data = int(dut.out_data.value)
            beats.append({
                "data": [(data >> (k * MAX_Q)) & ((1 << MAX_Q) - 1) for k in range(lanes)],
                "mask": int(dut.out_mask.value), "error": int(dut.out_error.value),
                "first": int(dut.out_first.value), "last": int(dut.out_last.value),
                "pos": int(dut.out_pos.value), "neuron": int(dut.out_neuron.value)})
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        cycles += 1
        assert cycles < 20 * expected + 50, "loader stalled"
    dut.out_ready.value = 1
    return beats, cycles


def check_beats(beats: list, ref, lanes: int, n_in: int, n_out: int) -> None:
    data = ref.data.reshape(n_out, n_in)
    err = ref.error.reshape(n_out, n_in)
    i = 0
    for j in range(n_out):
        for pos in range(0, n_in, lanes):
            b = beats[i]
            i += 1
            cnt = min(lanes, n_in - pos)
            assert (b["neuron"], b["pos"]) == (j, pos)
            assert b["first"] == (pos == 0) and b["last"] == (pos + cnt == n_in)
            assert b["mask"] == (1 << cnt) - 1
            want_err = sum(int(err[j, pos + k]) << k for k in range(cnt))
            assert b["error"] == want_err, (j, pos)
            assert b["data"][:cnt] == [int(v) for v in data[j, pos:pos + cnt]], (j, pos)
            assert all(v == 0 for v in b["data"][cnt:])


@cocotb.test()
async def random_layers_with_parity_errors(dut) -> None:
    """Beats equal the reference unpacking; err_count equals the reference's detected count."""
    lanes = env_int("LANES", 8)
    gen = rng()
    dut.wr_en.value = 0
    dut.start.value = 0
    dut.err_clear.value = 0
    dut.out_ready.value = 1
    await start_and_reset(dut)
    for trial in range(8):
        q = int(gen.integers(1, MAX_Q + 1))
        parity = bool(q >= 2 and gen.random() < 0.7)
        n_in = int(gen.integers(1, 3 * lanes + 2))
        n_out = int(gen.integers(1, 6))
        bit_offset = int(gen.integers(0, 200)) if trial % 2 else 32 * int(gen.integers(0, 6))
        total = bit_offset + n_in * n_out * q
        words = gen.integers(0, 1 << 32, -(-total // 32) + 2, dtype=np.uint64).astype(np.uint32)
        await load_ram(dut, words)
        await FallingEdge(dut.clk)
        dut.err_clear.value = 1
        await FallingEdge(dut.clk)
        dut.err_clear.value = 0
        ref = unpack_fields(words, bit_offset, q, n_in * n_out, parity=parity)
        beats, _ = await run_layer(dut, gen, lanes, bit_offset, q, parity, n_in, n_out, 0.7)
        check_beats(beats, ref, lanes, n_in, n_out)
        await FallingEdge(dut.clk)  # a beat's errors reach err_count one cycle after it is taken
        assert int(dut.err_count.value) == ref.n_errors
        if parity:
            assert ref.n_errors > 0  # random words: about half the fields fail


@cocotb.test()
async def one_beat_per_cycle(dut) -> None:
    """With out_ready high, a layer's beats arrive back to back when LANES * q <= 5/8 of a
    RAM word (wider beats are checked for correctness only)."""
    lanes = env_int("LANES", 8)
    gen = rng()
    dut.wr_en.value = 0
    dut.start.value = 0
    dut.err_clear.value = 0
    await start_and_reset(dut)
    for q in (1, 2, 9, 10, 16):
        n_in, n_out = 4 * lanes + 3, 6
        words = gen.integers(0, 1 << 32, (n_in * n_out * q) // 32 + 6,
                             dtype=np.uint64).astype(np.uint32)
        await load_ram(dut, words)
        ref = unpack_fields(words, 64, q, n_in * n_out, parity=False)
        beats, cycles = await run_layer(dut, gen, lanes, 64, q, False, n_in, n_out, 1.01)
        check_beats(beats, ref, lanes, n_in, n_out)
        if 8 * lanes * q <= 5 * WORD_BITS:
            # start cycle excluded: 3-4 cycles to the first beat (read, output register,
            # buffer), then one beat per cycle
            assert cycles <= len(beats) + 4, (q, cycles, len(beats))
