"""Write the reference models' ONNX graphs with onnx.helper from trained numpy weights.

No torch here: every builder takes plain float32 arrays (the trained parameters) and returns
an ``onnx.ModelProto`` (opset 17, IR version 8) whose input is ``input`` and output ``logits``.
Weight initializers are named ``<layer>.weight`` / ``<layer>.bias`` and consumed by the node
named ``<layer>``, so each tensor's layer is visible in the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH = "batch"
N_CLASSES = 10
#: Input pixels at or above this unit value binarize to +1 (BNN), others to -1.
BINARIZE_AT = 0.5


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _model(nodes, inputs_shape, initializers, name: str, doc: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, inputs_shape)],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH, N_CLASSES])],
        initializer=initializers,
        doc_string=doc,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="fliplab-models",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def mlp_graph(layers: list[tuple[np.ndarray, np.ndarray]], doc: str) -> onnx.ModelProto:
    """Float MLP: Gemm(transB=1) + Relu per hidden layer, Gemm for the last.

    ``layers`` is ``[(weight [out, in], bias [out]), ...]`` in order; layer k is named fc{k+1}.
    """
    nodes, inits = [], []
    current = INPUT_NAME
    for k, (weight, bias) in enumerate(layers):
        layer = f"fc{k + 1}"
        inits += [_init(f"{layer}.weight", weight.astype(np.float32)),
                  _init(f"{layer}.bias", bias.astype(np.float32))]
        last = k == len(layers) - 1
        out = OUTPUT_NAME if last else f"{layer}.out"
        nodes.append(helper.make_node("Gemm", [current, f"{layer}.weight", f"{layer}.bias"],
                                      [out], name=layer, transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"{layer}.relu"], name=f"{layer}.relu"))
            out = f"{layer}.relu"
        current = out
    n_in = layers[0][0].shape[1]
    return _model(nodes, [BATCH, n_in], inits, "digits_mlp", doc)


def cnn_graph(conv1: tuple[np.ndarray, np.ndarray], conv2: tuple[np.ndarray, np.ndarray],
              fc: tuple[np.ndarray, np.ndarray], doc: str) -> onnx.ModelProto:
    """CNN on [batch, 1, 8, 8]: Conv3x3 pad 1 + Relu, Conv3x3 + Relu, MaxPool 2, Flatten, Gemm.

    Conv weights are [out_ch, in_ch, 3, 3] with bias [out_ch]; fc weight [10, features].
    """
    inits = [
        _init("conv1.weight", conv1[0].astype(np.float32)), _init("conv1.bias", conv1[1].astype(np.float32)),
        _init("conv2.weight", conv2[0].astype(np.float32)), _init("conv2.bias", conv2[1].astype(np.float32)),
        _init("fc.weight", fc[0].astype(np.float32)), _init("fc.bias", fc[1].astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", [INPUT_NAME, "conv1.weight", "conv1.bias"], ["conv1.out"],
                         name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1.out"], ["conv1.relu"], name="conv1.relu"),
        helper.make_node("Conv", ["conv1.relu", "conv2.weight", "conv2.bias"], ["conv2.out"],
                         name="conv2", kernel_shape=[3, 3], pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["conv2.out"], ["conv2.relu"], name="conv2.relu"),
        helper.make_node("MaxPool", ["conv2.relu"], ["pool.out"], name="pool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool.out"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], [OUTPUT_NAME], name="fc", transB=1),
    ]
    return _model(nodes, [BATCH, 1, 8, 8], inits, "digits_cnn", doc)


@dataclass
class FoldedBinaryLayer:
    """A hidden binarized layer after BatchNorm folding: y = +1 if x·sign(W) >= tau else -1."""

    weight: np.ndarray     # latent float weights [in, out], |w| >= min magnitude (no zeros)
    threshold: np.ndarray  # tau [out], integers stored as float32


@dataclass
class FoldedOutputLayer:
    """The last binarized layer after folding its BatchNorm: logits = (x·sign(W))·scale + offset."""

    weight: np.ndarray  # latent float weights [in, classes], no zeros
    scale: np.ndarray   # [classes]
    offset: np.ndarray  # [classes]


def away_from_zero(latent: np.ndarray, min_magnitude: float) -> np.ndarray:
    """Latent weights moved to at least ``min_magnitude`` from 0, keeping b(w) = +1 iff w >= 0.

    The training binarization maps 0 to +1 while ONNX ``Sign`` maps 0 to 0; after this no
    weight is 0, so ``Sign`` gives exactly the trained ±1.
    """
    w = latent.astype(np.float32)
    return np.where(w >= 0, np.maximum(w, np.float32(min_magnitude)),
                    np.minimum(w, np.float32(-min_magnitude))).astype(np.float32)


def fold_sign_batchnorm(latent: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                        var: np.ndarray, eps: float, min_magnitude: float) -> FoldedBinaryLayer:
    """Fold BatchNorm + sign activation into an integer threshold per neuron.

    ``latent`` is [in, out]. The neuron's pre-activation z = x·sign(w) is an integer for ±1
    inputs. Trained activation: +1 iff gamma·(z − mean)/sqrt(var + eps) + beta >= 0.
    With t = mean − beta·sqrt(var + eps)/gamma this is z >= t for gamma > 0, so tau = ceil(t);
    for gamma < 0 it is z <= t, i.e. (−z) >= −t: the weight column is negated (z' = −z, same
    magnitudes, so Sign still sees no 0) and tau = ceil(−t). gamma = 0 gives a constant output:
    tau = −(in + 1) (always +1) if beta >= 0, else in + 1 (never).
    """
    w = away_from_zero(latent, min_magnitude).astype(np.float64)
    fan_in = w.shape[0]
    gamma = gamma.astype(np.float64)
    beta = beta.astype(np.float64)
    sigma = np.sqrt(var.astype(np.float64) + eps)
    tau = np.empty(w.shape[1], dtype=np.float64)
    for j in range(w.shape[1]):
        if gamma[j] == 0:
            tau[j] = -(fan_in + 1) if beta[j] >= 0 else fan_in + 1
            continue
        t = mean[j] - beta[j] * sigma[j] / gamma[j]
        if gamma[j] < 0:
            w[:, j] = -w[:, j]
            t = -t
        tau[j] = np.clip(np.ceil(t), -(fan_in + 1), fan_in + 1)
    return FoldedBinaryLayer(w.astype(np.float32), tau.astype(np.float32))


def fold_output_batchnorm(latent: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                          var: np.ndarray, eps: float, min_magnitude: float) -> FoldedOutputLayer:
    """Fold the last layer's BatchNorm into a per-class affine: logits = z·scale + offset."""
    sigma = np.sqrt(var.astype(np.float64) + eps)
    scale = gamma.astype(np.float64) / sigma
    offset = beta.astype(np.float64) - scale * mean.astype(np.float64)
    return FoldedOutputLayer(away_from_zero(latent, min_magnitude), scale.astype(np.float32),
                             offset.astype(np.float32))


def bnn_graph(hidden: list[FoldedBinaryLayer], output: FoldedOutputLayer, doc: str) -> onnx.ModelProto:
    """Binarized MLP with standard ops only.

    input -> GreaterOrEqual(0.5) + Where(±1); per hidden layer k: Sign(fc{k}.weight) -> MatMul
    -> GreaterOrEqual(fc{k}.threshold) -> Where(±1); last: Sign -> MatMul -> Mul(scale) ->
    Add(offset) -> logits. MatMul weights are [in, out] (output channel on axis 1).
    """
    inits = [
        _init("binarize.at", np.array(BINARIZE_AT, dtype=np.float32)),
        _init("const.plus_one", np.array(1.0, dtype=np.float32)),
        _init("const.minus_one", np.array(-1.0, dtype=np.float32)),
    ]
    nodes = [
        helper.make_node("GreaterOrEqual", [INPUT_NAME, "binarize.at"], ["input.ge"], name="input.ge"),
        helper.make_node("Where", ["input.ge", "const.plus_one", "const.minus_one"], ["input.bin"],
                         name="input.bin"),
    ]
    current = "input.bin"
    for k, layer in enumerate(hidden):
        name = f"fc{k + 1}"
        inits += [_init(f"{name}.weight", layer.weight), _init(f"{name}.threshold", layer.threshold)]
        nodes += [
            helper.make_node("Sign", [f"{name}.weight"], [f"{name}.weight_sign"], name=f"{name}.sign"),
            helper.make_node("MatMul", [current, f"{name}.weight_sign"], [f"{name}.z"], name=name),
            helper.make_node("GreaterOrEqual", [f"{name}.z", f"{name}.threshold"], [f"{name}.ge"],
                             name=f"{name}.ge"),
            helper.make_node("Where", [f"{name}.ge", "const.plus_one", "const.minus_one"],
                             [f"{name}.act"], name=f"{name}.act"),
        ]
        current = f"{name}.act"
    name = f"fc{len(hidden) + 1}"
    inits += [_init(f"{name}.weight", output.weight), _init(f"{name}.scale", output.scale),
              _init(f"{name}.offset", output.offset)]
    nodes += [
        helper.make_node("Sign", [f"{name}.weight"], [f"{name}.weight_sign"], name=f"{name}.sign"),
        helper.make_node("MatMul", [current, f"{name}.weight_sign"], [f"{name}.z"], name=name),
        helper.make_node("Mul", [f"{name}.z", f"{name}.scale"], [f"{name}.scaled"], name=f"{name}.scale"),
        helper.make_node("Add", [f"{name}.scaled", f"{name}.offset"], [OUTPUT_NAME], name=f"{name}.offset"),
    ]
    n_in = hidden[0].weight.shape[0]
    return _model(nodes, [BATCH, n_in], inits, "digits_bnn", doc)
