"""Programs an FPGA board with a bitstream through openFPGALoader (Debian: openfpgaloader).

``host flash --board ulx3s build.bit`` loads the bitstream into the FPGA's configuration SRAM
(lost at power-off); ``--write-flash`` writes the board's SPI flash instead, so the FPGA
configures itself at every power-up. No board is available where FlipLab is developed: this is
tested with a fake openFPGALoader on the PATH (tests/host/test_flash.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from host.errors import FlipLabError

LOADER = "openFPGALoader"
LOADER_ENV = "FLIPLAB_OPENFPGALOADER"  # path of the loader, if not openFPGALoader on the PATH
BOARDS = {"ulx3s": "ulx3s"}  # FlipLab board name -> openFPGALoader board name (-b)
ECP5_PREAMBLE = b"\xff\xff\xbd\xb3"  # sync word of every ECP5 bitstream, after ecppack's comment header
PREAMBLE_WITHIN = 4096  # bytes from the start of the file
FLASH_TIMEOUT = 300.0  # seconds; writing the SPI flash of an 85F takes about a minute
NO_BOARD_HINTS = ("unable to open ftdi device", "no device found", "jtag init failed", "no cable",
                  "cable not found", "usb_open", "libusb")


def loader_path() -> str:
    """The openFPGALoader executable: $FLIPLAB_OPENFPGALOADER, else openFPGALoader on the PATH."""
    exe = os.environ.get(LOADER_ENV) or shutil.which(LOADER)
    if not exe or not (Path(exe).is_file() and os.access(exe, os.X_OK)):
        where = f"{LOADER_ENV}={exe}" if os.environ.get(LOADER_ENV) else f"{LOADER} on the PATH"
        raise FlipLabError(f"cannot program the board: no {where}; install it with "
                           f"`apt-get install -y openfpgaloader`")
    return exe


def flash(bitstream: str | Path, board: str = "ulx3s", *, write_flash: bool = False) -> str:
    """Programs `board` with `bitstream`; returns the loader's last line of output.

    Raises FlipLabError for an unknown board, a missing or empty bitstream, a missing loader,
    no board on USB, or any other loader failure (with the loader's own last line).
    """
    if board not in BOARDS:
        raise FlipLabError(f"unknown board {board!r}: choose one of {', '.join(BOARDS)}")
    path = Path(bitstream)
    if not path.is_file():
        raise FlipLabError(f"bitstream not found: {path} (build it with `make fpga BOARD={board}`)")
    if path.stat().st_size == 0:
        raise FlipLabError(f"bitstream {path} is empty")
    with path.open("rb") as f:
        head = f.read(PREAMBLE_WITHIN)
    if ECP5_PREAMBLE not in head:
        raise FlipLabError(f"{path} is not an ECP5 bitstream (no preamble FF FF BD B3 in its first "
                           f"{PREAMBLE_WITHIN} bytes): give the .bit file that ecppack wrote")
    cmd = [loader_path(), "-b", BOARDS[board]] + (["-f"] if write_flash else []) + [str(path)]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=FLASH_TIMEOUT, errors="replace")
    except subprocess.TimeoutExpired:
        raise FlipLabError(f"{LOADER} did not finish within {FLASH_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise FlipLabError(f"cannot run {cmd[0]}: {exc.strerror or exc}") from None
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    if proc.returncode != 0:
        text = proc.stdout.lower()
        if any(hint in text for hint in NO_BOARD_HINTS):
            raise FlipLabError(f"no {board} board found on USB ({LOADER}: {last})")
        raise FlipLabError(f"{LOADER} failed with exit code {proc.returncode}: {last}")
    return last
