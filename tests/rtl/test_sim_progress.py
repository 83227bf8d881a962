"""`host eval --backend rtl` shows a progress bar of the samples simulated on a terminal, and
nothing on stderr when stderr is not a terminal or with --json (the simulation appends one byte
per inference to a progress file the host polls; tests/rtl/test_accel.py checks the file)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from host.sim import require_simulator

SAMPLES = 3


@pytest.fixture(scope="module")
def lowered(tmp_path_factory):
    require_simulator()
    d = tmp_path_factory.mktemp("rtl-progress")
    subprocess.run([sys.executable, "-m", "host", "export", "digits_mlp_int8", "--codec",
                    "parity(int8)", "--lower", "accel", "-o", "acc.bin"], cwd=d, check=True,
                   capture_output=True, timeout=120)
    return d


def on_a_terminal(argv: list[str], cwd) -> str:
    """Runs `python -m host ARGV` with stdin/stdout/stderr on a 100-column pseudo-terminal;
    returns everything it wrote there."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: set the window size (tqdm sizes its bar by it) and run
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
            os.chdir(cwd)
            os.execv(sys.executable, [sys.executable, "-m", "host", *argv])
        finally:
            os._exit(127)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def test_a_terminal_sees_the_samples_counted_up(lowered):
    out = on_a_terminal(["eval", "--image", "acc.bin", "--backend", "rtl", "--samples",
                         str(SAMPLES)], lowered)
    bars = re.findall(rf"rtl:\s+\d+%\|[^|]*\|\s*(\d+)/{SAMPLES}", out)
    assert bars and bars[-1] == str(SAMPLES)
    assert [int(b) for b in bars] == sorted(int(b) for b in bars)
    assert f"accuracy 1.0000 ({SAMPLES}/{SAMPLES})" in out


def test_no_bar_off_a_terminal(lowered):
    p = subprocess.run([sys.executable, "-m", "host", "eval", "--image", "acc.bin", "--backend",
                        "rtl", "--samples", "1"], cwd=lowered, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("accuracy")


def test_no_bar_with_json_even_on_a_terminal(lowered):
    out = on_a_terminal(["eval", "--image", "acc.bin", "--backend", "rtl", "--samples", "1",
                         "--json"], lowered)
    assert "rtl:" not in out and '"backend": "rtl"' in out
