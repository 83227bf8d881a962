"""The STM32 firmware itself (the ARM ELF, not the host build) on QEMU's netduinoplus2, driven by
the real host board client over QEMU's pseudo-terminal.

netduinoplus2 is an STM32F405 (Cortex-M4). QEMU wires USART1..USART6 to serial0..serial5 in
that order, so the firmware's USART2 (PA2/PA3, IRQ 38, same address on the F401 and the F405)
is `-serial null -serial pty` (host/board/qemu.py). Two builds run:

- the unchanged Nucleo image (`make mcu`): no SPI memory answers in QEMU, so it must still
  answer INFO as a zero-size `spi-jedec` board and refuse READs with OUT_OF_RANGE;
- the emulation build (`make mcu-qemu`): emulated RRAM in SRAM and the 168 MHz core clock of
  the QEMU machine: write, digest, dump and a noisy BSC run end to end.

Skipped, with the install command, when the cross compiler or QEMU is missing (`make test`
installs both).
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from host.board import protocol as P
from host.board import transfer
from host.board.client import BoardClient
from host.board.qemu import QemuBoard
from host.cli import main as host_main
from host.errors import FlipLabError

TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")
INSTALL = "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm (or: make sysdeps)"
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason=f"{' and '.join(TOOLS)} needed for the firmware under QEMU: {INSTALL}",
)

REPLY_TIMEOUT = "5"  # --timeout: an emulated MCU on a loaded 2-core machine answers late
ALPHA = 0.001


@pytest.fixture(scope="module")
def elfs(tmp_path_factory, fw_make) -> dict[str, Path]:
    """Both ARM builds in a fresh build directory: {'nucleo': ..., 'qemu': ...}."""
    build = tmp_path_factory.mktemp("mcu-build")
    for target in ("mcu", "mcu-qemu"):
        proc = fw_make(target, f"BUILD={build}", timeout=240)
        assert proc.returncode == 0, proc.stdout
    return {"nucleo": build / "mcu" / "fliplab-f401.elf", "qemu": build / "qemu" / "mcu" / "fliplab-f401.elf"}


def host(*argv: str) -> None:
    """Runs the `host` command in process; a non-zero exit fails the test."""
    assert host_main(list(argv)) == 0, argv


def bit_errors(a: bytes, b: bytes) -> int:
    x = np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)
    return int(np.unpackbits(x).sum())


def test_unchanged_nucleo_image_answers_info_without_a_memory_chip(elfs, capsys) -> None:
    with QemuBoard(elfs["nucleo"]) as board:
        host("board", "info", "--port", board.port, "--timeout", REPLY_TIMEOUT)
        out = capsys.readouterr().out
        assert "board:            spi-jedec" in out
        assert "memory size:      0 bytes" in out  # nothing answers RDID on QEMU's SPI1
        with BoardClient(board.port, timeout=5.0) as client, \
                pytest.raises(FlipLabError, match="refused READ: OUT_OF_RANGE"):
            client.read_chunk(0, 16)  # straight to the board, past the client's own range check


def test_emulated_rram_write_digest_dump_and_a_noisy_run(elfs, tmp_path, capsys) -> None:
    data = np.random.default_rng(13).integers(0, 256, 40 * 1024, dtype=np.uint8).tobytes()
    src = tmp_path / "weights.raw"
    src.write_bytes(data)
    with QemuBoard(elfs["qemu"]) as board:
        link = ["--port", board.port, "--timeout", REPLY_TIMEOUT]
        host("board", "info", *link)
        out = capsys.readouterr().out
        assert "board:            emu-rram" in out and "memory size:      65536 bytes" in out
        host("board", "write", str(src), "--raw", "-q", *link)  # checked by DIGEST(CELLS) inside
        host("board", "verify", str(src), "--raw", *link)
        host("board", "dump", "-o", str(tmp_path / "clean.bin"), "-q", *link)
        assert (tmp_path / "clean.bin").read_bytes() == data

        host("board", "mode", "bsc:1e-3", "--seed", "7", *link)
        host("board", "dump", "-o", str(tmp_path / "noisy.bin"), "-q", *link)
        noisy = (tmp_path / "noisy.bin").read_bytes()
        flips = bit_errors(data, noisy)
        assert binomtest(flips, 8 * len(data), 1e-3).pvalue > ALPHA, flips
        stats = transfer.board_stats(transfer.Link(board.port, timeout=5.0))
        assert stats["bytes_written"] == len(data)
        # QEMU on a loaded host can stall mid-frame: the board drops that frame and the host's
        # resend recovers it (the files above are exact). A few drops are the link working; many
        # mean the link does not.
        drops = stats["rx_crc_errors"] + stats["rx_cobs_errors"] + stats["rx_timeouts"]
        assert drops <= 3, stats
        if drops == 0:
            assert stats["flips_injected"] == flips  # one noisy read of every byte
        else:  # a resent READ reads (and flips) its chunk again
            assert stats["flips_injected"] >= flips

        # read noise leaves the cells alone: the exact-cells digest still matches the file
        with BoardClient(board.port, timeout=5.0) as client:
            assert client.digest(0, len(data), P.DigestSource.CELLS) == zlib.crc32(data)


def test_missing_image_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(FlipLabError, match="firmware image not found: .*make -C firmware mcu-qemu"):
        QemuBoard(tmp_path / "none.elf")



def test_eval_through_the_emulated_board_clean_and_with_stuck_cells(elfs, tmp_path, capsys, monkeypatch) -> None:
    """`host eval --board` on the ARM firmware: bit-exact with no error model; with stuck-at
    cells (the same wrong bits on every read) it equals the offline evaluation of a dump."""
    monkeypatch.setenv("FLIPLAB_BOARD_TIMEOUT", REPLY_TIMEOUT)  # eval has no --timeout flag
    model = Path(__file__).resolve().parents[2] / "models" / "digits_mlp.onnx"
    image = tmp_path / "w.bin"
    host("export", str(model), "--codec", "fixed8", "-o", str(image))
    capsys.readouterr()

    def evaluate(*extra: str) -> dict:
        capsys.readouterr()  # drop what earlier commands printed
        host("eval", "--image", *extra, "--samples", "100", "--json")
        return json.loads(capsys.readouterr().out)

    direct = evaluate(str(image))
    with QemuBoard(elfs["qemu"]) as board:
        link = ["--port", board.port]
        clean = evaluate(str(image), "--board", board.port)
        assert clean["predictions"] == direct["predictions"] and clean["accuracy"] == direct["accuracy"]
        host("board", "dump", "-o", str(tmp_path / "clean.bin"), "-q", *link)

        host("board", "mode", "stuck:0.02,0.5", "--seed", "3", *link)
        noisy = evaluate(str(image), "--board", board.port)
        host("board", "dump", "-o", str(tmp_path / "stuck.bin"), "-q", *link)
        capsys.readouterr()
    golden, stuck = (tmp_path / "clean.bin").read_bytes(), (tmp_path / "stuck.bin").read_bytes()
    assert len(stuck) == len(golden) and 0 < bit_errors(golden, stuck) < 0.02 * 8 * len(golden)
    offline = evaluate(str(tmp_path / "stuck.bin"), "--manifest", str(image.with_suffix(".manifest")))
    assert noisy["predictions"] == offline["predictions"] and noisy["accuracy"] == offline["accuracy"]
    assert noisy["predictions"] != clean["predictions"]  # 1 % wrong bits in fixed8 weights show
