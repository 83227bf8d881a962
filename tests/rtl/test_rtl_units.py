"""Simulate each RTL module with Icarus under cocotb and check it against host.hw.

Every test here builds one module (tests/rtl/cocotb_harness.py) and runs its cocotb test
module; they skip, naming the install command, only when Icarus Verilog (or cocotb) is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cocotb_harness import run_cocotb

SEED = "20261123"


@pytest.mark.parametrize("n,in_bits", [(8, 16), (5, 3), (1, 4), (32, 2)])
def test_adder_tree(tmp_path: Path, n: int, in_bits: int) -> None:
    run_cocotb(
        "adder_tree", "cocotb_adder_tree", ["adder_tree.v"], tmp_path,
        parameters={"N": n, "IN_BITS": in_bits},
        env={"FLIPLAB_SEED": SEED, "FLIPLAB_N": str(n), "FLIPLAB_IN_BITS": str(in_bits)},
    )


def test_clipped_relu(tmp_path: Path) -> None:
    run_cocotb("clipped_relu", "cocotb_clipped_relu", ["clipped_relu.v"], tmp_path)


def test_requantize(tmp_path: Path) -> None:
    run_cocotb(
        "requantize", "cocotb_requantize", ["requantize.v"], tmp_path,
        env={"FLIPLAB_SEED": SEED},
    )


@pytest.mark.parametrize("lanes", [16, 5])
def test_xnor_popcount(tmp_path: Path, lanes: int) -> None:
    run_cocotb(
        "xnor_popcount", "cocotb_xnor_popcount", ["xnor_popcount.v", "adder_tree.v"], tmp_path,
        parameters={"LANES": lanes},
        env={"FLIPLAB_SEED": SEED, "FLIPLAB_LANES": str(lanes)},
    )


@pytest.mark.parametrize("lanes", [8, 3])
def test_mac_dense(tmp_path: Path, lanes: int) -> None:
    run_cocotb(
        "mac_dense", "cocotb_mac_dense",
        ["mac_dense.v", "adder_tree.v", "requantize.v", "clipped_relu.v"], tmp_path,
        parameters={"LANES": lanes},
        env={"FLIPLAB_SEED": SEED, "FLIPLAB_LANES": str(lanes)},
    )


def test_weight_loader(tmp_path: Path) -> None:
    run_cocotb(
        "tb_weight_loader", "cocotb_weight_loader",
        ["tb_weight_loader.v", "weight_loader.v", "sync_ram.v"], tmp_path,
        env={"FLIPLAB_SEED": SEED},
    )


def test_missing_simulator_skips_with_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without iverilog the RTL tests skip and say how to install it (and only then)."""
    import shutil

    import cocotb_harness

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y iverilog"):
        cocotb_harness.require_simulator()


@pytest.mark.parametrize("module", ["uart_tx", "uart_rx"])
def test_uart(tmp_path: Path, module: str) -> None:
    test = {"uart_tx": "tx_frames", "uart_rx": "rx_bytes_glitches_and_framing_errors"}[module]
    run_cocotb(
        module, "cocotb_uart", [f"{module}.v"], tmp_path,
        parameters={"CLK_DIV": 8},
        env={"FLIPLAB_SEED": SEED, "FLIPLAB_CLK_DIV": "8", "COCOTB_TEST_FILTER": test},
    )


@pytest.mark.parametrize("lanes", [8, 3])
def test_lane_loader(tmp_path: Path, lanes: int) -> None:
    run_cocotb(
        "tb_lane_loader", "cocotb_lane_loader",
        ["tb_lane_loader.v", "lane_loader.v", "sync_ram.v"], tmp_path,
        parameters={"LANES": lanes},
        env={"FLIPLAB_SEED": SEED, "FLIPLAB_LANES": str(lanes)},
    )


@pytest.mark.parametrize("module", ["crc32", "cobs_decode", "cobs_encode"])
def test_frame_engine(tmp_path: Path, module: str) -> None:
    """The RTL frame engine against the shared vectors, zlib/crc and cobs (cocotb_frame.py)."""
    # the protocol's limit (4129 encoded bytes); a short timeout keeps the simulation small
    parameters = {"cobs_decode": {"MAX_ENCODED": 4129, "TIMEOUT_CYCLES": 50}}.get(module, {})
    run_cocotb(
        module, "cocotb_frame", [f"{module}.v"], tmp_path, parameters=parameters,
        env={"FLIPLAB_SEED": SEED, "COCOTB_TEST_FILTER": f"{module}_", "FLIPLAB_MAX_ENCODED": "4129",
             "FLIPLAB_TIMEOUT_CYCLES": "50"},
    )
