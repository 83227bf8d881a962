"""Issue 14's reproductions (docs/reproductions.md, "Real memories"):

1. clustered, permanent BRAM faults (preset ``bram-undervolt``) against i.i.d. BSC at the same
   observed mean bit error rate on the seed-000 MNIST CNN (fixed8), the gap in mean accuracy
   beside the papers' (Soyturk et al. 2019: up to 24 %; MoRS: 23.2 % random vs real, 6.21 %
   model vs real);
2. ``host plan`` for the same CNN (bsc, R(0.95) >= 1e-2, fixed8 / parity8 / secded(fixed8)).

Resumable (campaign folders under runs/memory). Run from the repository:
    nice -n 10 .venv/bin/python bench/repro_memory.py [--samples 2000] [--trials 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from host.campaign import SweepSettings, make_spec, run_sweep
from host.campaign.store import read_rows
from host.data import DataSpec
from host.plan import PlanSettings, make_plan

MODEL = "../shared/models/qin_mnist_cnn.onnx"
DATA = "../shared/data/mnist.npz"
RATES = [0.002, 0.004, 0.008, 0.012, 0.016, 0.024]


def mean_by_rate(out: Path) -> pd.DataFrame:
    df = pd.DataFrame(read_rows(out))
    df = df[df["rate"] > 0]
    return df.groupby("rate").agg(accuracy=("accuracy", "mean"), std=("accuracy", "std"),
                                  flips=("flips", "mean"), trials=("trial", "count"))


def moved_column_profile(column: int, out: Path) -> Path:
    """The bram-undervolt preset as a profile file, its heavy column moved to ``column``."""
    from host.channels.presets import BRAM_UNDERVOLT as P
    from host.profile import SCHEMA, VERSION, write_profile

    weights = list(P.column_weights())
    weights[0], weights[column] = weights[column], weights[0]
    zero = {"rate": 0.0, "low": 0.0, "high": 0.0, "errors": 0, "bits": 0}
    doc = {"schema": SCHEMA, "version": VERSION, "source": f"bram-undervolt, column {column}",
           "transient": {"p01": zero, "p10": zero},
           "permanent": {"known": True, "p01": zero, "p10": {**zero, "rate": P.permanent_p10},
                         "spatial": {"blocks": {"k": P.block_k, "block_bytes": P.block_bytes},
                                     "columns": {"weights": weights}}}}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bram-column{column}.profile.toml"
    write_profile(doc, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--devices", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("runs/memory"))
    ap.add_argument("--skip-plan", action="store_true")
    ap.add_argument("--skip-gap", action="store_true")
    ap.add_argument("--target", default="R(0.95)>=1e-2")
    ap.add_argument("--column", type=int, default=None,
                    help="move the preset's heavy bit column to this column (0..31) through a "
                         "profile file: how much the (unpublished) column position matters")
    args = ap.parse_args()
    data = DataSpec(DATA, "unit", args.samples)
    channel = "bram-undervolt"
    if args.column is not None:
        channel = f"profile:{moved_column_profile(args.column, args.out)}"
    rows = []
    for device in range(0 if args.skip_gap else args.devices):
        bram = make_spec(MODEL, SweepSettings(codecs="fixed8", rates=RATES, trials=args.trials,
                                              channel=f"{channel},seed={device}",
                                              data=data, seed=2018))
        tag = "" if args.column is None else f"-col{args.column}"
        res = run_sweep(bram, args.out / f"bram{tag}-dev{device}", summary=False)
        bits = 8 * 329962  # fixed8: every stored bit is eligible
        b = mean_by_rate(args.out / f"bram{tag}-dev{device}")
        ber = (b["flips"] / bits).round(8).tolist()  # the observed mean BER per rate
        bsc = make_spec(MODEL, SweepSettings(codecs="fixed8", rates=ber, trials=args.trials,
                                             channel="bsc", data=data, seed=2018))
        run_sweep(bsc, args.out / f"bsc{tag}-dev{device}", summary=False)
        s = mean_by_rate(args.out / f"bsc{tag}-dev{device}")
        for (rate, br), (_, sr) in zip(b.iterrows(), s.iterrows()):
            rows.append({"device": device, "rate": rate, "observed_ber": br["flips"] / bits,
                         "bram": br["accuracy"], "bram_std": br["std"],
                         "bsc": sr["accuracy"], "bsc_std": sr["std"],
                         "gap": sr["accuracy"] - br["accuracy"],
                         "reference": res.reference["accuracy"]})
    table = pd.DataFrame(rows)
    if not args.skip_gap:
        print("| device | preset rate | observed BER | bram-undervolt acc. | BSC acc. (same BER) "
              "| gap |")
        print("|---|---|---|---|---|---|")
        for r in table.itertuples():
            print(f"| {r.device} | {r.rate:g} | {r.observed_ber:.4g} | {r.bram:.2%} ± "
                  f"{r.bram_std:.2%} | {r.bsc:.2%} ± {r.bsc_std:.2%} | {r.gap:+.2%} |")
        print(f"max |gap| {table['gap'].abs().max():.2%}; "
              f"mean |gap| {table['gap'].abs().mean():.2%}")
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / f"bram_vs_bsc{'' if args.column is None else args.column}.csv",
                     index=False)
    if args.skip_plan:
        return
    target_tag = "".join(ch for ch in args.target if ch.isalnum() or ch in ".-")
    res = make_plan(MODEL, PlanSettings(codecs="fixed8,parity8,secded(fixed8)",
                                        target=args.target, trials=args.trials, data=data,
                                        seed=2018), args.out / f"plan-{target_tag}")
    doc = res.to_json()
    (args.out / f"plan-{target_tag}.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc["plan"], indent=1))
    print(f"| | choice | bits/weight | predicted acc. at {res.target.rate:g} | measured acc. "
          f"at {res.target.rate:g} | meets | R(x) interp. |")
    print("|---|---|---|---|---|---|---|")
    for r in doc["table"]:
        pred = "" if r["predicted_accuracy"] is None else f"{r['predicted_accuracy']:.2%}"
        rx = "" if r["r_x"] is None else f"{r['r_x']:.3g}"
        print(f"| {r['name']} | {r['note']} | {r['bits_per_weight']:.3g} | {pred} | "
              f"{r['measured_accuracy']:.2%} | {'yes' if r['meets_target'] else 'no'} | {rx} |")


if __name__ == "__main__":
    main()
