"""The STM32 firmware under QEMU: ``qemu-system-arm -M netduinoplus2`` with the firmware's
USART2 on a pseudo-terminal, for tests and benchmarks of the real ARM image without a board.

netduinoplus2 is an STM32F405 (Cortex-M4). QEMU connects USART1..USART6 to serial0..serial5 in
that order, so USART2 (PA2/PA3, IRQ 38 on both the F401 and the F405) is the second ``-serial``.
Build the image with ``make -C firmware mcu-qemu`` (docs/board.md, "Under emulation").
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import termios
import time
import tty
from pathlib import Path

from host.board.emulate import terminate
from host.errors import FlipLabError

QEMU = "qemu-system-arm"
MACHINE = "netduinoplus2"
START_TIMEOUT = 10.0  # seconds QEMU may take to print its pty


class QemuBoard:
    """A running QEMU with `elf` loaded; ``port`` is the pty of the firmware's USART2.

    Use as a context manager or call stop(). Raises FlipLabError when QEMU is missing, exits,
    or does not name its pty within START_TIMEOUT seconds.
    """

    def __init__(self, elf: str | Path) -> None:
        if shutil.which(QEMU) is None:
            raise FlipLabError(f"{QEMU} not found: apt-get install -y qemu-system-arm")
        if not Path(elf).is_file():
            raise FlipLabError(f"firmware image not found: {elf} (make -C firmware mcu-qemu)")
        self.process = subprocess.Popen(
            [QEMU, "-M", MACHINE, "-display", "none", "-monitor", "none",
             "-serial", "null", "-serial", "pty", "-kernel", str(elf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._hold: int | None = None
        self.port = self._read_port()
        # QEMU polls an unconnected pty about once a second and loses what arrives meanwhile:
        # holding the slave side open from the start keeps it connected, so the first request
        # a client sends is not lost (it cost one reply timeout). Nothing reads this descriptor.
        try:
            self._hold = os.open(self.port, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(self._hold)  # no echo of the board's replies back into it
        except (OSError, termios.error) as exc:
            self.stop()
            raise FlipLabError(f"cannot open QEMU's pty {self.port}: {exc}") from None

    def _read_port(self) -> str:
        """The path from QEMU's line 'char device redirected to /dev/pts/N (label serial1)'."""
        assert self.process.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                seen.append(line.strip())
                if "redirected to /dev/" in line and "serial1" in line:
                    return line.split("redirected to ", 1)[1].split()[0]
            if self.process.poll() is not None:
                break
        self.stop()
        said = " / ".join(s for s in seen if s) or "nothing"
        raise FlipLabError(f"{QEMU} did not name the pty of serial1 within {START_TIMEOUT:.0f} s (it said: {said})")

    def stop(self, timeout: float = 5.0) -> None:
        """Terminates QEMU (SIGTERM, then SIGKILL after `timeout` seconds)."""
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        terminate(self.process, timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> QemuBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
