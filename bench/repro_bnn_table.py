"""Tables of bench/repro_bnn_fashion.py's output folder for docs/reproductions.md: mean accuracy
(over the trials, with its standard error) at each test BER and at the rram-ulp preset, T^b,
and the clean accuracy after each training epoch, per trained model.

    .venv/bin/python bench/repro_bnn_table.py OUT_DIR [--csv TABLE.csv]

``--csv`` also writes the numbers the tables are made from (one row per model and BER: mean,
standard error, trials; T^b in the columns), small enough to keep beside the docs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def accuracies(results_jsonl: Path) -> dict[float, list[float]]:
    """Accuracy of every trial in a sweep folder's results.jsonl, by rate."""
    per: dict[float, list[float]] = defaultdict(list)
    for line in results_jsonl.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            per[float(row["rate"])].append(float(row["accuracy"]))
    return dict(per)


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n); 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def label(cell: dict) -> str:
    arch = cell["arch"].upper()
    hinge = f", λ = {cell['lambda']:g}, b = {cell['b']:g}" if cell["lambda"] > 0 else ""
    naive = ", naive gradient" if cell.get("gradient") == "naive" else ""
    return f"{arch} p = {cell['p']:g}{hinge}{naive}"


def order(item: tuple[str, dict]) -> tuple:
    c = item[1]
    return (c["arch"] != "fcnn", c.get("gradient") == "naive", c["lambda"], c["b"] if c["lambda"] else 0,
            c["p"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="bench/repro_bnn_fashion.py's output folder")
    ap.add_argument("--csv", help="also write the numbers to this CSV file")
    args = ap.parse_args()
    out = Path(args.out)
    summary = json.loads((out / "summary.json").read_text())
    cells = sorted(summary.items(), key=order)
    acc = {name: accuracies(out / f"{name}_sweep" / "results.jsonl") for name, _ in cells}
    rram = {name: accuracies(out / f"{name}_rram" / "results.jsonl") for name, _ in cells
            if (out / f"{name}_rram" / "results.jsonl").exists()}
    grid = sorted({r for per in acc.values() for r in per})
    print("| model | trials | " + " | ".join(f"BER {r:g}" for r in grid) + " | `rram-ulp` |")
    print("|---|---|" + "---|" * (len(grid) + 1))
    for name, cell in cells:
        per = acc[name]
        trials = min(len(v) for r, v in per.items() if r > 0)
        row = [f"{mean_se(per[r])[0]:.4f}" if r in per else "" for r in grid]
        ram = rram.get(name, {}).get(0.033)
        row.append(f"{mean_se(ram)[0]:.4f}" if ram else "")
        print(f"| {label(cell)} | {trials} | " + " | ".join(row) + " |")
    print()
    print("Standard error of those means (over the trials):")
    print()
    print("| model | " + " | ".join(f"BER {r:g}" for r in grid if r > 0) + " | `rram-ulp` |")
    print("|---|" + "---|" * (len([r for r in grid if r > 0]) + 1))
    for name, cell in cells:
        per = acc[name]
        row = [f"{mean_se(per[r])[1]:.4f}" if r in per else "" for r in grid if r > 0]
        ram = rram.get(name, {}).get(0.033)
        row.append(f"{mean_se(ram)[1]:.4f}" if ram else "")
        print(f"| {label(cell)} | " + " | ".join(row) + " |")
    bs = list(cells[0][1]["T_b"])
    print()
    print("| model | " + " | ".join(f"T^{b}" for b in bs) + " |")
    print("|---|" + "---|" * len(bs))
    for _name, cell in cells:
        print(f"| {label(cell)} | " + " | ".join(f"{cell['T_b'][b]:.4f}" for b in bs) + " |")
    print()
    print("| model | epochs | train accuracy per epoch (with E_p active) |")
    print("|---|---|---|")
    for _name, cell in cells:
        hist = cell.get("history") or []
        print(f"| {label(cell)} | {len(hist)} | " + ", ".join(f"{h['train_accuracy']:.3f}" for h in hist) + " |")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["model", "arch", "p", "lambda", "b", "gradient", "width", "channels", "epochs",
                        "channel", "ber", "mean_accuracy", "se", "trials", *[f"T^{b}" for b in bs]])
            for name, cell in cells:
                series = [("bsc", r, v) for r, v in sorted(acc[name].items())]
                series += [("rram-ulp", r, v) for r, v in sorted(rram.get(name, {}).items())]
                for channel, r, v in series:
                    m, se = mean_se(v)
                    w.writerow([name, cell["arch"], cell["p"], cell["lambda"], cell["b"],
                                cell.get("gradient", "ste"), cell.get("width"), cell.get("channels"),
                                cell.get("epochs"), channel, r, f"{m:.6f}", f"{se:.6f}", len(v),
                                *[f"{cell['T_b'][b]:.6f}" for b in bs]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
