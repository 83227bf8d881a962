"""Helpers shared by the cocotb test modules (they run inside the simulator)."""

from __future__ import annotations

import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

CLOCK_NS = 10


def env_int(name: str, default: int) -> int:
    """Integer configuration passed by the pytest harness as ``FLIPLAB_<name>``."""
    return int(os.environ.get(f"FLIPLAB_{name}", default))


def rng() -> np.random.Generator:
    """The test's random generator, seeded by ``FLIPLAB_SEED`` (fixed by the pytest harness)."""
    return np.random.default_rng(env_int("SEED", 2026))


def to_unsigned(value: int, bits: int) -> int:
    """Two's complement bit pattern of ``value`` in ``bits`` bits."""
    return int(value) & ((1 << bits) - 1)


def pack_lanes(values, bits: int) -> int:
    """Pack integers (lane 0 in the least significant bits) into one bus value."""
    word = 0
    for k, v in enumerate(values):
        word |= to_unsigned(int(v), bits) << (k * bits)
    return word


async def start_and_reset(dut, cycles: int = 2) -> None:
    """Start a 100 MHz clock on ``dut.clk`` and hold ``dut.rst`` high for ``cycles`` cycles."""
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
