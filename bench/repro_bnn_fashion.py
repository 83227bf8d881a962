"""Seed 004 on Fashion-MNIST, REDUCED (docs/reproductions.md "Seed 004"): train a grid of
flip-trained BNNs (training flip rate p, hinge weight lambda, hinge level b), then for each model
T^b (b = 1 ... 128, host tolerance) and accuracy vs test BER (host sweep, sign codec, bsc) plus
the paper's RRAM point (host sweep --channel rram-ulp, 3.3 %).

    nice -n 10 .venv/bin/python bench/repro_bnn_fashion.py OUT_DIR --grid 0:0,0.1:0.001:64 \
        [--arch fcnn] [--width 512] [--epochs 8] [--trials 20] [--test-samples 5000]

A grid cell is ``p:lambda[:b]`` (b defaults to --b; it only matters when lambda > 0). Resumable
and safe to run as several processes on disjoint cells of one OUT_DIR: each model has a
checkpoint, each sweep folder resumes, each finished cell writes OUT_DIR/cells/NAME.json, and
OUT_DIR/summary.json is rebuilt from those after every cell.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from host.fileio import write_atomic

DATA = "/work/shared/data/fashion_mnist.npz"
RATES = "0.001,0.01,0.033,0.05,0.1,0.2,0.3"
BS = "1,4,8,16,32,64,128"


def parse_cell(cell: str, default_b: str) -> tuple[str, str, str]:
    """``p:lambda[:b]`` -> (p, lambda, b) as given (strings, so names keep the user's spelling)."""
    parts = cell.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit(f"grid cell {cell!r}: expected p:lambda or p:lambda:b")
    p, lam = parts[0], parts[1]
    return p, lam, parts[2] if len(parts) == 3 else default_b


def cell_name(arch: str, p: str, lam: str, b: str, gradient: str) -> str:
    """The model's file stem; b is part of it only where the hinge is on (lambda > 0)."""
    return (f"{arch}_p{p}_lam{lam}" + (f"_b{b}" if float(lam) > 0 else "")
            + ("_naive" if gradient == "naive" else ""))


def host(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "host", *args, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def training_history(train_log: Path, checkpoint: Path) -> list | None:
    """Loss and train accuracy per epoch: from train-bnn's JSON, else (a run finished by an
    earlier, interrupted invocation) from its checkpoint."""
    if train_log.exists():
        return json.loads(train_log.read_text())["history"]
    if checkpoint.exists():
        import torch

        return torch.load(checkpoint, weights_only=False)["history"]
    return None


def rebuild_summary(out: Path) -> None:
    cells = {f.stem: json.loads(f.read_text()) for f in sorted((out / "cells").glob("*.json"))}
    write_atomic(out / "summary.json", json.dumps(cells, indent=1).encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output folder (resumed)")
    ap.add_argument("--grid", default="0:0,0.1:0,0:0.001,0.1:0.001", help="cells p:lambda[:b],...")
    ap.add_argument("--b", default="64", help="hinge level b of cells that give none (default 64)")
    ap.add_argument("--arch", default="fcnn", choices=("fcnn", "cnn"), help="architecture")
    ap.add_argument("--width", default="512", help="fully connected width (default 512)")
    ap.add_argument("--channels", default="16", help="CNN channels (default 16)")
    ap.add_argument("--epochs", default="8", help="training epochs (default 8)")
    ap.add_argument("--lr", default="3e-3", help="Adam learning rate (default 3e-3)")
    ap.add_argument("--train-samples", help="first N training images (default all 60,000)")
    ap.add_argument("--test-samples", help="first N test images for the sweeps (default all)")
    ap.add_argument("--trials", default="20", help="trials per BER (default 20)")
    ap.add_argument("--gradient", default="ste", choices=("ste", "naive"), help="E_p's gradient")
    ap.add_argument("--data", default=DATA, help="Fashion-MNIST npz")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    test = ["--samples", args.test_samples] if args.test_samples else []
    for cell in args.grid.split(","):
        p, lam, b = parse_cell(cell, args.b)
        name = cell_name(args.arch, p, lam, b, args.gradient)
        if (out / "cells" / f"{name}.json").exists():
            continue
        model = out / f"{name}.onnx"
        train_log = out / f"{name}_train.json"
        if not model.exists():
            trained = host("train-bnn", "--arch", args.arch, "--data", args.data,
                           *(["--samples", args.train_samples] if args.train_samples else []),
                           "--flip-p", p, "--gradient", args.gradient, "--lam", lam, "--b", b,
                           "--epochs", args.epochs, "--width", args.width,
                           "--channels", args.channels, "--lr", args.lr, "-o", str(model))
            train_log.write_text(json.dumps(trained, indent=1))
        tol = host("tolerance", str(model), "--data", args.data, "--b", BS)
        sweep = host("sweep", str(model), "--codecs", "sign", "--channel", "bsc", "--rates", RATES,
                     "--trials", args.trials, "--data", args.data, *test,
                     "--out", str(out / f"{name}_sweep"))
        rram = host("sweep", str(model), "--codecs", "sign", "--channel", "rram-ulp",
                    "--rates", "0.033", "--trials", args.trials, "--data", args.data, *test,
                    "--out", str(out / f"{name}_rram"))
        history = training_history(train_log, Path(f"{model}.ckpt"))
        cell_out = {"arch": args.arch, "p": float(p), "lambda": float(lam), "b": float(b),
                    "gradient": args.gradient, "width": int(args.width),
                    "channels": int(args.channels) if args.arch == "cnn" else None,
                    "epochs": int(args.epochs), "lr": float(args.lr),
                    "train_samples": int(args.train_samples) if args.train_samples else None,
                    "test_samples": int(args.test_samples) if args.test_samples else None,
                    "trials": int(args.trials), "history": history, "T_b": tol["T_b"],
                    "sweep": sweep, "rram": rram}
        write_atomic(out / "cells" / f"{name}.json", json.dumps(cell_out, indent=1).encode())
        rebuild_summary(out)
        print(name, tol["T_b"], file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
