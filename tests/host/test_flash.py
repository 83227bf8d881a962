"""`host flash --board ulx3s BITSTREAM` with a fake openFPGALoader on the PATH (no real board
exists here): the command line it gets, its failures as one-line errors, a missing loader."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from host.board import flash as F
from host.cli import main as host_main


def fake_loader(bin_dir: Path, *, exit_code: int = 0, output: str = "Done") -> Path:
    """An openFPGALoader that records its arguments (one per line) and prints `output`."""
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "openFPGALoader"
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{bin_dir}/args'\necho '{output}'\nexit {exit_code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.fixture
def bitstream(tmp_path: Path) -> Path:
    path = tmp_path / "top.bit"
    # the start of an ecppack bitstream: comment header, then the ECP5 preamble
    path.write_bytes(b"\xff\x00Part: LFE5U-85F-6CABGA381\x00\xff\xff\xff\xbd\xb3" + bytes(range(1, 200)))
    return path


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    monkeypatch.delenv(F.LOADER_ENV, raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_programs_sram_by_default_and_flash_on_request(on_path: Path, bitstream: Path, capsys) -> None:
    fake_loader(on_path, output="Load SRAM: [====] 100.00%  Done")
    assert host_main(["flash", "--board", "ulx3s", str(bitstream)]) == 0
    assert (on_path / "args").read_text().split("\n")[:-1] == ["-b", "ulx3s", str(bitstream)]
    assert "programmed ulx3s FPGA (until power-off)" in capsys.readouterr().out
    assert host_main(["flash", str(bitstream), "--write-flash"]) == 0
    assert (on_path / "args").read_text().split("\n")[:-1] == ["-b", "ulx3s", "-f", str(bitstream)]


def test_no_board_on_usb_is_a_clear_one_line_error(on_path: Path, bitstream: Path, capsys) -> None:
    fake_loader(on_path, exit_code=1, output="unable to open ftdi device: -3 (device not found)")
    assert host_main(["flash", str(bitstream)]) == 2
    err = capsys.readouterr().err
    assert err == ("host: error: no ulx3s board found on USB (openFPGALoader: unable to open ftdi "
                   "device: -3 (device not found))\n")


def test_other_loader_failures_name_the_exit_code(on_path: Path, bitstream: Path) -> None:
    fake_loader(on_path, exit_code=3, output="bitstream: wrong idcode")
    with pytest.raises(F.FlipLabError, match="openFPGALoader failed with exit code 3: bitstream: wrong idcode"):
        F.flash(bitstream)


def test_missing_loader_names_the_install_command(tmp_path: Path, bitstream: Path, monkeypatch) -> None:
    monkeypatch.delenv(F.LOADER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(F.FlipLabError, match="apt-get install -y openfpgaloader"):
        F.flash(bitstream)


def test_loader_from_the_environment(tmp_path: Path, bitstream: Path, monkeypatch) -> None:
    exe = fake_loader(tmp_path / "elsewhere")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv(F.LOADER_ENV, str(exe))
    assert F.flash(bitstream) == "Done"


@pytest.mark.parametrize("case", ["missing", "empty", "board", "not_ecp5"])
def test_bad_arguments_are_refused_before_the_loader_runs(on_path: Path, tmp_path: Path, bitstream: Path,
                                                          case: str) -> None:
    fake_loader(on_path)
    target, board, msg = {
        "missing": (tmp_path / "none.bit", "ulx3s", "bitstream not found: .*make fpga BOARD=ulx3s"),
        "empty": (tmp_path / "empty.bit", "ulx3s", "is empty"),
        "board": (bitstream, "icebreaker", "unknown board 'icebreaker'"),
        "not_ecp5": (tmp_path / "model.onnx", "ulx3s", "is not an ECP5 bitstream"),
    }[case]
    if case == "empty":
        target.write_bytes(b"")
    if case == "not_ecp5":
        target.write_bytes(b"\x08\x07\x12\x04onnx" * 100)
    with pytest.raises(F.FlipLabError, match=msg):
        F.flash(target, board)
    assert not (on_path / "args").exists()
