"""The virtual board: the C firmware built for the host (firmware/targets/host), serving the
protocol on a pseudo-terminal whose path it prints as its only line on stdout. It is built on
first use (:func:`vboard_path`)."""

from __future__ import annotations

import hashlib
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from host.errors import FlipLabError

VBOARD_ENV = "FLIPLAB_VBOARD"
VBOARD_NAME = "fliplab-vboard"
NVM_KINDS = ("rram", "flash", "sram")
START_TIMEOUT = 5.0  # seconds the board may take to print its port
BUILD_TIMEOUT = 300.0  # seconds the firmware build may take


def vboard_path() -> Path:
    """The virtual-board executable, built on first use.

    ``$FLIPLAB_VBOARD`` when set (used as it is). Otherwise the firmware's host target, built
    with make and the system C compiler when it is missing or older than its sources: in a
    source checkout into ``firmware/build/host/`` (as ``make -C firmware host`` does), in an
    installed wheel into a per-user cache folder named after a hash of the shipped sources
    (:func:`vboard_cache_dir`). A build prints one line on stderr.

    Raises:
        FlipLabError: ``$FLIPLAB_VBOARD`` names no executable, make or the C compiler is
            missing, or the build fails.
    """
    from host._share import is_source_checkout, shared_dir

    override = os.environ.get(VBOARD_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FlipLabError(f"virtual board not found at {path} (${VBOARD_ENV}): unset it to "
                               f"use the built-in one, or build one with "
                               f"`make -C {shared_dir('firmware')} host`")
        return path
    firmware = shared_dir("firmware")
    if is_source_checkout(firmware):
        return _build_in_tree(firmware)
    return _build_in_cache(firmware)


def vboard_cache_dir(firmware: Path) -> Path:
    """``$XDG_CACHE_HOME/fliplab/vboard-<hash>`` (default ``~/.cache``): where an installed
    FlipLab keeps the virtual board built from the sources in ``firmware``; the hash (SHA-256
    of the sources' relative paths and bytes, and the machine type) changes with any source."""
    digest = hashlib.sha256(platform.machine().encode())
    for path in sorted(p for p in firmware.rglob("*") if p.is_file()):
        rel = path.relative_to(firmware)
        if rel.parts[0] in ("build", "__pycache__"):
            continue
        digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    cache = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return root / "fliplab" / f"vboard-{digest.hexdigest()[:16]}"


def _require_toolchain() -> None:
    compiler = (os.environ.get("CC") or "cc").split()[0]
    missing = [tool for tool in ("make", compiler) if shutil.which(tool) is None]
    if missing:
        raise FlipLabError(f"the virtual board must be built first, which needs make and a C "
                           f"compiler ({', '.join(missing)} not found): install them (apt-get "
                           f"install -y make gcc) or set ${VBOARD_ENV} to a built {VBOARD_NAME}")


def _make(firmware: Path, build: Path, where: Path) -> None:
    """Runs ``make -C firmware BUILD=build host`` and says so on stderr (one line)."""
    _require_toolchain()
    print(f"building the virtual board (first use or changed sources) into {where} ...",
          file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(["make", "-C", str(firmware), f"BUILD={build}", "host"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise FlipLabError(f"building the virtual board took over {BUILD_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        raise FlipLabError(f"building the virtual board failed (make -C {firmware} host): "
                           f"{lines[-1].strip() if lines else f'exit status {proc.returncode}'}")


def _build_in_tree(firmware: Path) -> Path:
    exe = firmware / "build" / "host" / VBOARD_NAME
    if shutil.which("make") is None:  # nothing can be rebuilt; a binary already built will do
        if exe.is_file():
            return exe
        _require_toolchain()
    up_to_date = subprocess.run(["make", "-q", "-C", str(firmware), "host"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
    if not up_to_date:
        _make(firmware, firmware / "build", exe)
    return exe


def _build_in_cache(firmware: Path) -> Path:
    folder = vboard_cache_dir(firmware)
    exe = folder / VBOARD_NAME
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
        _make(firmware, Path(tmp), exe)
        os.replace(Path(tmp) / "host" / VBOARD_NAME, exe)  # atomic: a racing build just wins
    return exe


def terminate(process: subprocess.Popen, timeout: float) -> None:
    """End a board process: SIGTERM, then SIGKILL if it is still running after ``timeout`` s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


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
        spec = "".join(channel.split()).lower()
        cmd = [str(exe), "--size", str(size), "--nvm", nvm, "--channel", spec, "--seed", str(seed),
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
        terminate(self.process, timeout)
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
