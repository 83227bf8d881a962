"""End to end: `host characterize` on dumps read back from the compiled virtual board.

The board's error models are the firmware's own (not the host channels), so the fit recovering
their parameters within its 95 % intervals is an independent check of both."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from host.board import transfer
from host.board.emulate import VirtualBoard
from host.cli import main
from host.image import read_image, write_image
from host.profile import read_profile
from tests.host.test_diff import image_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def built_board():
    proc = subprocess.run(["make", "-C", str(ROOT / "firmware"), "host"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def golden_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    image = image_of([("conv1.w", rng.normal(size=2000).astype(np.float32), "fixed8"),
                      ("fc.w", rng.normal(size=30000).astype(np.float32), "fixed8")])
    path = tmp_path / "golden.bin"
    write_image(image, path)
    return path


@pytest.mark.parametrize("channel, permanent, transient", [
    ("stuck:0.02,0.5,seed=9", (0.01, 0.01), (0.0, 0.0)),
    # a transient cell wrong in all three reads looks permanent: rate p**3
    ("asym:0.004,0.02", (0.004 ** 3, 0.02 ** 3), (0.004, 0.02)),
])
def test_characterize_recovers_the_board_channel(tmp_path, capsys, channel, permanent, transient):
    golden = golden_file(tmp_path)
    payload = read_image(golden).payload.tobytes()
    dumps = []
    with VirtualBoard(channel=channel, seed=4, size=1 << 20) as board:
        for k in range(3):
            data = transfer.roundtrip(payload, board.port) if k == 0 else \
                transfer.read(board.port, 0, len(payload), progress=False)
            dumps.append(tmp_path / f"dump{k}.bin")
            dumps[-1].write_bytes(data)
    out = tmp_path / "chip.profile.toml"
    assert main(["characterize", str(golden), *map(str, dumps), "-o", str(out)]) == 0
    assert "profile:" in capsys.readouterr().out
    doc = read_profile(out)
    for part, (p01, p10) in (("permanent", permanent), ("transient", transient)):
        for key, value in (("p01", p01), ("p10", p10)):
            r = doc[part][key]
            assert r["low"] <= value <= r["high"], (part, key, r)
