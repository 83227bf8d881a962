"""The documented board walkthrough as a user runs it (`python -m host ...`, real processes)
against the virtual board: export, write, dump, eval with the manifest, diff, eval --board."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from host.board.emulate import VirtualBoard
from host.image import read_image

ROOT = Path(__file__).resolve().parents[2]
ALPHA = 0.001


def host(*args, cwd):
    """Runs `python -m host ARGS`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "host", *map(str, args)], cwd=cwd, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    proc = subprocess.run(["make", "-C", str(ROOT / "firmware"), "host"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = tmp_path_factory.mktemp("board-cli")
    code, _, err = host("export", "digits_mlp", "--codec", "parity8", "-o", "weights.bin", cwd=d)
    assert code == 0, err
    return d


def test_write_dump_eval_diff_through_the_cli(exported):
    d = exported
    golden = read_image(d / "weights.bin")
    with VirtualBoard(size=1 << 20) as board:
        code, out, err = host("board", "write", "weights.bin", "--port", board.port, cwd=d)
        assert code == 0, err
        assert f"wrote {golden.payload.size} bytes" in out
        code, out, err = host("board", "dump", "--port", board.port, "-o", "dump.bin", cwd=d)
        assert code == 0, err
        assert (d / "dump.bin").read_bytes() == golden.payload.tobytes()
        code, out, err = host("board", "verify", "weights.bin", "--port", board.port, cwd=d)
        assert code == 0 and out.startswith("OK"), err
    code, out, err = host("eval", "--image", "dump.bin", "--manifest", "weights.manifest", "--data", "digits",
                          "--json", cwd=d)
    assert code == 0, err
    from_board = json.loads(out)
    code, out, err = host("eval", "--image", "weights.bin", "--data", "digits", "--json", cwd=d)
    assert code == 0, err
    assert json.loads(out)["accuracy"] == from_board["accuracy"]


def test_noisy_board_dump_is_seen_by_diff_and_eval_board(exported):
    d = exported
    golden = read_image(d / "weights.bin")
    p = 1e-3
    with VirtualBoard(size=1 << 20, channel=f"bsc:{p}", seed=21) as board:
        assert host("board", "write", "weights.bin", "--port", board.port, "-q", cwd=d)[0] == 0
        code, _, err = host("board", "dump", "--port", board.port, "-o", "noisy-dump.bin", "-q", cwd=d)
        assert code == 0, err
        code, out, err = host("eval", "--image", "weights.bin", "--board", board.port, "--data", "digits",
                              "--json", cwd=d)
        assert code == 0, err
        via_board = json.loads(out)
    dump = np.fromfile(d / "noisy-dump.bin", dtype=np.uint8)
    flips = int(np.unpackbits(dump ^ golden.payload).sum())
    bits = 8 * golden.payload.size
    assert binomtest(flips, bits, p).pvalue > ALPHA
    code, out, err = host("diff", "weights.bin", "noisy-dump.bin", "--json", cwd=d)
    assert code == 0, err
    assert json.loads(out)["errors"] == flips
    assert via_board["flips"] is not None and binomtest(via_board["flips"], bits, p).pvalue > ALPHA
    assert 0.0 <= via_board["accuracy"] <= 1.0


def test_cli_errors_exit_2_with_one_line(exported):
    d = exported
    code, out, err = host("board", "info", "--port", "/dev/no-such-port", cwd=d)
    assert code == 2 and err.strip().count("\n") == 0
    assert err.startswith("host: error: cannot open serial port /dev/no-such-port")
    code, out, err = host("board", "write", "missing.bin", "--port", "/dev/null", cwd=d)
    assert code == 2 and "missing.bin" in err and "Traceback" not in err
    small = read_image(d / "weights.bin").payload.size // 2
    with VirtualBoard(size=small) as board:
        code, out, err = host("board", "write", "weights.bin", "--port", board.port, cwd=d)
        assert code == 2 and f"do not fit the board memory of {small} bytes" in err
        code, out, err = host("board", "dump", "--port", board.port, "-o", "nothing.bin", cwd=d)
        assert code == 2 and "pass --length" in err
        assert not (d / "nothing.bin").exists()
