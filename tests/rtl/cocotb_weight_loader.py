"""cocotb test of rtl/weight_loader.v (through tests/rtl/hdl/tb_weight_loader.v) against
host.hw.unpack_fields: field unpacking at any bit offset, straddling words, even parity with
single flips (detected, weight 0) and double flips (undetected), back-pressure, throughput."""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge
from cocotb_util import rng, start_and_reset

from host.hw import unpack_fields

WORD_BITS = 32
RAM_WORDS = 256
MAX_Q = 16


@dataclass
class Tensor:
    """A payload with ``count`` q-bit fields at ``bit_offset`` and what was done to them."""

    words: np.ndarray  # uint32 (RAM_WORDS,)
    bit_offset: int
    q: int
    count: int
    parity: bool
    flips: np.ndarray  # bits flipped per field after encoding: 0, 1 or 2


def even_parity_codes(gen: np.random.Generator, q: int, count: int) -> np.ndarray:
    """Random parity codes: data in bits 1..q-1, check bit 0 makes the popcount even."""
    data = gen.integers(0, 1 << (q - 1), count)
    ones = np.array([bin(int(d)).count("1") for d in data])
    return (data << 1) | (ones & 1)


def make_tensor(gen: np.random.Generator, q: int, parity: bool, count: int, bit_offset: int) -> Tensor:
    """Write fields into a payload of random words, then flip 1 or 2 bits in some fields."""
    bits = np.unpackbits(gen.integers(0, 256, RAM_WORDS * 4).astype(np.uint8), bitorder="little")
    codes = even_parity_codes(gen, q, count) if parity else gen.integers(0, 1 << q, count)
    flips = gen.choice([0, 1, 2], size=count, p=[0.7, 0.2, 0.1]) if q >= 2 else np.zeros(count, int)
    for k in range(count):
        field = [(int(codes[k]) >> j) & 1 for j in range(q)]
        for j in gen.choice(q, size=int(flips[k]), replace=False):
            field[j] ^= 1
        bits[bit_offset + k * q: bit_offset + (k + 1) * q] = field
    words = np.packbits(bits, bitorder="little").view("<u4").astype(np.uint32)
    return Tensor(words, bit_offset, q, count, parity, flips)


async def load_ram(dut, words: np.ndarray) -> None:
    """Fill the RAM through its write port, one word per cycle."""
    for addr, word in enumerate(words.tolist()):
        dut.wr_en.value = 1
        dut.wr_addr.value = addr
        dut.wr_data.value = int(word)
        await FallingEdge(dut.clk)
    dut.wr_en.value = 0


async def run_loader(dut, t: Tensor, gen: np.random.Generator, ready_p: float = 1.0):
    """Start the loader on ``t`` and collect (data, error, last, cycle) per transferred field.

    Returns the transfers and the number of memory word reads; ``cycle`` counts clock cycles
    from the first cycle after the start pulse.
    """
    dut.start.value = 1
    dut.cfg_bit_offset.value = t.bit_offset
    dut.cfg_count.value = t.count
    dut.cfg_q.value = t.q
    dut.cfg_parity.value = int(t.parity)
    dut.out_ready.value = 0
    await FallingEdge(dut.clk)
    dut.start.value = 0
    transfers, reads, cycle = [], 0, 0
    limit = 40 + t.count * (8 if ready_p < 1 else 2)
    while len(transfers) < t.count and cycle < limit:
        reads += int(dut.mem_en.value == 1)  # a read happens at the coming rising edge
        ready = int(gen.random() < ready_p)
        dut.out_ready.value = ready
        if dut.out_valid.value == 1 and ready:
            transfers.append((dut.out_data.value.to_unsigned(), int(dut.out_error.value),
                              int(dut.out_last.value), cycle))
        await FallingEdge(dut.clk)
        cycle += 1
    dut.out_ready.value = 0
    for _ in range(3):  # nothing more may come out once the tensor is done
        await FallingEdge(dut.clk)
        assert dut.out_valid.value == 0 and dut.busy.value == 0 and dut.mem_en.value == 0
    return transfers, reads


def check(t: Tensor, transfers, reads: int, err_before: int, err_after: int) -> None:
    """Compare the transfers with host.hw.unpack_fields and with what the flips imply."""
    first_word = t.bit_offset // WORD_BITS
    last_word = (t.bit_offset + t.count * t.q - 1) // WORD_BITS
    assert reads == last_word - first_word + 1, f"{reads} word reads for words {first_word}..{last_word}"
    ref = unpack_fields(t.words, t.bit_offset, t.q, t.count, parity=t.parity)
    assert len(transfers) == t.count, f"{len(transfers)} of {t.count} fields came out"
    data = np.array([x[0] for x in transfers])
    err = np.array([x[1] for x in transfers], dtype=bool)
    last = [x[2] for x in transfers]
    bad = np.flatnonzero((data != ref.data) | (err != ref.error))
    assert bad.size == 0, (
        f"q={t.q} parity={t.parity} offset={t.bit_offset}: fields {bad[:8].tolist()} differ: "
        f"RTL {data[bad[:8]].tolist()}/{err[bad[:8]].tolist()}, "
        f"reference {ref.data[bad[:8]].tolist()}/{ref.error[bad[:8]].tolist()}")
    assert last == [0] * (t.count - 1) + [1]
    if t.parity:  # a single flip is detected, a double flip is not (even parity)
        assert np.array_equal(err, t.flips == 1)
        assert np.all(data[err] == 0)
    else:
        assert not err.any()
    assert err_after - err_before == ref.n_errors


@cocotb.test()
async def random_tensors_with_backpressure(dut) -> None:
    """Random q, offsets (word-straddling fields), parity on/off, flips, random out_ready."""
    gen = rng()
    await start_and_reset(dut)
    dut.err_clear.value = 0
    dut.start.value = 0
    total_errors = 0
    for trial in range(40):
        parity = bool(trial % 3 != 2)
        q = int(gen.integers(2, MAX_Q + 1)) if parity else int(gen.integers(1, MAX_Q + 1))
        if trial < 4:  # named cases: q = 1 plain, q = MAX_Q, a 9-bit field over a word edge
            q, parity = ((1, False), (MAX_Q, True), (9, True), (8, True))[trial]
        count = int(gen.integers(1, 120))
        offset = int(gen.integers(0, RAM_WORDS * WORD_BITS - count * q))
        if trial == 2:
            offset = WORD_BITS - 4  # field 0 straddles words 0 and 1
        t = make_tensor(gen, q, parity, count, offset)
        await load_ram(dut, t.words)
        before = dut.err_count.value.to_unsigned()
        transfers, reads = await run_loader(dut, t, gen, ready_p=0.6)
        after = dut.err_count.value.to_unsigned()
        check(t, transfers, reads, before, after)
        total_errors += after - before
    assert total_errors > 0 and dut.err_count.value.to_unsigned() == total_errors
    # err_clear resets the counter
    dut.err_clear.value = 1
    await FallingEdge(dut.clk)
    dut.err_clear.value = 0
    await FallingEdge(dut.clk)
    assert dut.err_count.value.to_unsigned() == 0


@cocotb.test()
async def one_field_per_cycle(dut) -> None:
    """With out_ready high the stream has no bubbles, for every q and an unaligned start."""
    gen = rng()
    await start_and_reset(dut)
    dut.err_clear.value = 0
    for q in range(1, MAX_Q + 1):
        parity = q >= 2 and q % 2 == 0
        count = 200
        t = make_tensor(gen, q, parity, count, int(gen.integers(0, 2 * WORD_BITS)))
        await load_ram(dut, t.words)
        before = dut.err_count.value.to_unsigned()
        transfers, reads = await run_loader(dut, t, gen, ready_p=1.0)
        check(t, transfers, reads, before, dut.err_count.value.to_unsigned())
        cycles = [x[3] for x in transfers]
        # latency: 2 cycles (read, buffer), 3 when field 0 straddles the first word boundary
        straddles = t.bit_offset % WORD_BITS + q > WORD_BITS
        assert cycles[0] == (3 if straddles else 2), f"q={q}: first field after {cycles[0]} cycles"
        assert cycles == list(range(cycles[0], cycles[0] + count)), f"q={q}: bubbles in the stream"


@cocotb.test()
async def zero_count_is_a_no_op(dut) -> None:
    """A start with count 0 reads nothing and emits nothing."""
    await start_and_reset(dut)
    dut.err_clear.value = 0
    dut.start.value = 1
    dut.cfg_bit_offset.value = 37
    dut.cfg_count.value = 0
    dut.cfg_q.value = 8
    dut.cfg_parity.value = 1
    dut.out_ready.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    for _ in range(5):
        assert dut.busy.value == 0 and dut.out_valid.value == 0 and dut.mem_en.value == 0
        await FallingEdge(dut.clk)
