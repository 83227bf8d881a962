"""Seed 004 on Fashion-MNIST, REDUCED (docs/reproductions.md "Seed 004"): train the FCNN grid
p in {0, 0.1} x lambda in {0, 1e-3} (b = 64) with narrow layers and few epochs, then for each
model T^b (b = 1, 4, 8, 16, 32, 64) and accuracy vs test BER (host sweep, sign codec, bsc).

    nice -n 10 .venv/bin/python bench/repro_bnn_fashion.py OUT_DIR [--width 256] [--epochs 5]

Resumable: each model has a checkpoint, each sweep folder resumes. Writes OUT_DIR/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DATA = "/work/shared/data/fashion_mnist.npz"
RATES = "0.001,0.01,0.033,0.05,0.1,0.2,0.3"
BS = "1,4,8,16,32,64"


def host(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "host", *args, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--width", default="256")
    ap.add_argument("--epochs", default="5")
    ap.add_argument("--train-samples", default="10000")
    ap.add_argument("--test-samples", default="2000")
    ap.add_argument("--trials", default="10")
    ap.add_argument("--arch", default="fcnn")
    ap.add_argument("--gradient", default="ste", choices=("ste", "naive"))
    ap.add_argument("--grid", default="0:0,0.1:0,0:0.001,0.1:0.001", help="p:lambda,...")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done = out / "summary.json"
    summary = json.loads(done.read_text()) if done.exists() else {}   # a later grid adds cells
    for cell in args.grid.split(","):
        p, lam = cell.split(":")
        name = f"{args.arch}_p{p}_lam{lam}" + ("_naive" if args.gradient == "naive" else "")
        model = out / f"{name}.onnx"
        if not model.exists():
            host("train-bnn", "--arch", args.arch, "--data", DATA, "--samples", args.train_samples,
                 "--flip-p", p, "--gradient", args.gradient, "--lam", lam, "--b", "64", "--epochs", args.epochs,
                 "--width", args.width, "--channels", "16", "--lr", "3e-3", "-o", str(model))
        tol = host("tolerance", str(model), "--data", DATA, "--b", BS)
        sweep = host("sweep", str(model), "--codecs", "sign", "--channel", "bsc", "--rates", RATES,
                     "--trials", args.trials, "--data", DATA, "--samples", args.test_samples,
                     "--out", str(out / f"{name}_sweep"))
        summary[name] = {"p": float(p), "lambda": float(lam), "T_b": tol["T_b"], "sweep": sweep}
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        print(name, tol["T_b"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
