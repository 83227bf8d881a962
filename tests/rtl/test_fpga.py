"""The FPGA build's RTL under Icarus + cocotb: the protocol server of rtl/fpga/ driven by the
real host board client over a simulated serial line (cocotb_board_server.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cocotb_harness import run_cocotb

REPO = Path(__file__).resolve().parents[2]
CLK_DIV = 4  # clock cycles per UART bit in simulation (uart_rx needs >= 4) (217 on the board: 25 MHz / 115200)


def test_board_server_serves_the_host_client(tmp_path: Path) -> None:
    # the session compares the FPGA's replies with the C firmware's virtual board
    made = subprocess.run(["make", "-C", str(REPO / "firmware"), "host"], capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    run_cocotb(
        "board_server", "cocotb_board_server",
        ["fpga/board_server.v", "uart_rx.v", "uart_tx.v", "cobs_decode.v", "cobs_encode.v", "crc32.v",
         "sync_ram.v"],
        tmp_path,
        parameters={"CLK_DIV": CLK_DIV, "MEM_ADDR_BITS": 16, "TIMEOUT_CYCLES": 2000 * CLK_DIV * 10},
        env={"FLIPLAB_CLK_DIV": str(CLK_DIV), "FLIPLAB_PYTHON": sys.executable,
             "FLIPLAB_WORKDIR": str(tmp_path)},
    )
