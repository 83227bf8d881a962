"""cocotb test of the whole ULX3S top with the accelerator (rtl/fpga/ulx3s_accel_top.v: reset
synchroniser, protocol server, block-RAM memory and the accelerator) over its UART pins, driven
by the real host board client (tests/rtl/accel_session.py, a separate process) through a
pseudo-terminal: the line model of cocotb_board_server.py, on the top's ftdi_txd / ftdi_rxd pins.
"""

from __future__ import annotations

import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb_board_server import drive_rxd, start_host_session, watch_txd
from cocotb_util import CLOCK_NS, env_int


@cocotb.test(timeout_time=None)
async def host_accel_session_over_the_tops_uart(dut) -> None:
    """accel_session.py (host board info/write, ACCEL_WRITE/LOAD/RUN on three images, refusals)
    passes against the simulated ULX3S top."""
    div = env_int("CLK_DIV", 4)
    dut.ftdi_txd.value = 1
    dut.btn.value = 1  # PWR not pressed
    Clock(dut.clk_25mhz, CLOCK_NS, unit="ns").start()
    await ClockCycles(dut.clk_25mhz, 8)  # the reset synchroniser releases the server
    assert int(dut.led.value) & 1, "led[0]: still in reset"
    t0 = time.perf_counter()
    master, slave, host = start_host_session("accel_session.py")
    cocotb.start_soon(watch_txd(dut, master, div, txd=dut.ftdi_rxd))
    await drive_rxd(dut, master, div, lambda: host.poll() is not None, rxd=dut.ftdi_txd,
                    server=dut.u_top.u_server)
    output = host.stdout.read() if host.stdout else ""
    dut._log.info("host session (%.1f s): %s", time.perf_counter() - t0, output.strip()[-2000:])
    os.close(slave)
    os.close(master)
    assert host.returncode == 0 and "accel session passed" in output, output[-4000:]
