"""Tables of bench/repro_bnn_fashion.py's output folder for docs/reproductions.md: mean
accuracy (over the trials) at each test BER, and T^b, per trained model.

    .venv/bin/python bench/repro_bnn_table.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def main() -> int:
    out = Path(sys.argv[1])
    summary = json.loads((out / "summary.json").read_text())
    rates: set[float] = set()
    acc: dict[str, dict[float, list[float]]] = {}
    for name in summary:
        per = defaultdict(list)
        for line in (out / f"{name}_sweep" / "results.jsonl").read_text().splitlines():
            row = json.loads(line)
            per[row["rate"]].append(row["accuracy"])
        acc[name] = per
        rates |= set(per)
    grid = sorted(rates)
    print("| model | trials | " + " | ".join(f"BER {r:g}" for r in grid) + " |")
    print("|---|---|" + "---|" * len(grid))
    for name, per in acc.items():
        trials = min(len(v) for r, v in per.items() if r > 0)
        print(f"| {name} | {trials} | " + " | ".join(
            f"{sum(per[r]) / len(per[r]):.4f}" if r in per else "" for r in grid) + " |")
    bs = list(next(iter(summary.values()))["T_b"])
    print()
    print("| model | " + " | ".join(f"T^{b}" for b in bs) + " |")
    print("|---|" + "---|" * len(bs))
    for name, s in summary.items():
        print(f"| {name} | " + " | ".join(f"{s['T_b'][b]:.4f}" for b in bs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
