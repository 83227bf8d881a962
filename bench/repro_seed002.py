"""Seed 002 (Schorn et al.) on MNIST: the Table I network, its architecture-optimised and
feature-optimised versions, and Fig. 5 (convergence of Algorithm 1).

    .venv/bin/python bench/repro_seed002.py --data ../shared/data/mnist.npz

Writes into bench/models_seed002/ (each step is skipped when its file exists, so a rerun
resumes; Algorithm 1 resumes from its own log folder):

- table1_original.onnx: Table I, trained (--epochs, Adam lr 1e-3, batch 128), weights on the
  int8 grid (one scale per output channel: the "pre-trained and quantized" DNN_0);
- table1_architecture.onnx: the same with the global average pooling moved after the 1x1 conv
  (host.mitigation.bottleneck: same weights, same function);
- table1_feature.onnx: Algorithm 1 on the architecture-optimised model (--iterations T,
  --fine-tune-epochs between iterations, rho/eta on the first --lrp-samples training images);
- algorithm1/iterations.jsonl: per iteration (1/L)·Σ SD(eta/mean eta) and test accuracy;
- fig5.png and results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from host.data.dataset import load_dataset
from host.fileio import write_atomic
from host.mitigation.bottleneck import pool_after_pointwise
from host.mitigation.relevance import convergence_measure, criticality, read_chain
from host.mitigation.rescale import requantise
from host.model.reading import read_onnx
from host.train.rescale import RescaleConfig, accuracy, algorithm1, fine_tune
from host.train.table1 import table1_model

OUT = Path(__file__).resolve().parent / "models_seed002"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/mnist.npz", help="MNIST .npz")
    p.add_argument("--epochs", type=int, default=2, help="training epochs of Table I")
    p.add_argument("--iterations", type=int, default=5, help="Algorithm 1's T")
    p.add_argument("--fine-tune-epochs", type=float, default=0.25, dest="fine_tune_epochs",
                   help="fine-tuning epochs between iterations")
    p.add_argument("--lrp-samples", type=int, default=500, dest="lrp_samples",
                   help="training images of D for rho and eta")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    shape = ["N", 1, 28, 28]
    train = load_dataset(args.data, input_shape=shape, split="train")
    test = load_dataset(args.data, input_shape=shape, split="test")
    timings = {}

    original_path = OUT / "table1_original.onnx"
    if not original_path.exists():
        start = time.time()
        trained, loss, float_accuracy = _train(args.epochs, train, test)
        write_atomic(OUT / "table1_float_accuracy.json",
                     json.dumps({"float_accuracy": float_accuracy, "loss": loss,
                                 "epochs": args.epochs}).encode())
        write_atomic(original_path, requantise(trained).SerializeToString())
        timings["train_s"] = round(time.time() - start, 1)
    original = read_onnx(original_path)
    arch_path = OUT / "table1_architecture.onnx"
    if not arch_path.exists():
        write_atomic(arch_path, pool_after_pointwise(original).SerializeToString())
    architecture = read_onnx(arch_path)

    config = RescaleConfig(data=args.data, lrp_samples=args.lrp_samples,
                           iterations=args.iterations, epochs=args.fine_tune_epochs, lr=1e-4,
                           batch=64, codec="int8", compensate=False, seed=0)
    start = time.time()
    feature, records = algorithm1(architecture, train, test, config, OUT / "algorithm1",
                                  progress=True)
    timings["algorithm1_s"] = round(time.time() - start, 1)
    write_atomic(OUT / "table1_feature.onnx", feature.SerializeToString())

    x_lrp, y_lrp = train[0][:args.lrp_samples], train[1][:args.lrp_samples]
    results = {
        "float_accuracy": json.loads((OUT / "table1_float_accuracy.json").read_text()),
        "models": {name: {"accuracy": accuracy(m, *test),
                          "mean_sd_normalised_eta": convergence_measure(
                              criticality(read_chain(m), x_lrp, y_lrp)),
                          "bytes": (OUT / f"table1_{name}.onnx").stat().st_size}
                   for name, m in (("original", original), ("architecture", architecture),
                                   ("feature", feature))},
        "algorithm1": records, "settings": vars(args), "timings": timings}
    write_atomic(OUT / "results.json", json.dumps(results, indent=2).encode())
    _plot(records, results["float_accuracy"]["float_accuracy"])
    print(json.dumps(results, indent=2))


def _train(epochs: int, train, test):
    """Table I trained epoch by epoch (Adam lr 1e-3, batch 128, seed = epoch), each epoch's
    float model kept in training/ so an interrupted run resumes at the last finished epoch."""
    folder = OUT / "training"
    folder.mkdir(exist_ok=True)
    model, loss = table1_model(0), float("nan")
    for epoch in range(int(epochs)):
        path = folder / f"epoch{epoch + 1}.onnx"
        if path.exists():
            model = read_onnx(path)
            continue
        model, loss = fine_tune(model, *train, epochs=1, lr=1e-3, batch=128, seed=epoch,
                                progress=True, desc=f"train Table I, epoch {epoch + 1}")
        write_atomic(path, model.SerializeToString())
        print(f"epoch {epoch + 1}: loss {loss:.4f}, test accuracy {accuracy(model, *test):.4f}",
              flush=True)
    return model, loss, accuracy(model, *test)


def _plot(records: list[dict], float_accuracy: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [r for r in records if r["iteration"] != "original"]
    x = np.array([r["iteration"] for r in its]) + 1
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(x, [100 * r["accuracy"] for r in its], "o-", label="after eq. 6 adjustment")
    a.axhline(100 * float_accuracy, color="gray", ls="--", label="float32 original")
    a.set_xlabel("iteration")
    a.set_ylabel("test accuracy (%)")
    a.set_title("(a) classification accuracy")
    a.legend(fontsize=8)
    b.plot([0, *x], [records[0]["mean_sd_normalised_eta"]] +
           [r["mean_sd_normalised_eta"] for r in its], "o-")
    b.set_xlabel("iteration (0: before Algorithm 1)")
    b.set_ylabel("(1/L) Σ SD(η / mean η)")
    b.set_title("(b) mean SD of normalised criticality")
    fig.suptitle("Seed 002 Fig. 5 on MNIST, Table I architecture-optimised (FlipLab)")
    fig.tight_layout()
    fig.savefig(OUT / "fig5.png", dpi=110)


if __name__ == "__main__":
    main()
