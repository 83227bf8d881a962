"""Benchmark: the STM32 firmware on QEMU's netduinoplus2 (docs/board.md, "Under emulation").

Builds the emulation image twice (core clock 168 MHz as QEMU runs it, and the real board's
16 MHz, to show what the clock assumption costs), boots each, and times with BoardClient:
INFO, a 40 KiB WRITE (with its DIGEST check), a clean read-back and a BSC 1e-3 read-back.
Median of --repeat runs, wall time, plus the retransmissions the host needed.

    .venv/bin/python bench/bench_qemu.py [--repeat 3] [--size 40960]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host.board import protocol as P  # noqa: E402
from host.board.client import BoardClient  # noqa: E402
from host.board.qemu import QemuBoard  # noqa: E402


def build(build_dir: Path, hclk: int) -> Path:
    subprocess.run(["make", "-C", str(ROOT / "firmware"), "mcu", f"BUILD={build_dir}", "MCU_MEMORY=emu",
                    "MCU_MEM_SIZE=65536", f"MCU_HCLK={hclk}"], check=True, capture_output=True, timeout=300)
    return build_dir / "mcu" / "fliplab-f401.elf"


def one_run(elf: Path, data: bytes) -> dict:
    times = {}
    with QemuBoard(elf) as board, BoardClient(board.port, timeout=5.0) as c:
        t = time.perf_counter()
        c.info()
        times["info_s"] = time.perf_counter() - t
        t = time.perf_counter()
        c.write(data)
        times["write_s"] = time.perf_counter() - t
        t = time.perf_counter()
        assert c.read(0, len(data)) == data
        times["read_s"] = time.perf_counter() - t
        c.set_mode(P.mode_from_spec("bsc:1e-3", seed=1))
        t = time.perf_counter()
        c.read(0, len(data))
        times["noisy_read_s"] = time.perf_counter() - t
        times["retransmissions"] = c.retransmissions
        times["board_rx_timeouts"] = c.stats()["rx_timeouts"]
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=40 * 1024)
    args = ap.parse_args()
    data = np.random.default_rng(0).integers(0, 256, args.size, dtype=np.uint8).tobytes()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for hclk in (168_000_000, 16_000_000):
            elf = build(Path(tmp) / str(hclk), hclk)
            runs = [one_run(elf, data) for _ in range(args.repeat)]
            out[f"hclk_{hclk // 1_000_000}MHz"] = {k: round(statistics.median(r[k] for r in runs), 3)
                                                   for k in runs[0]}
    print(json.dumps({"size": args.size, "repeat": args.repeat, **out}, indent=2))


if __name__ == "__main__":
    main()
