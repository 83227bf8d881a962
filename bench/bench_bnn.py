"""Seed 004 costs, side by side in one run (docs/benchmarks.md "BNN tolerance and training").

1. ``tolerance``: T^b of a BNN over a data set (host.mitigation.tolerance: model read, the
   pre-activations exposed, one onnxruntime pass, the numpy shares) against one clean inference
   pass of the same model over the same images (model read, plain session, run). Target <= 1.5x.
2. ``train``: training images/s of host.train.bnn with the flip operator (p = 0.1) and without
   (p = 0), same model and data, one epoch each. Target: flip costs <= 1.2x.

Medians over repeats of wall time and process CPU time (all threads).

    nice -n 10 .venv/bin/python bench/bench_bnn.py tolerance MODEL.onnx --data fashion_mnist.npz
    nice -n 10 .venv/bin/python bench/bench_bnn.py train --data fashion_mnist.npz --samples 5000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort


def timed(fn, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def bench_tolerance(args) -> None:
    from host.data import load_dataset
    from host.mitigation.tolerance import model_input_shape, tolerance
    from host.model.reading import read_onnx

    x, _ = load_dataset(args.data, input_shape=model_input_shape(args.model), samples=args.samples)

    def clean():
        model = read_onnx(args.model)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for start in range(0, len(x), 2048):   # the batches tolerance() uses
            sess.run(None, {name: x[start:start + 2048]})

    def tb():
        tolerance(args.model, x, [32, 64, 128])

    clean(), tb()                                  # warm up
    rows = []
    for _ in range(args.repeats):                  # interleaved, so load drifts hit both
        rows.append((timed(clean, 1), timed(tb, 1)))
    cw = statistics.median(r[0][0] for r in rows)
    cc = statistics.median(r[0][1] for r in rows)
    tw = statistics.median(r[1][0] for r in rows)
    tc = statistics.median(r[1][1] for r in rows)
    print(f"{len(x)} images, {args.repeats} repeats (median)")
    print(f"clean pass   wall {cw:.3f} s  cpu {cc:.3f} s")
    print(f"T^b (3 b)    wall {tw:.3f} s  cpu {tc:.3f} s")
    print(f"ratio        wall {tw / cw:.2f}x  cpu {tc / cc:.2f}x")


def bench_train(args) -> None:
    import torch

    from host.train.bnn import TrainConfig, build, clip_latent, load_split

    torch.set_num_threads(args.threads)
    config = TrainConfig(arch=args.arch, data=args.data, width=args.width, channels=16)
    x, y = load_split(config, "train", args.samples)
    results = {}

    def epoch(p: float):
        torch.manual_seed(0)
        model = build(TrainConfig(**{**config.__dict__, "flip_p": p}))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        for s in range(0, len(y), 128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[s:s + 128]), y[s:s + 128]).backward()
            opt.step()
            clip_latent(model)

    epoch(0.0)                                     # warm up
    rows = [(timed(lambda: epoch(0.0), 1), timed(lambda: epoch(0.1), 1)) for _ in range(args.repeats)]
    for k, label in enumerate(("p = 0", "p = 0.1")):
        w = statistics.median(r[k][0] for r in rows)
        c = statistics.median(r[k][1] for r in rows)
        results[label] = (w, c)
        print(f"{label:8s} wall {w:.3f} s ({len(y) / w:.0f} images/s)  cpu {c:.3f} s")
    (w0, c0), (w1, c1) = results["p = 0"], results["p = 0.1"]
    print(f"flip/no flip  wall {w1 / w0:.2f}x  cpu {c1 / c0:.2f}x "
          f"({args.arch}, width {args.width}, {len(y)} images, {args.threads} thread(s), "
          f"{args.repeats} repeats)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tolerance")
    t.add_argument("model")
    t.add_argument("--data", default="digits")
    t.add_argument("--samples", type=int)
    t.add_argument("--repeats", type=int, default=5)
    r = sub.add_parser("train")
    r.add_argument("--data", default="digits")
    r.add_argument("--samples", type=int)
    r.add_argument("--arch", default="fcnn")
    r.add_argument("--width", type=int, default=256)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    np.seterr(all="ignore")
    (bench_tolerance if args.what == "tolerance" else bench_train)(args)


if __name__ == "__main__":
    main()
