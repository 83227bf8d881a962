"""Benchmark: the cost of a profile channel's pattern against bsc's, side by side.

One trial's nested pattern (``Channel.pattern``) over a random payload of the seed-000 CNN's
size in fixed8 (329,962 weights, 2.64e6 bits), at the same mean rate, for ``bsc``, the
``rram-ulp`` preset (transient, per-position) and ``bram-undervolt`` (permanent, clustered:
its candidates are drawn at the largest cell rate, docs/error-models.md). Median wall and CPU
time of the repeats, flips, and each channel's time as a ratio of bsc's in the same run; and
the first call of a fresh channel (for bram-undervolt it draws and caches the device's
permanent map, which every later trial reuses).

    nice -n 10 .venv/bin/python bench/bench_profile.py [--repeats 7] [--rates 1e-4 1e-3 1e-2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from host.channels import parse_channel
from host.regions import whole_payload

BYTES = 329962


def timed(fn, repeats: int) -> tuple[float, float, object]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rates", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2])
    args = ap.parse_args()
    payload = np.random.default_rng(0).integers(0, 256, BYTES, dtype=np.uint8)
    regions = [whole_payload(BYTES)]
    print("| rate | channel | flips | first call wall / CPU ms | wall ms | CPU ms | wall / bsc |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for rate in args.rates:
        base = None
        for spec in ("bsc:0", "rram-ulp", "bram-undervolt"):
            ch = parse_channel(spec)
            ch = parse_channel(f"bsc:{rate}") if spec.startswith("bsc") else ch.with_rate(rate)
            w1, c1, _ = timed(lambda ch=ch: ch.pattern(payload, regions, seed=1, trial=0), 1)
            wall, cpu, pat = timed(lambda ch=ch: ch.pattern(payload, regions, seed=1, trial=0),
                                   args.repeats)
            base = base or wall
            print(f"| {rate:g} | `{ch.spec}` | {pat.count_at(rate)} | {w1 * 1e3:.1f} / "
                  f"{c1 * 1e3:.1f} | {wall * 1e3:.2f} | "
                  f"{cpu * 1e3:.2f} | {wall / base:.2f}x |")


if __name__ == "__main__":
    main()
