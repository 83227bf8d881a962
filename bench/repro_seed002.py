"""Seed 002 (Schorn et al.) on MNIST: the Table I network, its architecture-optimised and
feature-optimised versions, and Fig. 5 (convergence of Algorithm 1).

    nice -n 10 .venv/bin/python bench/repro_seed002.py --data /work/shared/data/mnist.npz \
        --threads 1 --lrp-samples 300 --fine-tune-epochs 0.1

Writes into bench/models_seed002/ (each step is skipped when its file exists, so a rerun
resumes; Algorithm 1 resumes from its own log folder):

- table1_original.onnx: Table I, trained on all 60,000 training images (--epochs 5, Adam,
  batch 128, one-cycle learning rate: 5 % linear warm-up to --lr 4e-3, cosine decay to lr/100;
  the paper gives no schedule), weights on the int8 grid (one scale per output channel: the
  "pre-trained and quantized" DNN_0); training/log.jsonl holds each epoch's loss and accuracy;
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
from tqdm import tqdm

from host.data.dataset import load_dataset
from host.fileio import write_atomic
from host.mitigation.bottleneck import pool_after_pointwise
from host.mitigation.relevance import convergence_measure, criticality, read_chain
from host.mitigation.rescale import requantise
from host.model.reading import read_onnx
from host.train.rescale import RescaleConfig, accuracy, algorithm1
from host.train.table1 import table1_model

OUT = Path(__file__).resolve().parent / "models_seed002"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/mnist.npz", help="MNIST .npz")
    p.add_argument("--epochs", type=int, default=5, help="training epochs of Table I")
    p.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (one-cycle)")
    p.add_argument("--batch", type=int, default=128, help="training batch")
    p.add_argument("--train-only", action="store_true", dest="train_only",
                   help="stop after training the original (and deriving the architecture-"
                        "optimised) network")
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
        trained, loss, float_accuracy = _train(args.epochs, train, test, args.lr, args.batch)
        write_atomic(OUT / "table1_float_accuracy.json",
                     json.dumps({"float_accuracy": float_accuracy, "loss": loss,
                                 "epochs": args.epochs, "lr": args.lr, "batch": args.batch,
                                 "schedule": "Adam, one-cycle (5 % linear warm-up, cosine "
                                             "to lr/100)"}).encode())
        write_atomic(original_path, requantise(trained).SerializeToString())
        timings["train_s"] = round(time.time() - start, 1)
    original = read_onnx(original_path)
    arch_path = OUT / "table1_architecture.onnx"
    if not arch_path.exists():
        write_atomic(arch_path, pool_after_pointwise(original).SerializeToString())
    architecture = read_onnx(arch_path)
    if args.train_only:
        return

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


def _train(epochs: int, train, test, lr: float, batch: int):
    """Table I trained from He initialisation: Adam, batch ``batch``, the learning rate a
    one-cycle schedule of the global step (linear warm-up over the first 5 % of the steps to
    ``lr``, cosine decay to lr/100 at the end), the data reshuffled each epoch (seed = epoch).
    Each epoch's float model is kept in training/ (with its test accuracy in
    training/log.jsonl) so an interrupted run resumes at the last finished epoch (the Adam
    moments restart there; the schedule does not)."""
    from torch import nn

    from host.mitigation.relevance import read_chain
    from host.train.rescale import to_torch, write_back

    folder = OUT / "training"
    folder.mkdir(exist_ok=True)
    log = folder / "log.jsonl"
    model, loss = table1_model(0), float("nan")
    x, y = train
    per_epoch = int(np.ceil(len(x) / batch))
    total = per_epoch * int(epochs)
    warm = max(1, total // 20)

    def rate(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return lr / 100 + (lr - lr / 100) * 0.5 * (1 + np.cos(np.pi * t))

    xt, yt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    module = optimiser = chain = None
    for epoch in range(int(epochs)):
        path = folder / f"epoch{epoch + 1}.onnx"
        if path.exists():
            model = read_onnx(path)
            continue
        if module is None:
            chain = read_chain(model)
            module = to_torch(chain)
            optimiser = torch.optim.Adam(module.parameters(), lr=lr)
        module.train()
        order = torch.from_numpy(np.random.default_rng(epoch).permutation(len(x)))
        losses = []
        start = time.time()
        for i in tqdm(range(per_epoch), desc=f"train Table I, epoch {epoch + 1}",
                      unit="batch"):
            for group in optimiser.param_groups:
                group["lr"] = rate(epoch * per_epoch + i)
            idx = order[i * batch:(i + 1) * batch]
            out = nn.functional.cross_entropy(module(xt[idx]), yt[idx])
            optimiser.zero_grad()
            out.backward()
            optimiser.step()
            losses.append(float(out.detach()))
        model = write_back(model, chain, module)
        loss = float(np.mean(losses[-100:]))
        write_atomic(path, model.SerializeToString())
        acc = accuracy(model, *test)
        records.append({"epoch": epoch + 1, "loss": loss, "test_accuracy": acc,
                        "seconds": round(time.time() - start, 1)})
        write_atomic(log, "".join(json.dumps(r) + "\n" for r in records).encode())
        print(f"epoch {epoch + 1}: loss {loss:.4f}, test accuracy {acc:.4f}", flush=True)
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
