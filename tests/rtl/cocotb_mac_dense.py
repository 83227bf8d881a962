"""cocotb test of rtl/mac_dense.v against host.hw.dense_int8 (one neuron = one output row)."""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb_beats import Beat, drive_beats, output_cycles
from cocotb_util import env_int, pack_lanes, rng, start_and_reset, to_unsigned

from host.hw import dense_int8, quantize_multiplier


@dataclass
class Neuron:
    """One output neuron: inputs, weights and its requantisation / activation settings."""

    x: np.ndarray
    w: np.ndarray
    bias: int
    m: int
    s: int
    t: int
    act: bool

    def reference(self) -> tuple[int, int]:
        r = dense_int8(self.x[None, :], self.w[None, :], np.array([self.bias]), self.m, self.s,
                       self.t, relu=self.act)
        return int(r.acc[0, 0]), int(r.y[0, 0])


def neuron_beats(nr: Neuron, lanes: int, gen: np.random.Generator) -> list[Beat]:
    """Cut a neuron into beats; pad lanes carry random int8 garbage with mask 0.

    bias is only meaningful on the first beat and M, S, T, act_en on the last one: other beats
    carry random decoys, so sampling at the wrong beat is caught.
    """
    n = nr.x.size
    n_beats = max(1, -(-n // lanes))
    beats = []
    for b in range(n_beats):
        lo, hi = b * lanes, min(n, (b + 1) * lanes)
        pad = lanes - (hi - lo)
        xs = np.concatenate([nr.x[lo:hi], gen.integers(-128, 128, pad)])
        ws = np.concatenate([nr.w[lo:hi], gen.integers(-128, 128, pad)])
        mask = np.concatenate([np.ones(hi - lo, dtype=np.int64), np.zeros(pad, dtype=np.int64)])
        first, last = b == 0, b == n_beats - 1
        beats.append(Beat(first=first, last=last, values={
            "in_x": pack_lanes(xs, 8), "in_w": pack_lanes(ws, 8), "in_mask": pack_lanes(mask, 1),
            "bias": to_unsigned(nr.bias if first else int(gen.integers(-1000, 1000)), 32),
            "mult": nr.m if last else int(gen.integers(0, 1 << 31)),
            "shift": nr.s if last else int(gen.integers(0, 63)),
            "thresh": nr.t if last else int(gen.integers(0, 128)),
            "act_en": int(nr.act) if last else int(gen.integers(0, 2)),
        }))
    return beats


def random_neuron(gen: np.random.Generator, lanes: int) -> Neuron:
    """A neuron scaled like a trained int8 layer: outputs mostly inside the int8 range."""
    n = int(gen.integers(1, 6 * lanes + 1))
    x = gen.integers(-128, 128, n)
    w = gen.integers(-128, 128, n)
    bias = int(gen.integers(-(1 << 15), 1 << 15))
    spread = 128.0 * 128.0 * np.sqrt(n) / 3.0
    m, s = quantize_multiplier(float(gen.uniform(10.0, 90.0)) / spread)
    return Neuron(x, w, bias, m, s, int(gen.choice([0, 1, 10, 64, 100, 126, 127])),
                  bool(gen.random() < 0.75))


def corner_neurons(lanes: int) -> list[Neuron]:
    """Saturation at +127 / -128, the clip boundary T and T + 1, ties, accumulator wrap."""
    one = np.array([1])
    zero = np.array([0])
    out = []
    # y = bias exactly (x = 1, w = 0, M = 1, S = 0): clip boundary and saturation
    for t in (0, 20, 126):
        out += [Neuron(one, zero, t, 1, 0, t, True), Neuron(one, zero, t + 1, 1, 0, t, True)]
    for b in (127, 128, 5000, -128, -129, -5000):
        out += [Neuron(one, zero, b, 1, 0, 127, False), Neuron(one, zero, b, 1, 0, 127, True)]
    # ties of round half up: bias/2 for odd bias (+2.5 -> 3, -2.5 -> -2)
    for b in (5, -5, 1, -1, 255, -255, 253):
        out.append(Neuron(one, zero, b, 1, 1, 127, False))
    # largest products: all -128 * -128 over several beats, and -128 * 127
    n = 3 * lanes + 1
    out.append(Neuron(np.full(n, -128), np.full(n, -128), 0, 1, 20, 127, False))
    out.append(Neuron(np.full(n, -128), np.full(n, 127), 0, 1, 20, 127, False))
    # accumulator wrap at 32 bits: bias near the int32 limits
    out.append(Neuron(np.full(n, 127), np.full(n, 127), (1 << 31) - 100, 1, 24, 127, False))
    out.append(Neuron(np.full(n, -128), np.full(n, 127), -(1 << 31) + 100, 1, 24, 127, False))
    return out


@cocotb.test()
async def matches_reference(dut) -> None:
    """Corner neurons, then random neurons back to back with random idle cycles."""
    lanes = env_int("LANES", 8)
    gen = rng()
    await start_and_reset(dut)
    neurons = corner_neurons(lanes) + [random_neuron(gen, lanes) for _ in range(250)]
    beats = [b for nr in neurons for b in neuron_beats(nr, lanes, gen)]
    outs = await drive_beats(
        dut, beats, lambda d: (d.out_acc.value.to_signed(), d.out_data.value.to_signed()), gen)
    assert len(outs) == len(neurons)
    for i, (nr, got) in enumerate(zip(neurons, outs)):
        want = nr.reference()
        assert got == want, (
            f"neuron {i} (n={nr.x.size}, bias={nr.bias}, M={nr.m}, S={nr.s}, T={nr.t}, "
            f"act={nr.act}): RTL (acc, y) = {got}, reference {want}")
    # the named corners produced what the semantics say (independent of the reference)
    ys = [o[1] for o in outs]
    assert ys[0:6] == [0, 0, 20, 0, 126, 0]  # T passes, T + 1 gives 0 (not T)
    assert ys[6:18] == [127, 127, 127, 127, 127, 127, -128, 0, -128, 0, -128, 0]  # saturation
    assert ys[18:25] == [3, -2, 1, 0, 127, -127, 127]  # round half up, then saturate


@cocotb.test()
async def latency_seven_cycles_one_beat_per_cycle(dut) -> None:
    """Neurons of 1, 3 and 1 beats back to back: results 7 cycles after each last beat."""
    lanes = env_int("LANES", 8)
    gen = rng()
    await start_and_reset(dut)
    beats = []
    for n_beats in (1, 3, 1):
        n = n_beats * lanes
        beats += neuron_beats(Neuron(np.ones(n, int), np.ones(n, int), 0, 1, 0, 127, True),
                              lanes, gen)
    assert await output_cycles(dut, beats) == [0 + 7, 3 + 7, 4 + 7]  # last beats: cycles 0, 3, 4
