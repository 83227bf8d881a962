"""Drive neurons as beats into a streaming datapath unit and collect its outputs.

Shared by the xnor_popcount and mac_dense cocotb tests: a neuron of fan-in n is cut into
ceil(n / LANES) beats; lanes past n carry random garbage with their mask bit 0, so the test
also proves the mask works. Random idle cycles are inserted between beats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from cocotb.triggers import FallingEdge


@dataclass
class Beat:
    """Signal values of one beat (``values`` maps input port names to integers)."""

    first: bool
    last: bool
    values: dict[str, int] = field(default_factory=dict)


async def drive_beats(
    dut, beats: list[Beat], read_output, gen: np.random.Generator, *, idle: float = 0.2,
    drain: int = 12,
) -> list:
    """Drive ``beats`` (one per cycle, with random idle cycles) and gather outputs.

    ``read_output(dut)`` is called at every falling edge where ``out_valid`` is 1 and its
    results are returned in order. The caller starts the clock and releases reset first.
    """
    outputs = []

    async def tick() -> None:
        await FallingEdge(dut.clk)
        if dut.out_valid.value == 1:
            outputs.append(read_output(dut))

    for beat in beats:
        while gen.random() < idle:
            dut.in_valid.value = 0
            dut.in_first.value = int(gen.integers(0, 2))  # ignored while in_valid is 0
            dut.in_last.value = int(gen.integers(0, 2))
            await tick()
        dut.in_valid.value = 1
        dut.in_first.value = int(beat.first)
        dut.in_last.value = int(beat.last)
        for name, value in beat.values.items():
            getattr(dut, name).value = value
        await tick()
    dut.in_valid.value = 0
    for _ in range(drain):
        await tick()
    return outputs


async def output_cycles(dut, beats: list[Beat], drain: int = 12) -> list[int]:
    """Drive ``beats`` on consecutive cycles (no idle) and return when outputs appear.

    Beat i is presented during cycle i (sampled at the rising edge that ends it); the result
    lists the cycles in which ``out_valid`` is high. A unit of latency L whose last beat is
    beat i raises ``out_valid`` in cycle i + L.
    """
    seen = []
    edge = 0
    for beat in beats + [None] * drain:
        if beat is None:
            dut.in_valid.value = 0
        else:
            dut.in_valid.value = 1
            dut.in_first.value = int(beat.first)
            dut.in_last.value = int(beat.last)
            for name, value in beat.values.items():
                getattr(dut, name).value = value
        await FallingEdge(dut.clk)
        edge += 1
        if dut.out_valid.value == 1:
            seen.append(edge)
    dut.in_valid.value = 0
    return seen
