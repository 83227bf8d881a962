"""Benchmark: bit-error injection, nested sparse sampler vs one uniform per bit.

Injects BSC(p) errors into a random image payload (default 10 MB = 8e7 eligible bits) with
``host.channels`` (``BinarySymmetricChannel.apply``: geometric-gap ladder sampling, copy,
flip) and with a dense reference that draws one uniform per bit in blocks (same copy and
flip). Prints a markdown table of the median wall time over the repeats, flips/s and image
bits/s, and the command that produced it.

    .venv/bin/python bench/bench_inject.py [--mbytes 10] [--repeats 5] [--rates 1e-6 1e-4 1e-2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from host.channels import BinarySymmetricChannel, flip_bits
from host.regions import whole_payload

BLOCK = 1 << 22  # bits per block of the dense reference (32 MiB of float64)


def dense_reference(payload: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Corrupted copy of ``payload``: one uniform per bit, bit flips iff u < p."""
    noisy = payload.copy()
    n_bits = payload.size * 8
    hits = []
    for start in range(0, n_bits, BLOCK):
        u = rng.random(min(BLOCK, n_bits - start))
        hits.append(start + np.flatnonzero(u < p))
    flip_bits(noisy, np.concatenate(hits))
    return noisy


def median_time(fn, repeats: int) -> tuple[float, list]:
    times, outs = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        outs.append(fn(r))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), outs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=10.0, help="payload size in MB (1e6 bytes)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per cell (median)")
    parser.add_argument("--rates", type=float, nargs="+", default=[1e-6, 1e-4, 1e-2])
    args = parser.parse_args(argv)

    n_bytes = int(args.mbytes * 1e6)
    n_bits = 8 * n_bytes
    payload = np.random.default_rng(0).integers(0, 256, n_bytes, dtype=np.uint8)
    region = [whole_payload(n_bytes)]

    print(f"command: {' '.join(['python'] + sys.argv)}")
    print(f"payload: {n_bytes} bytes = {n_bits} eligible bits; median of {args.repeats} repeats; "
          f"numpy {np.__version__}, Python {platform.python_version()}, {platform.machine()}")
    print()
    print("| p | mean flips | sparse ms | sparse flips/s | sparse bits/s "
          "| dense ms | dense flips/s | dense bits/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in args.rates:
        channel = BinarySymmetricChannel(p)
        t_sparse, outs = median_time(
            lambda r, channel=channel: channel.apply(payload, region, seed=1, trial=r)[1].flips, args.repeats
        )
        flips = statistics.mean(outs)
        t_dense, _ = median_time(
            lambda r, p=p: dense_reference(payload, p, np.random.default_rng([2, r])), args.repeats
        )
        print(
            f"| {p:g} | {flips:.0f} | {1e3 * t_sparse:.2f} | {flips / t_sparse:.3g} "
            f"| {n_bits / t_sparse:.3g} | {1e3 * t_dense:.1f} | {flips / t_dense:.3g} "
            f"| {n_bits / t_dense:.3g} | {t_dense / t_sparse:.3g}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
