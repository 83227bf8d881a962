"""Threshold search time per layer, and the share saved by reusing patterns and the prefix.

For each ReLU-activated layer of the model, the same probes are timed two ways, side by side:

- **ours**: ``LayerObjective`` as ``host clip --tune`` runs it: the trials' nested error
  patterns drawn once per layer, the graph cut at the layer and the prefix run once, each
  candidate T running only the suffix;
- **naive**: the whole model per variant and the patterns drawn again per candidate
  (``reuse=False``; the numbers are the same, tests/host/test_clip.py checks it).

Each is timed over one full Algorithm 1 search of the layer (ours) and over the same
thresholds (naive), wall and process CPU; the setup (image, patterns, prefix) is counted in.

    nice -n 10 .venv/bin/python bench/bench_clip_search.py       # MNIST CNN of seed 000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import onnx

from host.data import load_dataset
from host.mitigation.clip import profile_act_max
from host.mitigation.search import threshold_search
from host.mitigation.tune import LayerObjective, TuneSettings, _auc_of_curve

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHARED / "models" / "qin_mnist_cnn.onnx"))
    ap.add_argument("--data", default=str(SHARED / "data" / "mnist.npz"))
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--rates", default="7.6e-7:7.6e-5:4")
    ap.add_argument("--n", type=int, default=4)
    args = ap.parse_args()
    model = onnx.load(args.model)
    shape = [d.dim_value or "N" for d in model.graph.input[0].type.tensor_type.shape.dim]
    x, y = load_dataset(args.data, input_shape=shape, samples=args.samples)
    act_max = profile_act_max(model, x)
    tune = TuneSettings(rates=args.rates, trials=args.trials, n=args.n)
    print(f"{Path(args.model).name}: {args.samples} samples, {args.trials} trials, rates "
          f"{args.rates}, N = {args.n}")
    print(f"{'layer':<16}{'probes':>7}{'ours wall s':>12}{'cpu s':>8}{'naive wall s':>13}"
          f"{'cpu s':>8}{'saved wall':>11}{'cpu':>6}")
    totals = [0.0] * 4
    with tempfile.TemporaryDirectory() as tmp:
        for layer in act_max:
            w0, c0 = time.perf_counter(), time.process_time()
            ours = LayerObjective(model, act_max, layer, x, y, tune, Path(tmp))
            found = threshold_search(lambda t, ours=ours: _auc_of_curve(ours.curve(t)), act_max[layer],
                                     n=tune.n, m=tune.m, delta=tune.delta)
            w1, c1 = time.perf_counter(), time.process_time()
            probes = sorted({t for r in found.rounds for t in r.thresholds})
            naive = LayerObjective(model, act_max, layer, x, y, tune, Path(tmp), reuse=False)
            for t in probes:
                naive.curve(t)
            w2, c2 = time.perf_counter(), time.process_time()
            row = [w1 - w0, c1 - c0, w2 - w1, c2 - c1]
            totals = [a + b for a, b in zip(totals, row)]
            print(f"{layer:<16}{len(probes):>7}{row[0]:>12.1f}{row[1]:>8.1f}{row[2]:>13.1f}"
                  f"{row[3]:>8.1f}{1 - row[0] / row[2]:>10.0%}{1 - row[1] / row[3]:>7.0%}")
    print(f"{'all layers':<16}{'':>7}{totals[0]:>12.1f}{totals[1]:>8.1f}{totals[2]:>13.1f}"
          f"{totals[3]:>8.1f}{1 - totals[0] / totals[2]:>10.0%}{1 - totals[1] / totals[3]:>7.0%}")


if __name__ == "__main__":
    main()
