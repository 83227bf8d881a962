"""Benchmark of ``host criticality`` on seed 002's Table I MNIST network.

The network (3x3 conv -> 16x28x28; 3x3 conv + 2x2 max-pool -> 64x14x14; 3x3 conv -> 64x14x14;
global average pool -> 64; 1x1 conv -> 10; ReLU after the convolutions) is trained here
quickly with torch (``--train-samples`` MNIST training images, one epoch, Adam; written as
ONNX by hand, not the lrp helper's host/train), or read from ``--model``, and then studied with every neuron of every
layer on the first ``--samples`` test images, MSB flips, 8-bit signed activations.

``--part LAYER=N`` studies only the first N neurons of LAYER (a measured part of a layer whose
full cost would exceed the time at hand; the other layers are complete); the JSON output then
states, per layer, the measured wall and CPU time and, for a part, the time all its neurons
would take at the measured rate, marked as extrapolated.

    nice -n 10 .venv/bin/python bench/bench_criticality.py --data /work/shared/data/mnist.npz \\
        --samples 1000 --out runs/bench_crit
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn


def table1_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Conv2d(64, 10, 1), nn.Flatten())


def to_onnx(net: nn.Sequential) -> onnx.ModelProto:
    convs = [net[0], net[2], net[5], net[8]]
    names = ["conv0", "conv1", "conv2", "conv3"]
    inits = []
    for name, conv in zip(names, convs):
        inits.append(numpy_helper.from_array(conv.weight.detach().numpy().astype(np.float32),
                                             f"{name}.weight"))
        inits.append(numpy_helper.from_array(conv.bias.detach().numpy().astype(np.float32),
                                             f"{name}.bias"))

    def conv(name, x, y, pad=1):
        return helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [y], name=name,
                                pads=[pad] * 4)

    nodes = [conv("conv0", "input", "a0"), helper.make_node("Relu", ["a0"], ["f0"], name="relu0"),
             conv("conv1", "f0", "a1"), helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["f1"], name="pool1", kernel_shape=[2, 2],
                              strides=[2, 2]),
             conv("conv2", "f1", "a2"), helper.make_node("Relu", ["a2"], ["f2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["f2"], ["f3"], name="gap"),
             conv("conv3", "f3", "a4", pad=0),
             helper.make_node("Flatten", ["a4"], ["logits"], name="flatten")]
    g = helper.make_graph(
        nodes, "table1_mnist",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def train(data: Path, samples: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    d = np.load(data)
    x = torch.tensor(d["x_train"][:samples, None] / 255.0, dtype=torch.float32)
    y = torch.tensor(d["y_train"][:samples].astype(np.int64))
    net = table1_net()
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    for i in range(0, samples, 64):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64])
        loss.backward()
        opt.step()
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data/mnist.npz")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--train-samples", type=int, default=20000)
    ap.add_argument("--model", type=Path, default=None,
                    help="study this ONNX model instead of training one (e.g. "
                         "bench/models_seed002/table1_original.onnx, the 97.5 %% network)")
    ap.add_argument("--part", action="append", default=[], metavar="LAYER=N",
                    help="study only the first N neurons of LAYER (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_crit"))
    args = ap.parse_args()
    from host.activations.criticality import CriticalitySettings, run_criticality
    from host.data import DataSpec

    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.model or args.out / "table1_mnist.onnx"
    t0 = time.perf_counter()
    if not model_path.exists():
        torch.set_num_threads(args.threads)
        onnx.save(to_onnx(train(Path(args.data), args.train_samples, 0)), model_path)
    train_s = time.perf_counter() - t0
    parts = {k: int(v) for k, v in (p.split("=") for p in args.part)}
    layers: list[dict] = []

    def record(r, cpu_before):
        cpu = _cpu() - cpu_before[0]
        cpu_before[0] = _cpu()
        share = r.format.neurons / max(1, len(r.failures))
        layers.append({
            "layer": r.format.layer, "neurons_done": int(len(r.failures)),
            "neurons_total": r.format.neurons, "method": r.method,
            "wall_s": round(r.seconds, 1), "cpu_s": round(cpu, 1),
            "pairs_evaluated": r.evaluated_pairs, "pairs_skipped": r.skipped_pairs,
            "all_neurons_wall_s": round(r.seconds * share, 1),
            "all_neurons_cpu_s": round(cpu * share, 1), "extrapolated": share > 1})

    from host.activations.quantize import select_layers
    from host.model.reading import read_onnx

    names = [layer.name for layer in select_layers(read_onnx(model_path))]
    whole = [n for n in names if n not in parts]
    wall0, cpu0 = time.perf_counter(), _cpu()
    summaries = []
    mark = [_cpu()]
    data = DataSpec(args.data, "unit", args.samples)
    if whole:
        summaries.append(run_criticality(model_path, args.out / "crit", CriticalitySettings(
            data, layers=",".join(whole), threads=args.threads), progress=True,
            on_layer=lambda r: record(r, mark)))
    for name, n in parts.items():
        summaries.append(run_criticality(model_path, args.out / f"crit_{name}_{n}",
                                         CriticalitySettings(data, layers=name, neurons=n,
                                                             threads=args.threads),
                                         progress=True, on_layer=lambda r: record(r, mark)))
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    print(json.dumps({
        "samples": args.samples, "correct": summaries[0]["correct_samples"],
        "train_s": round(train_s, 1), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "cpu_over_wall": round(cpu / wall, 2), "loadavg": os.getloadavg(),
        "layers": layers,
        "all_neurons_wall_s": round(sum(r["all_neurons_wall_s"] for r in layers), 1),
        "all_neurons_cpu_s": round(sum(r["all_neurons_cpu_s"] for r in layers), 1),
        "max_failure": {r["layer"]: r["max_failure_rate"] for s in summaries
                        for r in s["layers"]}}, indent=2))


def _cpu() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


if __name__ == "__main__":
    main()
