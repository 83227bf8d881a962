"""The FPGA top with the accelerator (rtl/fpga/ulx3s_accel_top.v) under Icarus + cocotb,
driven over its UART pins by the real host board client (cocotb_fpga_accel.py running
accel_session.py); then the board's outputs against the `rtl` executor's (accel_top simulated
alone, host.sim) for the same images and inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from accel_session import CASES, activations, images
from cocotb_harness import run_cocotb

from host.sim import simulate
from host.sim.run import SOURCES

CLK_DIV = 4  # clock cycles per UART bit in simulation (uart_rx needs >= 4)
BAUD = 115200
RUN_TIMEOUT = 20000  # cycles before ACCEL_RUN gives up (the digits programs take 851 and 2,156)


def test_fpga_top_runs_the_accelerator_for_the_host_client(tmp_path: Path) -> None:
    run_cocotb(
        "ulx3s_accel_top", "cocotb_fpga_accel",
        ["fpga/ulx3s_accel_top.v", "fpga/pll_25_to_50.v", "fpga/ulx3s_top.v", "fpga/board_server.v",
         "reset_sync.v", "uart_rx.v", "uart_tx.v",
         "cobs_decode.v", "cobs_encode.v", "crc32.v", *SOURCES],
        tmp_path / "top",
        parameters={"CLK_HZ": CLK_DIV * BAUD, "BAUD": BAUD, "MEM_ADDR_BITS": 16,
                    "TIMEOUT_CYCLES": 2000 * CLK_DIV * 10, "RUN_TIMEOUT": RUN_TIMEOUT},
        env={"FLIPLAB_CLK_DIV": str(CLK_DIV), "FLIPLAB_PYTHON": sys.executable,
             "FLIPLAB_WORKDIR": str(tmp_path)},
    )
    board = json.loads((tmp_path / "board_runs.json").read_text())
    imgs = images()
    for case, samples in CASES:
        alone = simulate(imgs[case], activations(imgs[case], samples), build_dir=tmp_path / case)
        np.testing.assert_array_equal(np.array(board[case]["outputs"]), alone.outputs, err_msg=case)
        np.testing.assert_array_equal(np.array(board[case]["cycles"]), alone.cycles, err_msg=case)
        np.testing.assert_array_equal(np.array(board[case]["detected"]), alone.detected, err_msg=case)
