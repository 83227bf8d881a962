"""A host session against a board on a serial port: the real `host board` commands and
BoardClient, plus hand-made bad frames. Run as a program by cocotb_board_server.py against the
simulated FPGA top (python board_session.py PORT WORKDIR); exits 0 when every check holds, else
prints the failed check and exits 1.

The expectations are the protocol's (docs/protocol.md); then 60 random requests, valid and
invalid, go to both the FPGA and the C firmware's virtual board, whose replies must agree.
"""

from __future__ import annotations

import contextlib
import io
import struct
import sys
import time
from pathlib import Path

import numpy as np

from host.board import protocol as P
from host.board.client import BoardClient
from host.board.emulate import VirtualBoard
from host.cli import main as host_main
from host.errors import FlipLabError

MEMORY = 65536  # MEM_ADDR_BITS = 16 in the simulation


def host(*argv: str, exit_code: int = 0) -> str:
    """Runs `host ARGV` in process; returns its stdout and stderr; checks the exit code."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = host_main(list(argv))
    assert code == exit_code, f"host {' '.join(argv)} exited {code}: {out.getvalue()}"
    return out.getvalue()


def raw_exchange(client: BoardClient, wire: bytes, wait: float) -> list[P.Frame]:
    """Sends wire bytes as they are; returns the frames that arrive within `wait` seconds."""
    client._ser.write(b"\x00" + wire)
    frames, buf, deadline = [], bytearray(), time.monotonic() + wait
    while time.monotonic() < deadline:
        buf += client._ser.read(256)
        while b"\x00" in buf:
            enc, _, rest = bytes(buf).partition(b"\x00")
            buf = bytearray(rest)
            if enc:
                frames.append(P.decode_frame(enc))
        if frames:
            break
    return frames


def session(port: str, work: Path, wait: float) -> None:
    link = ("--port", port)
    out = host("board", "info", *link)
    assert "board:            fpga-bram" in out and f"memory size:      {MEMORY} bytes" in out, out
    assert "written extent:   0 bytes" in out and "exact-cells" in out, out

    # two WRITE chunks of data with runs of zeros (every COBS block shape) and a tail
    gen = np.random.default_rng(13)
    data = gen.integers(0, 256, 4096 + 1000, dtype=np.uint8)
    data[gen.random(data.size) < 0.2] = 0
    data[300:700] = 0
    src = work / "data.raw"
    src.write_bytes(data.tobytes())
    host("board", "write", str(src), "--raw", "-q", *link)  # checked by DIGEST(CELLS) inside
    host("board", "verify", str(src), "--raw", *link)
    host("board", "dump", "-o", str(work / "dump.bin"), "-q", *link)
    assert (work / "dump.bin").read_bytes() == data.tobytes(), "dump differs from what was written"
    host("board", "read", "--offset", "4000", "--length", "200", "-o", str(work / "part.bin"), "-q", *link)
    assert (work / "part.bin").read_bytes() == data.tobytes()[4000:4200]
    assert "written extent:   5096 bytes" in host("board", "info", *link)

    # an exact memory: no error models
    err = host("board", "mode", "bsc:1e-3", *link, exit_code=2)
    assert "UNSUPPORTED" in err and err.count("\n") == 1, err
    host("board", "mode", "none", *link)

    with BoardClient(port) as c:
        c.request(P.Command.ERASE, P.erase_request(1000, 24))
        back = c.read_chunk(990, 40)
        expect = data.tobytes()[990:1000] + b"\xff" * 24 + data.tobytes()[1024:1030]
        assert back == expect, back.hex()
        for payload, status in ((P.read_request(0, 0), "BAD_ARGUMENT"),
                                (P.read_request(MEMORY - 10, 11), "OUT_OF_RANGE"),
                                (b"\x01\x02", "BAD_LENGTH")):
            try:
                c.request(P.Command.READ, payload)
                raise AssertionError(f"READ {payload.hex()} was not refused")
            except FlipLabError as exc:
                assert status in str(exc), exc

        before = c.stats()
        good = P.encode_frame(P.Command.INFO, 0x1234)
        assert raw_exchange(c, good[:5] + bytes([good[5] ^ 0x40]) + good[6:], wait) == []  # CRC
        assert raw_exchange(c, bytes([0x09, 0x01, 0x02, 0x00]), wait) == []  # COBS: code past the end
        bad_version = raw_exchange(c, P.encode_frame(P.Command.INFO, 0x0777, version=2), wait)
        assert [(f.seq, f.status, f.payload) for f in bad_version] == [(0x0777, P.Status.BAD_VERSION, b"")]
        looped = raw_exchange(c, P.encode_frame(P.Command.INFO, 9, response=True), wait)
        assert looped == [], "a response frame was answered"
        unknown = raw_exchange(c, P.encode_frame(0x42, 0x0888), wait)
        assert [(f.command, f.seq, f.status) for f in unknown] == [(0x42, 0x0888, P.Status.UNKNOWN_COMMAND)]
        after = c.stats()
        assert after["rx_crc_errors"] == before["rx_crc_errors"] + 1, (before, after)
        assert after["rx_cobs_errors"] == before["rx_cobs_errors"] + 1, (before, after)
        # bad version, looped-back response, unknown command (+ the STATS requests themselves)
        assert after["rx_bad_requests"] == before["rx_bad_requests"] + 3, (before, after)
        assert after["rx_frames"] == before["rx_frames"] + 4, (before, after)
        assert after["tx_frames"] == before["tx_frames"] + 3, (before, after)
        # the dump, the 200-byte read and the 40 bytes around the erased range (WRITE is
        # checked by DIGEST, which is no READ)
        assert after["bytes_written"] == data.size and after["bytes_read"] == data.size + 200 + 40, after

        c.request(P.Command.RESET, b"")
        stats = c.stats()
        assert stats["rx_frames"] == 1 and sum(stats.values()) == 1, stats  # only this STATS
    # RESET keeps the memory and the written extent
    assert "written extent:   5096 bytes" in host("board", "info", *link)
    host("board", "dump", "--length", "990", "-o", str(work / "head.bin"), "-q", *link)
    assert (work / "head.bin").read_bytes() == data.tobytes()[:990]


def random_request(gen: np.random.Generator) -> tuple[int, bytes, int]:
    """(command, payload, version): valid and invalid requests of every command, with offsets
    and lengths at and across the memory's end, short data so the simulation stays small."""
    def offset() -> int:
        return int(gen.choice([0, gen.integers(0, MEMORY), MEMORY - 40, MEMORY - 1, MEMORY, 0xFFFFFFF0]))

    def pick(*options):
        return options[int(gen.integers(0, len(options)))]

    cmd = int(gen.choice([1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 3, 3, 5, 0x09, 0x42]))
    if cmd == P.Command.WRITE:
        payload = struct.pack("<I", offset()) + gen.integers(0, 256, pick(0, 1, int(gen.integers(1, 64))),
                                                             dtype=np.uint8).tobytes()
    elif cmd == P.Command.READ:
        payload = struct.pack("<IHH", offset(), pick(0, 1, int(gen.integers(1, 64)), 4097), 0)[:pick(8, 8, 7)]
    elif cmd == P.Command.ERASE:
        payload = struct.pack("<II", offset(), pick(0, 1, int(gen.integers(1, 64)), MEMORY))
    elif cmd == P.Command.DIGEST:
        payload = struct.pack("<IIB3x", offset(), pick(0, int(gen.integers(1, 4096)), MEMORY),
                              pick(0, 1, 2))[:pick(12, 12, 11)]
    elif cmd == P.Command.SET_MODE:
        payload = bytes(pick(20, 20, 19))  # model NONE; both boards accept it
    else:
        payload = bytes(pick(0, 0, 1))
    return cmd, payload, pick(1, 1, 1, 1, 1, 1, 1, 2)


def differential(port: str, wait: float, count: int) -> None:
    """The same random requests to the FPGA and to the C firmware's virtual board (equal-size
    exact memory): every reply's command, status and payload must agree, except where the
    boards differ by design (INFO's capabilities and name)."""
    gen = np.random.default_rng(2026)
    with VirtualBoard(size=MEMORY) as vb, BoardClient(port) as fpga, BoardClient(vb.port) as ref:
        for c in (fpga, ref):
            c.request(P.Command.RESET, b"")
            c.request(P.Command.ERASE, P.erase_request(0, MEMORY))  # written extent back to 0
            c.request(P.Command.WRITE, P.write_request(0, bytes(range(256)) * 2))
        for k in range(count):
            cmd, payload, version = random_request(gen)
            wire = P.encode_frame(cmd, k, payload, version=version)
            got = [(f.command, f.status, f.payload) for f in raw_exchange(fpga, wire, wait)]
            want = [(f.command, f.status, f.payload) for f in raw_exchange(ref, wire, wait)]
            if cmd == P.Command.INFO and len(got) == len(want) == 1 and got[0][1] == P.Status.OK:
                mask = lambda p: p[:2] + p[4:20]  # noqa: E731 (capabilities and name differ)
                got, want = [(*got[0][:2], mask(got[0][2]))], [(*want[0][:2], mask(want[0][2]))]
            assert got == want, f"request {k} {cmd:#x} v{version} {payload.hex()}: FPGA {got}, firmware {want}"
        assert fpga.stats() == ref.stats()


if __name__ == "__main__":
    try:
        wait = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
        session(sys.argv[1], Path(sys.argv[2]), wait)
        differential(sys.argv[1], wait, count=60)
    except (AssertionError, FlipLabError) as exc:
        print(f"board session FAILED: {type(exc).__name__}: {exc}", flush=True)
        raise SystemExit(1) from None
    print("board session passed", flush=True)
