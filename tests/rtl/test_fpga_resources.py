"""rtl/fpga/resources.py: the resource/timing summary of a nextpnr report and the regression
check against the committed baseline, on hand-made nextpnr reports (no FPGA tools needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FPGA = Path(__file__).resolve().parents[2] / "rtl" / "fpga"
SCRIPT = FPGA / "resources.py"


def nextpnr_report(lut: int, ff: int, bram: int, dsp: int, fmax: dict[str, float]) -> dict:
    """The parts of nextpnr-ecp5's --report JSON that resources.py reads."""
    return {
        "utilization": {
            "TRELLIS_COMB": {"used": lut, "available": 83640},
            "TRELLIS_FF": {"used": ff, "available": 83640},
            "DP16KD": {"used": bram, "available": 208},
            "MULT18X18D": {"used": dsp, "available": 156},
            "TRELLIS_IO": {"used": 12, "available": 365},
        },
        "fmax": {name: {"achieved": f, "constraint": 25.0} for name, f in fmax.items()},
    }


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def summarise(tmp_path: Path, name: str, **kw) -> Path:
    src = tmp_path / f"{name}-nextpnr.json"
    src.write_text(json.dumps(nextpnr_report(**kw)))
    out = tmp_path / f"{name}.json"
    proc = run("summarise", str(src), "--board", "ulx3s", "--top", "ulx3s_top", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_summary_takes_the_slowest_clock(tmp_path: Path) -> None:
    out = summarise(tmp_path, "r", lut=1000, ff=500, bram=70, dsp=0, fmax={"clk_a": 80.5, "clk_b": 61.25})
    rep = json.loads(out.read_text())
    assert (rep["lut4"], rep["ff"], rep["bram"], rep["dsp"]) == (1000, 500, 70, 0)
    assert (rep["fmax_mhz"], rep["fmax_clock"], rep["bram_available"]) == (61.25, "clk_b", 208)
    shown = run("show", str(out)).stdout
    assert "| LUT4 | 1000 | 83640 |" in shown and "61.25 MHz" in shown


@pytest.mark.parametrize("change,regressed", [
    ({}, []),
    ({"lut": 1099}, []),            # +9.9 %: within the margin
    ({"lut": 1101}, ["lut4"]),      # +10.1 %
    ({"ff": 600}, ["ff"]),
    ({"bram": 71}, ["bram"]),       # block RAM and DSP may not grow at all
    ({"dsp": 1}, ["dsp"]),
    ({"fmax": {"clk": 90.1}}, []),  # -9.9 %
    ({"fmax": {"clk": 89.9}}, ["Fmax"]),
    ({"lut": 500, "bram": 10, "fmax": {"clk": 200.0}}, []),  # improvements pass
])
def test_check_flags_exactly_the_regressions(tmp_path: Path, change: dict, regressed: list[str]) -> None:
    base = dict(lut=1000, ff=500, bram=70, dsp=0, fmax={"clk": 100.0})
    baseline = summarise(tmp_path, "base", **base)
    report = summarise(tmp_path, "new", **{**base, **change})
    proc = run("check", str(report), str(baseline))
    assert proc.returncode == (1 if regressed else 0), proc.stderr
    for what in regressed:
        assert f"regression: {what}" in proc.stderr
    assert proc.stderr.count("regression:") == len(regressed)


@pytest.mark.parametrize("board,top", [("ulx3s", "ulx3s_top"), ("ulx3s-accel", "ulx3s_accel_top")])
def test_committed_baseline_is_complete_and_passes_against_itself(board: str, top: str) -> None:
    """Every board the Makefile builds has a baseline, and the build it records met its clock
    (the accelerator board: LANES = 8 at the PLL's 50 MHz, issue 13's target)."""
    baseline = FPGA / f"baseline-{board}.json"
    rep = json.loads(baseline.read_text())
    assert rep["board"] == board and rep["top"] == top
    assert rep["lut4"] > 0 and rep["ff"] > 0 and rep["bram"] > 0
    assert rep["fmax_mhz"] >= rep["constraint_mhz"] >= 25.0
    assert rep["lut4"] <= rep["lut4_available"] and rep["bram"] <= rep["bram_available"]
    assert run("check", str(baseline), str(baseline)).returncode == 0
    if board == "ulx3s-accel":
        assert rep["constraint_mhz"] == 50.0 and rep["dsp"] > 0


@pytest.mark.parametrize("content", ["{not json", json.dumps({"utilization": {}})])
def test_unreadable_reports_are_one_line_errors(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    proc = run("summarise", str(bad), "--board", "ulx3s", "--top", "t", "-o", str(tmp_path / "o.json"))
    assert proc.returncode == 2 and proc.stderr.startswith("resources.py: error:")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "o.json").exists()
    missing = run("check", str(tmp_path / "none.json"), str(bad))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
