"""cocotb test of rtl/fpga/board_server.v: the whole protocol path (UART, COBS, CRC, commands,
block RAM) driven by the real host board client over a simulated serial line.

The line model: a pseudo-terminal pair. The host side (tests/rtl/board_session.py, a separate
process running `host board ...` and BoardClient) opens the pty like a board's serial port; this
module moves bytes between the pty's master side and the design's UART pins, 8N1 at CLK_DIV
clock cycles per bit, in simulated time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tty
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, Timer
from cocotb_util import CLOCK_NS, env_int, start_and_reset

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def bit_time(div: int, bits: float = 1) -> Timer:
    """A wait of `bits` UART bit times (one simulator callback, not one per clock cycle)."""
    return Timer(int(bits * div * CLOCK_NS), unit="ns")


async def drive_rxd(dut, master: int, div: int, done, rxd=None, server=None) -> None:
    """Sends every byte the host wrote to the pty into `rxd` (default dut.rxd), 8N1, LSB first;
    `server` (default dut) is the board_server instance, watched to yield the CPU while idle."""
    rxd = dut.rxd if rxd is None else rxd
    server = dut if server is None else server
    while not done():
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            data = b""
        if not data:
            if int(server.state_reg.value) == 0 and int(server.utx_busy.value) == 0:
                time.sleep(0.002)  # the board waits for the host: give the host process the CPU
            await bit_time(div, 10)
            continue
        for byte in data:
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                rxd.value = bit
                await bit_time(div)


async def watch_txd(dut, master: int, div: int, txd=None) -> None:
    """Decodes `txd` (default dut.txd; 8N1, sampled at bit centres), writes each byte to the pty."""
    txd = dut.txd if txd is None else txd
    while True:
        await FallingEdge(txd)
        await bit_time(div, 0.5)
        assert txd.value == 0, "start bit glitch on txd"
        byte = 0
        for k in range(8):
            await bit_time(div)
            byte |= int(txd.value) << k
        await bit_time(div)
        assert txd.value == 1, "framing error on txd (stop bit 0)"
        os.write(master, bytes([byte]))


def start_host_session(script: str, *args: str) -> tuple[int, int, subprocess.Popen]:
    """A pty pair (master, slave) and the host-side session ``script`` started on the slave
    (argv: port, work folder, *args), its stdout and stderr piped together."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    work = Path(os.environ.get("FLIPLAB_WORKDIR", "."))
    env = {**os.environ, "FLIPLAB_BOARD_TIMEOUT": os.environ.get("FLIPLAB_BOARD_TIMEOUT", "60"),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    python = os.environ.get("FLIPLAB_PYTHON", sys.executable)
    host = subprocess.Popen([python, str(HERE / script), os.ttyname(slave), str(work), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    return master, slave, host


@cocotb.test(timeout_time=None)
async def host_board_session_over_a_simulated_uart(dut) -> None:
    """board_session.py (host board info/write/verify/dump/read/mode, bad frames, RESET) passes."""
    div = env_int("CLK_DIV", 8)
    dut.rxd.value = 1
    await start_and_reset(dut)
    master, slave, host = start_host_session("board_session.py", "20")
    cocotb.start_soon(watch_txd(dut, master, div))
    await drive_rxd(dut, master, div, lambda: host.poll() is not None)
    output = host.stdout.read() if host.stdout else ""
    dut._log.info("host session: %s", output.strip()[-2000:])
    os.close(slave)
    os.close(master)
    assert host.returncode == 0 and "board session passed" in output, output[-4000:]
