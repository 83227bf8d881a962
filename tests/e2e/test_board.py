"""End to end: the compiled virtual board (firmware/targets/host) on a real pseudo-terminal,
driven with pyserial through host.board. Statistical checks use scipy.stats.binomtest at
alpha = 0.001 (the board's noise is seeded, so each run sees the same bits)."""

from __future__ import annotations

import argparse
import os
import signal
import struct
import subprocess
import sys
import time
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
import serial
from scipy.stats import binomtest

from host.board import protocol as P
from host.board import transfer
from host.board.cli import register
from host.board.client import BoardClient
from host.board.emulate import VirtualBoard
from host.errors import FlipLabError

ROOT = Path(__file__).resolve().parents[2]
ALPHA = 0.001


@pytest.fixture(scope="module", autouse=True)
def built_board():
    proc = subprocess.run(["make", "-C", str(ROOT / "firmware"), "host"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def board():
    with VirtualBoard(size=1 << 20) as b:
        yield b


def random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def bit_errors(a: bytes, b: bytes) -> np.ndarray:
    """Positions (bit indices) where a and b differ."""
    x = np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)
    return np.flatnonzero(np.unpackbits(x, bitorder="little"))


def run_cli(*argv: str) -> int:
    ap = argparse.ArgumentParser(prog="host")
    register(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(list(argv))
    return args.func(args)


# --------------------------------------------------------------------------- transfers ----

def test_write_then_dump_is_identical_without_errors(board, tmp_path):
    data = random_bytes(300_001, 1)  # not a multiple of the chunk size
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    assert transfer.write(src, board.port, raw=True, progress=False) == len(data)
    info = transfer.board_info(board.port)
    assert info.written_extent == len(data) and info.memory_size == 1 << 20
    out = tmp_path / "dump.bin"
    assert transfer.dump(board.port, out, progress=False) == len(data)
    assert out.read_bytes() == data
    assert transfer.verify(src, board.port, raw=True).ok
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_write_dump_verify_info(board, tmp_path, capsys):
    data = random_bytes(50_000, 2)
    src = tmp_path / "w.bin"
    src.write_bytes(data)
    assert run_cli("board", "write", str(src), "--raw", "--port", board.port, "-q") == 0
    assert run_cli("board", "dump", "--port", board.port, "-o", str(tmp_path / "d.bin"), "-q") == 0
    assert (tmp_path / "d.bin").read_bytes() == data
    assert run_cli("board", "read", "--port", board.port, "--offset", "100", "--length", "1k",
                   "-o", str(tmp_path / "r.bin"), "-q") == 0
    assert (tmp_path / "r.bin").read_bytes() == data[100:1124]
    assert run_cli("board", "verify", str(src), "--raw", "--port", board.port) == 0
    other = tmp_path / "other.bin"
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(FlipLabError, match="does not hold"):
        run_cli("board", "verify", str(other), "--raw", "--port", board.port)
    assert run_cli("board", "info", "--port", board.port) == 0
    out = capsys.readouterr().out
    assert "written extent:   50000 bytes" in out and "memory size:      1048576 bytes" in out
    assert "OK: 50000 bytes match" in out


def test_roundtrip_and_runtime_mode_changes(board):
    data = random_bytes(20_000, 3)
    assert transfer.roundtrip(data, board.port) == data
    transfer.set_mode(board.port, "bsc:0.01", seed=5)
    noisy = transfer.read(board.port, 0, len(data), progress=False)
    assert len(bit_errors(data, noisy)) > 0
    transfer.set_mode(board.port, "none")
    assert transfer.read(board.port, 0, len(data), progress=False) == data


def test_flash_board_erases_before_rewriting(tmp_path):
    with VirtualBoard(nvm="flash", size=256 << 10) as b:
        first, second = random_bytes(10_000, 4), random_bytes(10_000, 5)
        assert transfer.roundtrip(first, b.port) == first
        assert transfer.roundtrip(second, b.port) == second  # AND-programming alone would fail
        assert transfer.board_info(b.port).erase_block == 4096


def test_load_payload_uses_the_image_payload(tmp_path, monkeypatch):
    payload = np.arange(300, dtype=np.uint16).astype(np.uint8)
    fake = types.ModuleType("host.image")
    fake.read_image = lambda path: types.SimpleNamespace(payload=payload)
    monkeypatch.setitem(sys.modules, "host.image", fake)
    f = tmp_path / "weights.bin"
    f.write_bytes(b"header-and-everything")
    assert transfer.load_payload(f) == payload.tobytes()
    assert transfer.load_payload(f, raw=True) == b"header-and-everything"
    with pytest.raises(FlipLabError, match="no such file"):
        transfer.load_payload(tmp_path / "missing.bin")


# ---------------------------------------------------------------------- error models ----

def test_bsc_flip_count_is_binomial():
    p, n_bytes = 1e-3, 256 << 10
    data = random_bytes(n_bytes, 6)
    with VirtualBoard(size=1 << 20, channel=f"bsc:{p}", seed=11) as b:
        first = transfer.roundtrip(data, b.port)
        second = transfer.read(b.port, 0, n_bytes, progress=False)
        stats = transfer.board_stats(b.port)
    bits = 8 * n_bytes
    for dump in (first, second):
        k = len(bit_errors(data, dump))
        assert binomtest(k, bits, p).pvalue > ALPHA, (k, bits * p)
    assert first != second  # fresh noise on every read
    assert stats["flips_injected"] == len(bit_errors(data, first)) + len(bit_errors(data, second))


def test_asymmetric_channel_flips_by_direction():
    p01, p10, n = 2e-3, 2e-2, 64 << 10
    zeros, ones = bytes(n), b"\xff" * n
    with VirtualBoard(channel=f"asym:{p01},{p10}", seed=3, size=1 << 20) as b:
        up = transfer.roundtrip(zeros, b.port)
        down = transfer.roundtrip(ones, b.port)
    k_up = int(np.unpackbits(np.frombuffer(up, np.uint8)).sum())
    k_down = int((1 - np.unpackbits(np.frombuffer(down, np.uint8))).sum())
    assert binomtest(k_up, 8 * n, p01).pvalue > ALPHA
    assert binomtest(k_down, 8 * n, p10).pvalue > ALPHA


def test_stuck_cells_are_wrong_on_every_read(tmp_path):
    f, s, n = 0.01, 0.5, 128 << 10
    data = random_bytes(n, 7)
    with VirtualBoard(channel=f"stuck:{f},{s},seed=99", size=1 << 20) as b:
        reads = [transfer.roundtrip(data, b.port)] + [transfer.read(b.port, 0, n, progress=False)
                                                       for _ in range(2)]
        # the same physical cells stay stuck whatever is written: all 0 reveals stuck-at-1
        at1 = transfer.roundtrip(bytes(n), b.port)
        at0 = transfer.roundtrip(b"\xff" * n, b.port)
    assert reads[0] == reads[1] == reads[2]
    wrong = bit_errors(data, reads[0])
    # a cell reads wrong when stuck (f) at the value opposite to the random data bit (1/2)
    assert binomtest(len(wrong), 8 * n, f / 2).pvalue > ALPHA
    stuck1 = np.flatnonzero(np.unpackbits(np.frombuffer(at1, np.uint8), bitorder="little"))
    stuck0 = np.flatnonzero(1 - np.unpackbits(np.frombuffer(at0, np.uint8), bitorder="little"))
    assert len(np.intersect1d(stuck1, stuck0)) == 0
    assert binomtest(len(stuck1) + len(stuck0), 8 * n, f).pvalue > ALPHA
    assert binomtest(len(stuck1), len(stuck1) + len(stuck0), s).pvalue > ALPHA
    # every wrong bit of the random image is a stuck cell
    assert np.isin(wrong, np.union1d(stuck0, stuck1)).all()


# ------------------------------------------------------------------------ robustness ----

def raw_port(port: str) -> serial.Serial:
    return serial.Serial(port, timeout=0.3, write_timeout=2)


def read_frames(ser: serial.Serial, wait: float) -> list[bytes]:
    end, buf = time.monotonic() + wait, bytearray()
    while time.monotonic() < end:
        buf += ser.read(max(1, ser.in_waiting))
    return [bytes(x) for x in bytes(buf).split(b"\x00") if x]


def test_garbage_truncated_bad_crc_and_oversize_are_survived(board):
    ser = raw_port(board.port)
    try:
        rng = np.random.default_rng(8)
        ser.write(rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())  # garbage with zeros
        ser.write(bytes(rng.integers(1, 256, 9000, dtype=np.uint8)) + b"\x00")  # oversized frame
        good = P.encode_frame(P.Command.INFO, 7)
        ser.write(good[: len(good) // 2])  # truncated: no delimiter, then silence
        time.sleep(0.3)  # longer than the board's 100 ms idle timeout
        body = bytearray(P.cobs.decode(good[:-1]))
        body[-1] ^= 0x01  # bad CRC
        ser.write(P.cobs.encode(bytes(body)) + b"\x00")
        assert read_frames(ser, 0.3) == []  # nothing of that is answered ...
        ser.write(good)  # ... but a good frame, sent without a leading delimiter, is
        frames = read_frames(ser, 0.5)
        assert len(frames) == 1
        reply = P.decode_frame(frames[0])
        assert reply.response and reply.seq == 7 and reply.status == P.Status.OK
        # a correct CRC over a lying length field: answered BAD_LENGTH
        lying = P.HEADER.pack(1, P.Command.READ, 0, 0, 8, 0xFFFF) + P.read_request(0, 16)
        ser.write(P.cobs.encode(lying + struct.pack("<I", zlib.crc32(lying))) + b"\x00")
        (frame,) = read_frames(ser, 0.5)
        assert P.decode_frame(frame).status == P.Status.BAD_LENGTH
    finally:
        ser.close()
    stats = transfer.board_stats(board.port)
    assert stats["rx_oversize"] >= 1 and stats["rx_timeouts"] >= 1
    assert stats["rx_crc_errors"] + stats["rx_cobs_errors"] >= 2
    assert board.alive
    assert transfer.roundtrip(b"still here", board.port) == b"still here"


class FlakySerial(serial.Serial):
    """A real serial port that corrupts chosen writes (host -> board) or reads (board -> host)."""

    corrupt_writes: set[int] = set()
    corrupt_reads: set[int] = set()
    on_write = None

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.writes = self.reads = 0

    def write(self, data):
        self.writes += 1
        if type(self).on_write:
            type(self).on_write(self.writes)
        if self.writes in self.corrupt_writes:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x10 if data[len(data) // 2] not in (0x10, 0x00) else 0x01
        return super().write(bytes(data))

    def read(self, size=1):
        data = super().read(size)
        if data:
            self.reads += 1
            if self.reads in self.corrupt_reads:
                data = bytearray(data)
                data[0] = 0x55 if data[0] not in (0x55, 0x00) else data[0]
                data = bytes(data)
        return data


def test_client_retries_after_corruption_both_ways(board):
    data = random_bytes(40_000, 9)
    FlakySerial.corrupt_writes = {2, 5}  # two requests garbled on the way to the board
    FlakySerial.corrupt_reads = {3, 9}  # two replies garbled on the way back
    FlakySerial.on_write = None
    try:
        with BoardClient(board.port, timeout=0.3, serial_factory=FlakySerial) as c:
            c.write(data)
            assert c.read(0, len(data)) == data
            assert c.retransmissions >= 2
            assert c.discarded_frames >= 1  # the garbled replies were seen and dropped
    finally:
        FlakySerial.corrupt_writes = FlakySerial.corrupt_reads = set()


def test_a_reply_that_never_comes_fails_within_the_timeout():
    master, slave = os.openpty()  # a "board" that never answers
    try:
        path = os.ttyname(slave)
        t0 = time.monotonic()
        with pytest.raises(FlipLabError, match=r"did not answer INFO after 3 attempts") as exc:
            with BoardClient(path, timeout=0.2, retries=2) as c:
                c.info()
        elapsed = time.monotonic() - t0
        assert elapsed < 3 * 0.6 + 1.0
        assert "\n" not in str(exc.value)
    finally:
        os.close(master)
        os.close(slave)


class BabblingSerial:
    """A serial port whose board never stops sending invalid frames: every read returns some."""

    in_waiting = 64

    def __init__(self, *a, **kw):
        pass

    def reset_input_buffer(self):
        pass

    def write(self, data):
        return len(data)

    def flush(self):
        pass

    def read(self, size=1):
        return b"\x05\x01\x02\x00" * 16

    def close(self):
        pass


def test_a_stream_of_garbage_frames_does_not_hold_the_client_forever():
    t0 = time.monotonic()
    with pytest.raises(FlipLabError, match="did not answer INFO after 2 attempts"):
        with BoardClient("babbler", timeout=0.2, retries=1, serial_factory=BabblingSerial) as c:
            c.info()
    assert time.monotonic() - t0 < 2 * 0.3 + 1.0
    assert c.discarded_frames > 100


def test_a_frozen_board_times_out_then_answers_again_when_resumed(board):
    data = random_bytes(8192, 12)
    assert transfer.roundtrip(data, board.port) == data
    os.kill(board.process.pid, signal.SIGSTOP)  # the board hangs: replies never come
    try:
        t0 = time.monotonic()
        with pytest.raises(FlipLabError, match="did not answer READ after 2 attempts"):
            with BoardClient(board.port, timeout=0.3, retries=1) as c:
                c.read_chunk(0, 4096)
        assert time.monotonic() - t0 < 2 * (0.3 + 0.5) + 1.0
    finally:
        os.kill(board.process.pid, signal.SIGCONT)
    # the resumed board serves the stale requests; a new connection must not mistake their
    # replies for its own, and gets correct data
    with BoardClient(board.port, timeout=1.0) as c:
        assert c.read(4096, 4096) == data[4096:]
        assert c.read(0, 4096) == data[:4096]
    assert board.alive


def test_board_killed_mid_transfer_gives_a_clear_error():
    b = VirtualBoard(size=1 << 20)
    try:
        def kill_at(n):
            if n == 40:
                b.kill()
        FlakySerial.on_write = kill_at
        t0 = time.monotonic()
        with pytest.raises(FlipLabError) as exc:
            with BoardClient(b.port, timeout=0.3, retries=2, serial_factory=FlakySerial) as c:
                c.write(random_bytes(1 << 20, 10))
        assert time.monotonic() - t0 < 10
        msg = str(exc.value)
        assert "\n" not in msg and ("lost the connection" in msg or "did not answer" in msg)
    finally:
        FlakySerial.on_write = None
        b.stop()


def test_cli_errors_are_one_line_flipLab_errors(tmp_path, monkeypatch):
    with pytest.raises(FlipLabError, match="cannot open serial port /dev/no-such-port"):
        run_cli("board", "info", "--port", "/dev/no-such-port")
    with pytest.raises(FlipLabError, match="no such file"):
        run_cli("board", "write", str(tmp_path / "nope.bin"), "--raw", "--port", "/dev/null")
    monkeypatch.setenv("FLIPLAB_VBOARD", str(tmp_path / "missing-vboard"))
    with pytest.raises(FlipLabError, match=r"virtual board not found .*make -C .*firmware host"):
        VirtualBoard()
    monkeypatch.delenv("FLIPLAB_VBOARD")
    # the host's channel grammar refuses a bad spec before the board starts
    with pytest.raises(FlipLabError, match=r"P = 2 is outside \[0, 1\] in spec 'bsc:2'"):
        VirtualBoard(channel="bsc:2")
    with pytest.raises(FlipLabError, match="virtual board failed to start: .*--size"):
        VirtualBoard(size=0)


def test_too_large_image_and_nothing_written(board, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes((1 << 20) + 1))
    with pytest.raises(FlipLabError, match="do not fit the board memory"):
        transfer.write(big, board.port, raw=True, progress=False)
    with pytest.raises(FlipLabError, match="nothing written"):
        transfer.dump(board.port, tmp_path / "d.bin", progress=False)
    assert not (tmp_path / "d.bin").exists()


def test_emulate_prints_the_port_and_serves_until_terminated(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "host", "board", "emulate", "--nvm", "rram",
                             "--channel", "bsc:1e-3", "--size", "64k"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        info = transfer.board_info(port)
        assert info.memory_size == 65536 and info.model == P.Model.BSC
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        with pytest.raises(FlipLabError):
            transfer.board_info(transfer.Link(port, timeout=0.2, retries=0))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_board_does_not_outlive_a_killed_parent():
    code = ("import sys, time; from host.board.emulate import VirtualBoard; "
            "b = VirtualBoard(size=65536); print(b.port, b.process.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port, pid = parent.stdout.readline().split()
        assert transfer.board_info(port).memory_size == 65536
        parent.kill()  # SIGKILL: no clean-up code runs in the parent
        parent.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                break
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break  # exited, waiting to be reaped by init
            time.sleep(0.05)
        else:
            os.kill(int(pid), signal.SIGKILL)
            pytest.fail("the virtual board kept running after its parent was killed")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# ------------------------------------------------------------------ protocol v2 ----
def test_firmware_answers_the_accelerator_commands_unknown(board, tmp_path):
    """The MCU firmware has no accelerator: each protocol-v2 command is answered
    UNKNOWN_COMMAND (counted as a bad request), INFO says protocol 1 without the accelerator
    capability, and the host's accelerator client stops with one line saying so."""
    from host.board import accel
    from host.export import CodecPlan, build_accel_image
    from host.model import load_model

    with BoardClient(board.port) as c:
        info = c.info()
        assert info.protocol_version == 1 and not info.capabilities & P.CAP_ACCELERATOR
        requests = {P.Command.ACCEL_INFO: b"", P.Command.ACCEL_WRITE: P.accel_write_request(0, 0, [1]),
                    P.Command.ACCEL_LOAD: P.accel_load_request(0, 16),
                    P.Command.ACCEL_RUN: P.accel_run_request(1, 1, [0] * 4)}
        for command, payload in requests.items():
            with pytest.raises(FlipLabError, match=f"refused {command.name}: UNKNOWN_COMMAND"):
                c.request(command, payload)
        assert c.stats()["rx_bad_requests"] == len(requests)
        with pytest.raises(FlipLabError) as exc:
            c.accel_info()
        assert "has no accelerator" in str(exc.value) and "\n" not in str(exc.value)
        image = build_accel_image(load_model(ROOT / "models" / "digits_mlp_int8.onnx"),
                                  CodecPlan("parity(int8)"))[0]
        with pytest.raises(FlipLabError, match="has no accelerator"):
            accel.load(c, image)
