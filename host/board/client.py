"""Serial client of the FlipLab board protocol (pyserial).

Stop-and-wait request/response: every request gets a sequence number; a request whose reply is
missing, garbled or fails its CRC is sent again with the same sequence number (all commands are
idempotent: WRITE and READ address their chunk by offset). Every read has a deadline, so a
silent or dead board ends in a one-line FlipLabError, never a hang.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable

import serial

from host.board import protocol as P
from host.errors import FlipLabError

DEFAULT_BAUDRATE = 115200
DEFAULT_TIMEOUT = 1.0  # seconds a reply may take beyond its time on the wire
TIMEOUT_ENV = "FLIPLAB_BOARD_TIMEOUT"  # overrides DEFAULT_TIMEOUT (an emulated board under load)
DEFAULT_RETRIES = 3  # extra attempts after the first
POLL_INTERVAL = 0.02  # seconds one serial read may block
DIGEST_RATE = 100e3  # bytes/s a board digests at least (a slow SPI chip read plus CRC on an MCU)
ERASE_BLOCK_TIME = 0.5  # seconds one erase block may take (NOR sector erase: max 400 ms)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def default_timeout() -> float:
    """Seconds a reply may take beyond its wire time: $FLIPLAB_BOARD_TIMEOUT, else DEFAULT_TIMEOUT.

    An emulated MCU (QEMU) or a simulated FPGA answers much later than a real board on a busy
    machine; this lets every command (``host eval --board`` included) wait longer without a flag.
    Raises FlipLabError when the variable is set but is not a positive number of seconds.
    """
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        raise FlipLabError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds")
    return value


class BoardClient:
    """A connection to one board.

    port: serial device (e.g. /dev/ttyACM0, or the /dev/pts/N a virtual board prints);
    baudrate: bits/s on a real UART (ignored by a pseudo-terminal);
    timeout: seconds to wait for a reply beyond its transmission time (None: default_timeout());
    retries: how many times a request is repeated after a timeout or a corrupt reply.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        timeout: float | None = None,
        retries: int = DEFAULT_RETRIES,
        serial_factory: Callable[..., serial.Serial] = serial.Serial,
    ) -> None:
        if timeout is None:
            timeout = default_timeout()
        if timeout <= 0 or retries < 0:
            raise FlipLabError("timeout must be > 0 and retries >= 0")
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.retries = retries
        # a random start, so a late reply meant for an earlier connection is not taken for ours
        self.seq = int.from_bytes(os.urandom(2), "little")
        self.wire_bytes_out = 0  # bytes sent, delimiters included
        self.wire_bytes_in = 0  # bytes received
        self.retransmissions = 0
        self.discarded_frames = 0  # garbled, stale or unexpected frames ignored
        self._rx = bytearray()
        try:
            self._ser = serial_factory(
                port, baudrate=baudrate, timeout=POLL_INTERVAL, write_timeout=timeout + 1.0,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise FlipLabError(f"cannot open serial port {port}: {_one_line(exc)}") from None
        try:
            self._ser.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as exc:
            self._ser.close()
            raise FlipLabError(f"cannot use serial port {port}: {_one_line(exc)}") from None

    # ------------------------------------------------------------------ plumbing ----
    def close(self) -> None:
        """Closes the serial port."""
        self._ser.close()

    def __enter__(self) -> BoardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wire_time(self, nbytes: int) -> float:
        """Seconds to move `nbytes` over the UART (10 bits per byte)."""
        return 10.0 * nbytes / self.baudrate

    def _send(self, data: bytes) -> None:
        try:
            self._ser.write(data)
            self._ser.flush()
        except serial.SerialTimeoutException:
            raise TimeoutError from None
        except (serial.SerialException, OSError) as exc:
            raise FlipLabError(f"lost the connection to the board at {self.port}: {_one_line(exc)}") from None
        self.wire_bytes_out += len(data)

    def _receive_frame(self, deadline: float) -> bytes | None:
        """Returns the next non-empty encoded frame, or None at the deadline (time.monotonic)."""
        while True:
            end = self._rx.find(0)
            while end == 0:  # empty frames (a lone delimiter) carry nothing
                del self._rx[:1]
                end = self._rx.find(0)
            if end > 0:
                frame = bytes(self._rx[:end])
                del self._rx[: end + 1]
                return frame
            if len(self._rx) > P.MAX_ENCODED:  # garbage without delimiter: keep only a tail
                self.discarded_frames += 1
                del self._rx[: len(self._rx) - P.MAX_ENCODED]
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                raise FlipLabError(f"lost the connection to the board at {self.port}: {_one_line(exc)}") from None
            self.wire_bytes_in += len(chunk)
            self._rx += chunk

    def request(
        self, command: P.Command, payload: bytes = b"", *, reply_size: int = 0, work_time: float = 0.0
    ) -> bytes:
        """Sends one request and returns the payload of its OK reply.

        reply_size: expected reply payload bytes, to allow for their time on the wire;
        work_time: seconds the board may need to execute the command (digest, erase).
        Retries on timeout / CRC error with the same sequence number; raises FlipLabError when
        the board answers with an error status or not at all.
        """
        self.seq = (self.seq + 1) & 0xFFFF
        seq = self.seq
        # a leading delimiter ends any partial frame the board may hold from an earlier failure
        wire = P.DELIMITER + P.encode_frame(command, seq, payload)
        budget = self.timeout + work_time + self._wire_time(len(wire) + reply_size + 64)
        for attempt in range(self.retries + 1):
            if attempt:
                self.retransmissions += 1
            deadline = time.monotonic() + budget
            try:
                self._send(wire)
            except TimeoutError:
                continue
            while time.monotonic() < deadline:  # also ends a never-ending stream of bad frames
                encoded = self._receive_frame(deadline)
                if encoded is None:
                    break  # timeout: send again
                try:
                    frame = P.decode_frame(encoded)
                except P.FrameError:
                    self.discarded_frames += 1
                    continue
                if not frame.response or frame.seq != seq or frame.command != command:
                    self.discarded_frames += 1  # stale reply to an earlier attempt, or an echo
                    continue
                if frame.status != P.Status.OK:
                    try:
                        name = P.Status(frame.status).name
                    except ValueError:
                        name = f"status 0x{frame.status:02x}"
                    raise FlipLabError(
                        f"board at {self.port} refused {command.name}: {name}"
                    )
                return frame.payload
        raise FlipLabError(
            f"board at {self.port} did not answer {command.name} after {self.retries + 1} "
            f"attempts ({budget:.1f} s each)"
        )

    # ------------------------------------------------------------------ commands ----
    def info(self) -> P.Info:
        """INFO: protocol version, memory size (bytes), word width (bits), capabilities, extent."""
        payload = self.request(P.Command.INFO, reply_size=32)
        try:
            info = P.Info.unpack(payload)
        except P.FrameError as exc:
            raise FlipLabError(f"board at {self.port} sent a malformed INFO reply: {exc}") from None
        if info.protocol_version not in P.SUPPORTED_VERSIONS:
            raise FlipLabError(
                f"board at {self.port} speaks protocol {info.protocol_version}, host "
                f"{' and '.join(map(str, P.SUPPORTED_VERSIONS))}"
            )
        return info

    def write_chunk(self, offset: int, data: bytes) -> None:
        """WRITE one chunk of 1..4096 bytes at byte `offset`."""
        self.request(P.Command.WRITE, P.write_request(offset, data))

    def read_chunk(self, offset: int, length: int) -> bytes:
        """READ one chunk of 1..4096 bytes from byte `offset`."""
        data = self.request(P.Command.READ, P.read_request(offset, length), reply_size=length)
        if len(data) != length:
            raise FlipLabError(f"board at {self.port} returned {len(data)} bytes for a READ of {length}")
        return data

    def erase(self, offset: int, length: int, erase_block: int = 0) -> None:
        """ERASE `length` bytes from `offset` (multiples of `erase_block` where there is one)."""
        # a block erase per erase block, or (no erase command) writing 0xFF at about DIGEST_RATE
        work = (length // erase_block) * ERASE_BLOCK_TIME if erase_block else length / DIGEST_RATE
        self.request(P.Command.ERASE, P.erase_request(offset, length), work_time=work)

    def digest(self, offset: int, length: int, source: P.DigestSource = P.DigestSource.CELLS) -> int:
        """CRC-32/ISO-HDLC (zlib.crc32) of `length` bytes from `offset`, computed by the board."""
        reply = self.request(P.Command.DIGEST, P.digest_request(offset, length, source), reply_size=8,
                             work_time=length / DIGEST_RATE)
        if len(reply) != 8:
            raise FlipLabError(f"board at {self.port} sent a malformed DIGEST reply")
        return int.from_bytes(reply[:4], "little")

    def set_mode(self, mode: P.Mode) -> None:
        """SET_MODE: error model on an emulated memory, programming mode on a real chip."""
        self.request(P.Command.SET_MODE, mode.pack())

    def stats(self) -> dict[str, int]:
        """STATS: the board's frame and transfer counters."""
        try:
            return P.unpack_stats(self.request(P.Command.STATS, reply_size=40))
        except P.FrameError as exc:
            raise FlipLabError(f"board at {self.port} sent a malformed STATS reply: {exc}") from None

    def reset(self) -> None:
        """RESET: error model back to none, counters cleared; memory contents are kept."""
        self.request(P.Command.RESET)

    # ------------------------------------------------------- accelerator (v2) ----
    def accel_info(self) -> P.AccelInfo:
        """ACCEL_INFO: the accelerator's build parameters. A board without the accelerator (INFO
        lacks CAP_ACCELERATOR: the firmware, a memory-only FPGA build) is a one-line error."""
        info = self.info()
        if not info.capabilities & P.CAP_ACCELERATOR:
            raise FlipLabError(
                f"board at {self.port} ({info.name}, protocol {info.protocol_version}) has no "
                f"accelerator: the ACCEL commands of protocol 2 need the FPGA build with ACCEL = 1"
            )
        try:
            return P.AccelInfo.unpack(self.request(P.Command.ACCEL_INFO, reply_size=16))
        except P.FrameError as exc:
            raise FlipLabError(f"board at {self.port} sent a malformed ACCEL_INFO reply: {exc}") from None

    def accel_write(self, space: P.AccelSpace, first: int, values: list[int]) -> None:
        """ACCEL_WRITE `values` (u32 each) into the program or parameter space from `first`, in
        requests of up to 1024 values."""
        for pos in range(0, len(values), P.ACCEL_WRITE_MAX):
            chunk = values[pos: pos + P.ACCEL_WRITE_MAX]
            self.request(P.Command.ACCEL_WRITE, P.accel_write_request(space, first + pos, chunk))

    def accel_load(self, offset: int, length: int) -> None:
        """ACCEL_LOAD: the board copies `length` bytes of its memory from `offset` into the
        accelerator's payload RAM (2 clock cycles per byte on the FPGA)."""
        self.request(P.Command.ACCEL_LOAD, P.accel_load_request(offset, length),
                     work_time=length / DIGEST_RATE)

    def accel_run(self, layers: int, inputs: list[int], outputs: int) -> P.AccelRun:
        """ACCEL_RUN: write the input vector, run `layers` layers, return the counters and the
        first `outputs` entries of the last layer's output."""
        reply = self.request(P.Command.ACCEL_RUN, P.accel_run_request(layers, outputs, inputs),
                             reply_size=8 + 2 * outputs)
        try:
            return P.AccelRun.unpack(reply, outputs)
        except P.FrameError as exc:
            raise FlipLabError(f"board at {self.port} sent a malformed ACCEL_RUN reply: {exc}") from None

    # ------------------------------------------------------------ bulk transfers ----
    def write(self, data: bytes, offset: int = 0, *, progress: bool = False, verify: bool = True) -> None:
        """Writes `data` at byte `offset` in chunks (erasing first where the memory needs it),
        then checks the board's DIGEST of the cells against zlib.crc32(data)."""
        info = self.info()
        end = offset + len(data)
        if offset < 0 or end > info.memory_size:
            raise FlipLabError(
                f"{len(data)} bytes at offset {offset} do not fit the board memory of {info.memory_size} bytes"
            )
        if info.erase_block and data:
            blk = info.erase_block
            start = offset // blk * blk
            stop = min(-(-end // blk) * blk, info.memory_size)
            self.erase(start, stop - start, blk)
        chunk = min(info.max_chunk, P.MAX_CHUNK)
        from tqdm import tqdm  # here, not at the top: host --help does not need it

        with tqdm(total=len(data), unit="B", unit_scale=True, unit_divisor=1024, desc="write",
                  disable=not progress, leave=False) as bar:
            for pos in range(0, len(data), chunk):
                piece = data[pos: pos + chunk]
                self.write_chunk(offset + pos, piece)
                bar.update(len(piece))
        if verify and data:
            got = self.digest(offset, len(data), P.DigestSource.CELLS)
            want = zlib.crc32(data)
            if got != want:
                raise FlipLabError(
                    f"write verification failed: board digest 0x{got:08x} != 0x{want:08x} "
                    f"of the {len(data)} bytes written at offset {offset}"
                )

    def read(self, offset: int, length: int, *, progress: bool = False, info: P.Info | None = None) -> bytes:
        """Reads `length` bytes from byte `offset` in chunks. Where the board's reads are
        deterministic (exact cells and no random read-error model) a final DIGEST of a fresh
        read must match the bytes received."""
        info = info or self.info()
        if offset < 0 or length < 0 or offset + length > info.memory_size:
            raise FlipLabError(
                f"cannot read {length} bytes at offset {offset} from a board memory of {info.memory_size} bytes"
            )
        chunk = min(info.max_chunk, P.MAX_CHUNK)
        out = bytearray()
        from tqdm import tqdm

        with tqdm(total=length, unit="B", unit_scale=True, unit_divisor=1024, desc="read",
                  disable=not progress, leave=False) as bar:
            for pos in range(0, length, chunk):
                n = min(chunk, length - pos)
                out += self.read_chunk(offset + pos, n)
                bar.update(n)
        deterministic = info.exact_cells and info.model in (P.Model.NONE, P.Model.STUCK)
        if deterministic and length:
            got = self.digest(offset, length, P.DigestSource.READ)
            if got != zlib.crc32(out):
                raise FlipLabError(
                    f"read verification failed: board digest 0x{got:08x} != 0x{zlib.crc32(out):08x} "
                    f"of the {length} bytes received"
                )
        return bytes(out)
