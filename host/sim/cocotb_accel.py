"""cocotb test run inside the simulator by :func:`host.sim.simulate` (not a pytest module).

Reads the job (``FLIPLAB_JOB``: JSON with the payload RAM words, program and parameter writes,
input vectors), loads the memories of ``accel_top`` through its write ports, runs one inference
per input vector (start, wait for done; no Python per simulated cycle while it runs), and
writes the outputs, cycle counts, detected-error counts and the wall time of the inference loop
(input writes and output reads included, memory loading excluded) to ``FLIPLAB_RESULT``.
When ``FLIPLAB_PROGRESS`` names a file, one byte is appended to it (and flushed) after each
inference, so the host can show progress by watching the file's size.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

CLOCK_NS = 10


async def _write(dut, en: str, addr: str, data: str, writes) -> None:
    """Drive one write port for each (address, value) pair, one per clock."""
    for a, v in writes:
        await FallingEdge(dut.clk)
        getattr(dut, en).value = 1
        getattr(dut, addr).value = a
        getattr(dut, data).value = v
    await FallingEdge(dut.clk)
    getattr(dut, en).value = 0


@cocotb.test()
async def run_job(dut) -> None:
    """Load the image and program, then run every input vector through the accelerator."""
    with open(os.environ["FLIPLAB_JOB"], encoding="utf-8") as f:
        job = json.load(f)
    act_bits = int(job["act_bits"])
    for port in ("ram_wr_en", "prog_wr_en", "par_wr_en", "act_wr_en", "start"):
        getattr(dut, port).value = 0
    dut.res_rd_addr.value = 0
    dut.n_layers.value = int(job["n_layers"])
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    await _write(dut, "ram_wr_en", "ram_wr_addr", "ram_wr_data",
                 [(a, int(v, 16)) for a, v in enumerate(job["ram"])])
    await _write(dut, "prog_wr_en", "prog_wr_addr", "prog_wr_data", job["prog"])
    await _write(dut, "par_wr_en", "par_wr_addr", "par_wr_data", job["par"])

    mask = (1 << act_bits) - 1
    outputs, cycles, errors = [], [], []
    progress_path = os.environ.get("FLIPLAB_PROGRESS")
    progress = open(progress_path, "ab", buffering=0) if progress_path else None
    t0 = time.perf_counter()
    for vector in job["inputs"]:
        await _write(dut, "act_wr_en", "act_wr_addr", "act_wr_data",
                     [(i, int(v) & mask) for i, v in enumerate(vector)])
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        await RisingEdge(dut.done)
        await FallingEdge(dut.clk)
        cycles.append(int(dut.cycle_count.value))
        errors.append(int(dut.err_count.value))
        row = []
        for j in range(int(job["n_out"])):
            dut.res_rd_addr.value = j
            await Timer(1, unit="ns")
            raw = int(dut.res_rd_data.value)
            row.append(raw - (1 << act_bits) if raw >> (act_bits - 1) else raw)
        outputs.append(row)
        if progress is not None:
            progress.write(b".")
    if progress is not None:
        progress.close()
    with open(os.environ["FLIPLAB_RESULT"], "w", encoding="utf-8") as f:
        json.dump({"outputs": outputs, "cycles": cycles, "detected": errors,
                   "run_seconds": time.perf_counter() - t0}, f)
