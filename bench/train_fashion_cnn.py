"""Train the Fashion-MNIST stand-in CNN of the seed 003 reproduction (docs/reproductions.md).

    .venv/bin/pip install -e '.[train]'
    nice -n 10 .venv/bin/python bench/train_fashion_cnn.py ../shared/data/fashion_mnist.npz \
        -o bench/fashion_cnn.onnx

Conv 3x3 1->16 + ReLU, MaxPool 2, Conv 3x3 16->32 + ReLU, MaxPool 2, Flatten, Linear 800->64 +
ReLU, Linear 64->10 (56,714 float32 parameters; four ReLU-activated layers, as the paper's
AlexNet has ReLUs after its CONV and hidden FC layers). Input [batch, 1, 28, 28], pixels / 255.
Adam, 4 epochs, batch 128, seed 0, torch single-threaded; the graph is written with
onnx.helper from the trained weights, its accuracy measured with onnxruntime on the test set.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn


def graph(net: nn.Sequential) -> onnx.ModelProto:
    conv1, conv2, fc1, fc2 = net[0], net[3], net[7], net[9]
    w = {f"{n}.{p}": t.detach().numpy().astype(np.float32)
         for n, m in (("conv1", conv1), ("conv2", conv2), ("fc1", fc1), ("fc2", fc2))
         for p, t in (("weight", m.weight), ("bias", m.bias))}
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    inits.append(numpy_helper.from_array(np.array([-1, 800], np.int64), "flat_shape"))
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["c1"], name="conv1",
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="conv2",
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Reshape", ["p2", "flat_shape"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r3"], name="relu3"),
        helper.make_node("Gemm", ["r3", "fc2.weight", "fc2.bias"], ["logits"], name="fc2",
                         transB=1),
    ]
    g = helper.make_graph(
        nodes, "fashion_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.doc_string = "FlipLab seed 003 stand-in: small CNN on Fashion-MNIST, pixels / 255."
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="fashion_mnist.npz (x_train, y_train, x_test, y_test)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = np.load(args.data)
    x = torch.tensor(d["x_train"][:, None] / 255.0, dtype=torch.float32)
    y = torch.tensor(d["y_train"], dtype=torch.long)
    net = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 64), nn.ReLU(),
                        nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 128):
            idx = order[i:i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        print(f"epoch {epoch + 1}: done")
    model = graph(net.eval())
    onnx.save(model, args.out)
    xt = (d["x_test"][:, None] / 255.0).astype(np.float32)
    logits = ort.InferenceSession(args.out).run(None, {"input": xt})[0]
    print(f"test accuracy (onnxruntime, {len(xt)} images): "
          f"{np.mean(logits.argmax(1) == d['y_test']):.4f}")


if __name__ == "__main__":
    main()
