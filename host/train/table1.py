"""The MNIST CNN of seed 002's Table I, built as an ONNX graph and trained with torch.

Layer 0: 3×3 conv 1 -> 16, ReLU (16×28×28); layer 1: 3×3 conv 16 -> 64, ReLU, 2×2 max-pool
(64×14×14); layer 2: 3×3 conv 64 -> 64, ReLU (64×14×14); layer 3: global average pooling (64);
layer 4: 1×1 conv 64 -> 10 (the logits, flattened to [N, 10]). Convolutions are padded to keep
the spatial size. The architecture-optimised version is
:func:`host.mitigation.bottleneck.pool_after_pointwise` of the trained model (same weights,
same function, the pooling after the 1×1 conv).

The graph is written with numpy (He-initialised weights, zero biases), then trained by
:func:`host.train.rescale.fine_tune`, the same torch path Algorithm 1 fine-tunes with.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: (output channels, kernel) of the convolutions; the max-pool follows layer 1
TABLE1_MNIST = ((16, 3), (64, 3), (64, 3), (10, 1))


def table1_model(seed: int = 0) -> onnx.ModelProto:
    """The untrained Table I MNIST network: ``input`` [N, 1, 28, 28] -> ``logits`` [N, 10]."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    current, channels = "input", 1
    for i, (out, k) in enumerate(TABLE1_MNIST):
        w = rng.normal(0.0, np.sqrt(2.0 / (channels * k * k)), size=(out, channels, k, k))
        inits += [numpy_helper.from_array(w.astype(np.float32), f"conv{i}.weight"),
                  numpy_helper.from_array(np.zeros(out, np.float32), f"conv{i}.bias")]
        if i == 3:
            nodes.append(helper.make_node("GlobalAveragePool", [current], ["gap"], name="gap"))
            current = "gap"
        nodes.append(helper.make_node("Conv", [current, f"conv{i}.weight", f"conv{i}.bias"],
                                      [f"conv{i}"], name=f"conv{i}", kernel_shape=[k, k],
                                      pads=[k // 2] * 4))
        current = f"conv{i}"
        if i < 3:
            nodes.append(helper.make_node("Relu", [current], [f"relu{i}"], name=f"relu{i}"))
            current = f"relu{i}"
        if i == 1:
            nodes.append(helper.make_node("MaxPool", [current], ["pool1"], name="pool1",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            current = "pool1"
        channels = out
    nodes.append(helper.make_node("Flatten", [current], ["logits"], name="flatten"))
    graph = helper.make_graph(
        nodes, "table1_mnist",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="fliplab")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
