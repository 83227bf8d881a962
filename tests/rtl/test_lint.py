"""Every Verilog module, the FPGA build's included, is Verilator -Wall clean (make -C rtl lint),
and the lint really fails on a warning."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RTL = Path(__file__).resolve().parents[2] / "rtl"

pytestmark = pytest.mark.skipif(shutil.which("verilator") is None,
                                reason="Verilator is not installed: `apt-get install -y verilator`")


def test_every_module_lints_clean() -> None:
    proc = subprocess.run(["make", "-C", str(RTL), "lint"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    modules = len(list(RTL.glob("*.v"))) + len(list((RTL / "fpga").glob("*.v")))
    assert f"verilator lint: {modules} modules clean" in proc.stdout


def test_a_warning_fails_the_lint(tmp_path: Path) -> None:
    """The same flags on a module with an unused input: Verilator must exit non-zero."""
    bad = tmp_path / "unused_input.v"
    bad.write_text("`default_nettype none\nmodule unused_input(input wire a, output wire y);\n"
                   "assign y = 1'b0;\nendmodule\n")
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "unused_input", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "UNUSED" in proc.stderr
