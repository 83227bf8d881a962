"""Benchmark: transfer of a 1 MiB image to and from the virtual board.

Reports, for the write and the read direction, payload bytes per second and the protocol
efficiency = payload bytes / all bytes on the wire in both directions (frames, headers, CRCs,
COBS overhead, delimiters, the INFO and DIGEST exchanges, acknowledgements). Target >= 0.95.

    make -C firmware host && .venv/bin/python bench/bench_board.py [--size BYTES] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.board.client import BoardClient  # noqa: E402
from host.board.emulate import VirtualBoard  # noqa: E402


def measure(size: int, repeat: int) -> dict:
    """Best-of-`repeat` write and read of `size` random bytes; returns the numbers."""
    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    results: dict[str, dict] = {}
    with VirtualBoard(size=max(size, 1 << 20)) as board, BoardClient(board.port) as client:
        for direction in ("write", "read"):
            best = None
            for _ in range(repeat):
                out0, in0 = client.wire_bytes_out, client.wire_bytes_in
                t0 = time.perf_counter()
                if direction == "write":
                    client.write(data)
                else:
                    assert client.read(0, size) == data
                dt = time.perf_counter() - t0
                wire = client.wire_bytes_out - out0 + client.wire_bytes_in - in0
                if best is None or dt < best["seconds"]:
                    best = {"seconds": dt, "payload_bytes": size, "wire_bytes": wire,
                            "payload_bytes_per_s": size / dt, "efficiency": size / wire}
            results[direction] = best
        results["retransmissions"] = client.retransmissions
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1 << 20, help="image bytes (default 1 MiB)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per direction, best kept (default 3)")
    args = ap.parse_args()
    res = measure(args.size, args.repeat)
    for d in ("write", "read"):
        r = res[d]
        print(f"{d:5s}: {r['payload_bytes']} B in {r['seconds']*1e3:.1f} ms = "
              f"{r['payload_bytes_per_s']/2**20:.2f} MiB/s payload, efficiency {r['efficiency']:.4f} "
              f"({r['wire_bytes']} wire bytes)")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
