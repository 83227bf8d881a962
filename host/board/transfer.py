"""Library functions behind ``host board ...`` and ``host eval --board``: each opens the port,
does one job and closes it. Offsets and lengths are in bytes."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host.board import protocol as P
from host.board.client import DEFAULT_BAUDRATE, DEFAULT_RETRIES, BoardClient
from host.errors import FlipLabError
from host.fileio import check_target, write_atomic


@dataclass(frozen=True)
class Link:
    """How to reach a board: serial port, baud rate (bits/s), reply timeout (s), retries."""

    port: str
    baudrate: int = DEFAULT_BAUDRATE
    timeout: float | None = None  # None: $FLIPLAB_BOARD_TIMEOUT or 1 s (client.default_timeout)
    retries: int = DEFAULT_RETRIES

    def open(self) -> BoardClient:
        """Opens a BoardClient on this link."""
        return BoardClient(self.port, baudrate=self.baudrate, timeout=self.timeout, retries=self.retries)


def _link(port: str | Link) -> Link:
    return port if isinstance(port, Link) else Link(port)


def load_payload(path: str | os.PathLike[str], *, raw: bool = False) -> bytes:
    """The bytes to store on the board: the PAYLOAD region of a FlipLab image (the weights, where
    errors land), or with raw=True the file's bytes as they are."""
    path = Path(path)
    if not path.is_file():
        raise FlipLabError(f"no such file: {path}")
    if raw:
        return path.read_bytes()
    try:
        from host.image import read_image
    except ImportError:
        raise FlipLabError(
            f"cannot read {path} as a FlipLab image (host.image is not available); "
            f"pass --raw to use its bytes as they are"
        ) from None
    image = read_image(path)
    return np.asarray(image.payload, dtype=np.uint8).tobytes()


def board_info(port: str | Link) -> P.Info:
    """INFO of the board at `port`."""
    with _link(port).open() as client:
        return client.info()


def board_stats(port: str | Link) -> dict[str, int]:
    """STATS counters of the board at `port`."""
    with _link(port).open() as client:
        return client.stats()


def set_mode(port: str | Link, spec: str, *, seed: int = 0) -> P.Mode:
    """SET_MODE from a spec string (none, bsc:P, asym:P01,P10, stuck:F,S[,seed=N], program:V)."""
    mode = P.mode_from_spec(spec, seed)
    with _link(port).open() as client:
        client.set_mode(mode)
    return mode


def write(
    path: str | os.PathLike[str], port: str | Link, *, raw: bool = False, offset: int = 0,
    progress: bool = True, verify: bool = True,
) -> int:
    """Writes the image payload of `path` (or its raw bytes) at `offset`; returns the byte count.
    The board's digest of its cells is checked against the data at the end."""
    data = load_payload(path, raw=raw)
    if not data:
        raise FlipLabError(f"{path} has an empty payload: nothing to write")
    with _link(port).open() as client:
        client.write(data, offset, progress=progress, verify=verify)
    return len(data)


def read(port: str | Link, offset: int, length: int, *, progress: bool = True) -> bytes:
    """Reads `length` bytes from `offset` (through the board's read path and error model)."""
    with _link(port).open() as client:
        return client.read(offset, length, progress=progress)


def dump(
    port: str | Link, output: str | os.PathLike[str], *, length: int | None = None, offset: int = 0,
    progress: bool = True,
) -> int:
    """Reads the written extent (or `length` bytes) from `offset` into `output`, atomically;
    returns the byte count."""
    check_target(output)  # before the transfer, not after it
    with _link(port).open() as client:
        info = client.info()
        if length is None:
            length = info.written_extent - offset
            if length <= 0:
                raise FlipLabError(
                    f"board at {client.port} reports nothing written past offset {offset}; pass --length"
                )
        data = client.read(offset, length, progress=progress, info=info)
    write_atomic(output, data)
    return len(data)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of ``verify``: CRC-32 of the file's data and of the board's cells (same region)."""

    length: int
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        """True if the board holds exactly the file's data."""
        return self.expected == self.actual


def verify(path: str | os.PathLike[str], port: str | Link, *, raw: bool = False, offset: int = 0) -> VerifyResult:
    """Compares the board's DIGEST of its stored cells with zlib.crc32 of the file's payload."""
    data = load_payload(path, raw=raw)
    with _link(port).open() as client:
        info = client.info()
        if offset + len(data) > info.memory_size:
            raise FlipLabError(f"{path}: {len(data)} bytes do not fit the board memory of {info.memory_size} bytes")
        actual = client.digest(offset, len(data), P.DigestSource.CELLS)
    return VerifyResult(len(data), zlib.crc32(data), actual)


def roundtrip(
    payload: bytes, port: str | Link, *, offset: int = 0, progress: bool = False
) -> bytes:
    """Writes `payload` to the board at `offset` and reads it back through the board's read path
    (and error model): the channel ``host eval --board PORT`` puts the image payload through."""
    payload = bytes(payload)
    with _link(port).open() as client:
        client.write(payload, offset, progress=progress)
        return client.read(offset, len(payload), progress=progress)
