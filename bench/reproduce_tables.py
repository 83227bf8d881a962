"""Tables of docs/reproductions.md, computed from the campaigns of bench/reproduce.sh.

    bench/reproduce.sh                           # the campaigns (resumable), ~30 min on 2 cores
    .venv/bin/python bench/reproduce_tables.py   # prints the markdown tables below

Seed 000 table III (MNIST CNN, 8-bit fixed point, with and without weight nulling) for both
range settings, seed 001 table II (16-bit binary expansion, mean accuracy per RBER) beside the
Hamming-weight code, and weight nulling with the first conv layer kept in SECDED. Every number
is computed here from the runs' results.jsonl.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from host.metrics import r_at, r_interpolated

PAPER_000 = {"fixed8": (0.006, 0.012), "parity8": (0.025, 0.034)}  # table III, MNIST CNN
PAPER_001 = {0.0: 0.9959, 0.001: 0.9952, 0.002: 0.9945, 0.003: 0.9937, 0.004: 0.9924,
             0.005: 0.9906, 0.006: 0.9885, 0.007: 0.9847, 0.008: 0.9816, 0.009: 0.9754,
             0.01: 0.96952, 0.011: 0.9576, 0.012: 0.94875, 0.013: 0.9339, 0.014: 0.9224}


def load(run: Path) -> tuple[pd.DataFrame, dict]:
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line]
    return pd.DataFrame(rows), json.loads((run / "campaign.json").read_text())


def seed000(runs: Path) -> None:
    print("| range | codec | trials/rate | R(0.99) grid | R(0.99) interp. [95 % CI] | paper R(0.99) "
          "| R(0.95) grid | R(0.95) interp. [95 % CI] | paper R(0.95) |")
    print("|---|---|---|---|---|---|---|---|---|")
    gains = {}
    for rng in ("model", "tensor"):
        df, camp = load(runs / f"seed000-{rng}")
        a = camp["reference"]["accuracy"]
        for codec in ("fixed8", "parity8"):
            sub = df[(df["codec"] == codec) & (df["scope"] == "model")]
            cells = []
            for k, x in enumerate((0.99, 0.95)):
                grid = r_at(sub, x, a)
                interp = r_interpolated(sub, x, a, seed=k)
                gains[(rng, codec, x)] = float(grid)
                cells += [f"{float(grid):g}" + ("" if grid.status == "bracketed" else f" ({grid.status})"),
                          f"{interp.rber_interpolated:.4g} [{interp.ci_low:.4g}, {interp.ci_high:.4g}]",
                          f"{PAPER_000[codec][k]:g}"]
            trials = int(sub[sub["rate"] > 0].groupby("rate").size().min())
            print(f"| {rng} | {codec} | {trials} | " + " | ".join(cells) + " |")
    print()
    print("| range | R(0.99) gain by nulling | paper | R(0.95) gain | paper |\n|---|---|---|---|---|")
    for rng in ("model", "tensor"):
        g = [gains[(rng, "parity8", x)] / gains[(rng, "fixed8", x)]
             if gains[(rng, "fixed8", x)] > 0 else float("nan") for x in (0.99, 0.95)]
        print(f"| {rng} | {g[0]:.2f}x | 4.2x | {g[1]:.2f}x | 2.8x |")
    df, camp = load(runs / "seed000-model")
    print(f"\nreference accuracy A (original float model, onnxruntime): "
          f"{camp['reference']['accuracy']:.4f} on {camp['reference']['samples']} images")


def seed001(runs: Path) -> None:
    df, camp = load(runs / "seed001")
    means = df[df["scope"] == "model"].groupby(["codec", "rate"])["accuracy"].agg(["mean", "std",
                                                                                   "size"])
    codecs = ("fixed16:mid", "hamming16:mid")
    print("| RBER | paper (binary expansion, 40 models) | " +
          " | ".join(f"ours {c} (mean ± std, n)" for c in codecs) + " |")
    print("|---|---|" + "---|" * len(codecs))
    for rate, paper in PAPER_001.items():
        cells = []
        for c in codecs:
            m = means.loc[(c, rate)]
            cells.append(f"{m['mean']:.4f} ± {0 if pd.isna(m['std']) else m['std']:.4f} "
                         f"({int(m['size'])})")
        print(f"| {rate:g} | {paper:.4f} | " + " | ".join(cells) + " |")
    a = camp["reference"]["accuracy"]
    for c in codecs:
        sub = df[(df["codec"] == c) & (df["scope"] == "model")]
        print(f"\n{c}: R(0.95) grid = {float(r_at(sub, 0.95, a)):g} (paper, binary expansion: 0.012)")


def conv1_protected(runs: Path) -> None:
    """parity8 everywhere vs parity8 with conv1's 320 weights under SECDED (model range)."""
    base, camp = load(runs / "seed000-model")
    prot, _ = load(runs / "seed000-conv1-secded")
    a = camp["reference"]["accuracy"]
    base = base[base["codec"] == "parity8"]
    print("| RBER | parity8: mean (worst trial) | parity8, conv1 in secded(parity8): mean (worst trial) |")
    print("|---|---|---|")
    for rate in sorted(set(prot["rate"]) - {0.0}):
        b, p = base[base["rate"] == rate]["accuracy"], prot[prot["rate"] == rate]["accuracy"]
        print(f"| {rate:g} | {b.mean():.4f} ({b.min():.4f}) | {p.mean():.4f} ({p.min():.4f}) |")
    for name, df in (("parity8", base), ("parity8 + conv1 secded", prot)):
        r = [float(r_at(df, x, a)) for x in (0.99, 0.95)]
        print(f"\n{name}: R(0.99) = {r[0]:g}, R(0.95) = {r[1]:g} (grid)")


def per_layer(runs: Path) -> None:
    """Each layer alone (seed 000 Fig. 4): mean, worst trial and flips in that layer."""
    df, _ = load(runs / "seed000-layers")
    g = df[df["rate"] > 0].groupby(["scope", "rate"]).agg(
        mean=("accuracy", "mean"), worst=("accuracy", "min"), flips=("flips", "mean"))
    print("| layer alone | RBER | mean accuracy | worst trial | bit errors in the layer (mean) |")
    print("|---|---|---|---|---|")
    for (scope, rate), r in g.iterrows():
        print(f"| {scope.removeprefix('layer:')} | {rate:g} | {r['mean']:.4f} | {r['worst']:.4f} "
              f"| {r['flips']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path(__file__).resolve().parents[1] / "runs")
    args = ap.parse_args()
    print("## seed 000 table III\n")
    seed000(args.runs)
    print("\n## seed 001 table II\n")
    seed001(args.runs)
    print("\n## the first conv layer under SECDED\n")
    conv1_protected(args.runs)
    print("\n## each layer alone\n")
    per_layer(args.runs)


if __name__ == "__main__":
    main()
