"""The virtual board: the C firmware built for the host (firmware/targets/host), serving the
protocol on a pseudo-terminal whose path it prints as its only line on stdout."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from host.errors import FlipLabError

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
VBOARD_ENV = "FLIPLAB_VBOARD"
NVM_KINDS = ("rram", "flash", "sram")
START_TIMEOUT = 5.0  # seconds the board may take to print its port


def vboard_path() -> Path:
    """The virtual-board executable: $FLIPLAB_VBOARD, else firmware/build/host/fliplab-vboard.

    Raises FlipLabError telling how to build it when it is missing.
    """
    path = Path(os.environ.get(VBOARD_ENV) or FIRMWARE_DIR / "build" / "host" / "fliplab-vboard")
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise FlipLabError(
            f"virtual board not found at {path}: build it with `make -C {FIRMWARE_DIR} host` (needs gcc and make)"
        )
    return path


class VirtualBoard:
    """A running virtual board process; use as a context manager or call stop().

    nvm: rram | flash | sram; channel: error-model spec (none, bsc:P, asym:P01,P10,
    stuck:F,S[,SEED]); size: memory in bytes (1 .. 64 MiB); seed: read-noise / device seed.
    """

    def __init__(self, *, nvm: str = "rram", channel: str = "none", size: int = 4 << 20, seed: int = 0) -> None:
        if nvm not in NVM_KINDS:
            raise FlipLabError(f"unknown --nvm {nvm!r}: choose one of {', '.join(NVM_KINDS)}")
        from host.board.protocol import mode_from_spec

        mode_from_spec(channel, seed)  # the host's grammar and messages (the C board's is its own)
        exe = vboard_path()
        cmd = [str(exe), "--size", str(size), "--nvm", nvm, "--channel", "".join(channel.split()).lower(), "--seed", str(seed),
               "--exit-on-eof", "1"]
        # the board exits when its stdin pipe closes, so it never outlives this process
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.port = self._read_port()

    def _read_port(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.05)
            if ready:
                line = self.process.stdout.readline().strip()
                if line:
                    return line
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else "").strip().splitlines()
                raise FlipLabError(f"virtual board failed to start: {err[0] if err else 'no message'}")
        self.stop()
        raise FlipLabError(f"virtual board did not print its port within {START_TIMEOUT:.0f} s")

    @property
    def alive(self) -> bool:
        """True while the board process runs."""
        return self.process.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        """Terminates the board process (SIGTERM, then SIGKILL after `timeout` seconds)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream:
                stream.close()

    def kill(self) -> None:
        """Kills the board process at once (SIGKILL), as a crash or a pulled cable would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(3.0)

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def emulate(
    *, nvm: str = "rram", channel: str = "none", size: int = 4 << 20, seed: int = 0, out: TextIO = sys.stdout
) -> int:
    """Starts a virtual board, prints its port on `out` and serves until interrupted or killed.

    Returns the process exit status to use (0 on SIGINT/SIGTERM).
    """
    # SIGTERM ends serving like Ctrl-C; installed before the port is printed, so a caller may
    # terminate us as soon as it has read the port
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        board = VirtualBoard(nvm=nvm, channel=channel, size=size, seed=seed)
        try:
            print(board.port, file=out, flush=True)
            status = board.process.wait()
        except KeyboardInterrupt:
            status = 0
        finally:
            board.stop()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    if status not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise FlipLabError(f"virtual board exited with status {status}")
    return 0
