"""cocotb test of rtl/xnor_popcount.v against host.hw.xnor_popcount / binary_dense."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb_beats import Beat, drive_beats, output_cycles
from cocotb_util import env_int, pack_lanes, rng, start_and_reset, to_unsigned

from host.hw import binary_dense, xnor_popcount

Z_BITS = 16


def neuron_beats(x, w, valid, tau: int, lanes: int, gen: np.random.Generator) -> list[Beat]:
    """Cut one neuron (bit vectors of length n) into beats; pad lanes get garbage, mask 0."""
    n = x.size
    n_beats = max(1, -(-n // lanes))
    beats = []
    for b in range(n_beats):
        sl = slice(b * lanes, min(n, (b + 1) * lanes))
        k = sl.stop - sl.start
        xs = np.concatenate([x[sl], gen.integers(0, 2, lanes - k)])
        ws = np.concatenate([w[sl], gen.integers(0, 2, lanes - k)])
        ms = np.concatenate([valid[sl], np.zeros(lanes - k, dtype=np.int64)])
        beats.append(Beat(first=b == 0, last=b == n_beats - 1, values={
            "in_x": pack_lanes(xs, 1), "in_w": pack_lanes(ws, 1), "in_mask": pack_lanes(ms, 1),
            # tau is sampled with the last beat; other beats carry a random decoy
            "tau": to_unsigned(tau if b == n_beats - 1 else int(gen.integers(-50, 50)), Z_BITS),
        }))
    return beats


@cocotb.test()
async def matches_reference(dut) -> None:
    """Random neurons back to back, with nulled weights and tau at z - 1, z, z + 1 and random."""
    lanes = env_int("LANES", 16)
    gen = rng()
    await start_and_reset(dut)
    neurons = []
    for k in range(240):
        n = int(gen.integers(1, 5 * lanes + 1)) if k % 8 else lanes * int(gen.integers(1, 4))
        x = gen.integers(0, 2, n)
        w = gen.integers(0, 2, n)
        null_rate = (0.0, 0.1, 0.5, 1.0)[k % 4]
        valid = (gen.random(n) >= null_rate).astype(np.int64)
        z = int(xnor_popcount(x[None, :], w[None, :], valid[None, :])[0, 0])
        tau = (z, z + 1, z - 1, int(gen.integers(-n, n + 2)))[(k // 4) % 4]  # z == tau must give 1
        neurons.append((x, w, valid, tau, z))
    beats = [b for (x, w, v, tau, _) in neurons for b in neuron_beats(x, w, v, tau, lanes, gen)]
    outs = await drive_beats(
        dut, beats, lambda d: (int(d.out_bit.value), d.out_z.value.to_signed()), gen)
    assert len(outs) == len(neurons)
    for i, ((x, w, v, tau, z), (bit, z_rtl)) in enumerate(zip(neurons, outs)):
        want_bit = int(binary_dense(x[None, :], w[None, :], tau, v[None, :])[0, 0])
        assert z_rtl == z, f"neuron {i}: z RTL {z_rtl}, reference {z}"
        assert bit == want_bit, f"neuron {i}: z={z} tau={tau}: bit RTL {bit}, reference {want_bit}"
    # the equality case was exercised and gives 1 (z >= tau, not z > tau)
    eq = [i for i, n in enumerate(neurons) if n[3] == n[4]]
    assert eq and all(outs[i][0] == 1 for i in eq)


@cocotb.test()
async def fully_masked_neuron_gives_zero(dut) -> None:
    """A neuron whose weights are all nulled has z = 0: bit 1 for tau = 0, 0 for tau = 1."""
    lanes = env_int("LANES", 16)
    gen = rng()
    await start_and_reset(dut)
    beats = []
    for tau in (0, 1, -1):
        ones = np.ones(2 * lanes, dtype=np.int64)
        beats += neuron_beats(ones, ones, np.zeros(2 * lanes, dtype=np.int64), tau, lanes, gen)
    outs = await drive_beats(
        dut, beats, lambda d: (int(d.out_bit.value), d.out_z.value.to_signed()), gen, idle=0.0)
    assert outs == [(1, 0), (0, 0), (1, 0)]


@cocotb.test()
async def latency_two_cycles_one_beat_per_cycle(dut) -> None:
    """Neurons of 1, 3 and 1 beats back to back: results 2 cycles after each last beat."""
    lanes = env_int("LANES", 16)
    gen = rng()
    await start_and_reset(dut)
    beats = []
    for n_beats in (1, 3, 1):
        n = n_beats * lanes
        ones = np.ones(n, dtype=np.int64)
        beats += neuron_beats(ones, ones, ones, 0, lanes, gen)
    # the last beats are presented in cycles 0, 3 and 4
    assert await output_cycles(dut, beats) == [0 + 2, 3 + 2, 4 + 2]
