"""Train the reference models on the embedded digits and write their ONNX graphs and cards.

Usage (from the repository root, after ``pip install -e .[train]``)::

    python models/train.py mlp     # digits_mlp.onnx       float MLP 64-64-32-10
    python models/train.py int8    # digits_mlp_int8.onnx  static QDQ int8 of digits_mlp.onnx
    python models/train.py bnn     # digits_bnn.onnx       binarized MLP 64-128-64-10
    python models/train.py cnn     # digits_cnn.onnx       small CNN on [batch, 1, 8, 8]
    python models/train.py all     # all four, in that order
    python models/train.py all --out DIR   # write elsewhere (e.g. to compare a re-training)

Torch is used only here (the ``train`` extra). The ONNX graphs are written by hand with
onnx.helper (models/onnx_export.py) from the trained weights. Each model's accuracy is then
measured with onnxruntime on the digits test split and stored in ``cards.json``; README.md is
rendered from it (models/cards.py). Seeds are fixed and torch runs single-threaded with
deterministic algorithms, so a re-training gives the same weights up to float noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from cards import MODELS_DIR, measure, write_cards
from onnx_export import (
    BINARIZE_AT,
    bnn_graph,
    cnn_graph,
    fold_output_batchnorm,
    fold_sign_batchnorm,
    mlp_graph,
)
from torch import nn

from host.data import load_dataset

SEED = 0
#: Latent BNN weights are stored at least this far from 0 so ONNX Sign never returns 0.
BNN_MIN_MAGNITUDE = 1e-3
COMMAND = ".venv/bin/pip install -e .[train] && .venv/bin/python models/train.py {}"
TRAIN_SETTINGS = {
    "mlp": {"epochs": 80, "batch": 32, "lr": 3e-3, "weight_decay": 1e-4},
    "cnn": {"epochs": 60, "batch": 32, "lr": 3e-3, "weight_decay": 1e-4},
    "bnn": {"epochs": 150, "batch": 32, "lr": 3e-3, "weight_decay": 0.0},
}


def seed_everything(seed: int = SEED) -> torch.Generator:
    """Fix every random source torch and numpy use; return a seeded generator for shuffling."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def digits(split: str, input_shape: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedded digits ``split`` in the models' input form (unit normalisation, [0, 1])."""
    x, y = load_dataset(f"digits:{split}", input_shape=input_shape, normalize="unit")
    return torch.from_numpy(x), torch.from_numpy(y)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch: int, lr: float,
        weight_decay: float, generator: torch.Generator, after_step=None) -> None:
    """Minibatch Adam on cross-entropy; ``after_step(model)`` runs after every update."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(model)
        scheduler.step()
    model.eval()


def torch_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model`` (eval mode) in [0, 1]."""
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def numpy_of(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


# ---------------------------------------------------------------------------------- float MLP

def train_mlp(out: Path) -> dict:
    """Float MLP 64 -> 64 -> 32 -> 10 with ReLU; written as Gemm/Relu."""
    gen = seed_everything()
    x, y = digits("train", ["batch", 64])
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    fit(model, x, y, generator=gen, **TRAIN_SETTINGS["mlp"])
    linears = [m for m in model if isinstance(m, nn.Linear)]
    doc = "FlipLab reference float MLP 64-64-32-10 (ReLU) on 8x8 digits, input in [0, 1]."
    graph = mlp_graph([(numpy_of(m.weight), numpy_of(m.bias)) for m in linears], doc)
    path = out / "digits_mlp.onnx"
    onnx.save(graph, str(path))
    return measure(
        path,
        parameters={"weights": sum(m.weight.numel() for m in linears),
                    "biases": sum(m.bias.numel() for m in linears),
                    "total": sum(p.numel() for p in model.parameters())},
        architecture="Gemm 64->64 + Relu, Gemm 64->32 + Relu, Gemm 32->10 (float32)",
        command=COMMAND.format("mlp"),
        seed=SEED,
        notes=("Float baseline. Gemm weights are [out, in] (transB=1), so the output channel "
               "is axis 0. Trained with Adam (lr 3e-3, cosine schedule, weight decay 1e-4), "
               "80 epochs, batch 32, cross-entropy."),
    )


# ---------------------------------------------------------------------------------- int8 QDQ

def quantize_mlp(out: Path) -> dict:
    """Static QDQ int8 quantisation of digits_mlp.onnx with onnxruntime, calibrated on train."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    source = out / "digits_mlp.onnx"
    if not source.exists():
        raise SystemExit(f"{source} not found: run 'python models/train.py mlp' first")
    x, _ = load_dataset("digits:train", input_shape=["batch", 64], normalize="unit")

    class TrainSplitReader(CalibrationDataReader):
        """Feeds the whole train split in batches of 128."""

        def __init__(self) -> None:
            self._batches = iter([{"input": x[i:i + 128]} for i in range(0, len(x), 128)])

        def get_next(self):
            return next(self._batches, None)

    path = out / "digits_mlp_int8.onnx"
    # No quant_pre_process: the hand-written float graph is already minimal (its basic
    # optimisation pass would only add unused opset imports); onnxruntime warns about it.
    quantize_static(
        str(source), str(path), TrainSplitReader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
    )
    model = onnx.load(str(path))
    counts = {"int8 weights": 0, "int32 biases": 0}
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2:
            counts["int8 weights"] += int(np.prod(t.dims))
        elif t.data_type == onnx.TensorProto.INT32:
            counts["int32 biases"] += int(np.prod(t.dims))
    counts["total"] = counts["int8 weights"] + counts["int32 biases"]
    return measure(
        path,
        parameters=counts,
        architecture=("QDQ int8 of digits_mlp: DequantizeLinear(int8 weight, per-channel scale, "
                      "axis 0) and DequantizeLinear(int32 bias) feed each Gemm; activations "
                      "QuantizeLinear/DequantizeLinear int8"),
        command=COMMAND.format("mlp int8"),
        seed=SEED,
        notes=("Made from digits_mlp.onnx by onnxruntime.quantization.quantize_static: "
               "QuantFormat.QDQ, per_channel=True, weights QInt8 symmetric (zero point 0), "
               "activations QInt8 asymmetric, MinMax calibration on the 1,347 train images. "
               "Biases are int32 with scale = input scale x weight scale. The ReLUs are absorbed by "
               "the activation QuantizeLinear (zero point -128 saturates negatives to 0). "
               "Re-quantising needs "
               "digits_mlp.onnx, hence `mlp int8` in the command."),
    )


# ---------------------------------------------------------------------------------- BNN

class SignSTE(torch.autograd.Function):
    """b(v) = +1 if v >= 0 else -1; backward: straight-through, zeroed where |v| > 1."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return torch.where(v >= 0, torch.ones_like(v), -torch.ones_like(v))

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * (v.abs() <= 1).to(grad.dtype)


class BinaryLinear(nn.Module):
    """x @ b(W)^T with latent float weights W in [-1, 1] (clamped after each step)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-1, 1))

    def forward(self, x):
        return x @ SignSTE.apply(self.weight).t()


class BinarizedMLP(nn.Module):
    """Inputs binarized at 0.5; BinaryLinear + BatchNorm + sign per hidden layer; last layer
    BinaryLinear + BatchNorm (logits), as in seed 004 (Hubara et al. training)."""

    def __init__(self, sizes=(64, 128, 64, 10)) -> None:
        super().__init__()
        self.linears = nn.ModuleList(BinaryLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in sizes[1:])

    def forward(self, x):
        h = torch.where(x >= BINARIZE_AT, torch.ones_like(x), -torch.ones_like(x))
        for k, (lin, norm) in enumerate(zip(self.linears, self.norms)):
            h = norm(lin(h))
            if k < len(self.linears) - 1:
                h = SignSTE.apply(h)
        return h


def clamp_latent(model: BinarizedMLP) -> None:
    with torch.no_grad():
        for lin in model.linears:
            lin.weight.clamp_(-1, 1)


def train_bnn(out: Path) -> dict:
    """Binarized MLP 64 -> 128 -> 64 -> 10 trained with the straight-through estimator."""
    gen = seed_everything()
    x, y = digits("train", ["batch", 64])
    model = BinarizedMLP()
    fit(model, x, y, generator=gen, after_step=clamp_latent, **TRAIN_SETTINGS["bnn"])
    hidden = []
    for lin, norm in zip(model.linears[:-1], model.norms[:-1]):
        hidden.append(fold_sign_batchnorm(
            numpy_of(lin.weight).T, numpy_of(norm.weight), numpy_of(norm.bias),
            numpy_of(norm.running_mean), numpy_of(norm.running_var), norm.eps, BNN_MIN_MAGNITUDE))
    lin, norm = model.linears[-1], model.norms[-1]
    last = fold_output_batchnorm(
        numpy_of(lin.weight).T, numpy_of(norm.weight), numpy_of(norm.bias),
        numpy_of(norm.running_mean), numpy_of(norm.running_var), norm.eps, BNN_MIN_MAGNITUDE)
    doc = ("FlipLab reference binarized MLP 64-128-64-10 on 8x8 digits: inputs binarized at 0.5, "
           "Sign on every weight path, BatchNorm folded into integer thresholds.")
    path = out / "digits_bnn.onnx"
    onnx.save(bnn_graph(hidden, last, doc), str(path))

    x_test, y_test = digits("test", ["batch", 64])
    trained = torch_accuracy(model, x_test, y_test)
    n_weights = sum(lin.weight.numel() for lin in model.linears)
    card = measure(
        path,
        parameters={"binary weights": n_weights,
                    "integer thresholds": sum(h.threshold.size for h in hidden),
                    "output scale+offset": 2 * last.scale.size,
                    "total": n_weights + sum(h.threshold.size for h in hidden) + 2 * last.scale.size},
        architecture=("x >= 0.5 -> +1 else -1 (GreaterOrEqual + Where); Sign(W1) MatMul 64->128, "
                      "z >= tau1 -> ±1; Sign(W2) MatMul 128->64, z >= tau2 -> ±1; Sign(W3) MatMul "
                      "64->10, Mul(scale) + Add(offset) -> logits"),
        command=COMMAND.format("bnn"),
        seed=SEED,
        notes=_bnn_notes(trained),
    )
    return card


def _bnn_notes(trained: float) -> str:
    return (
        "Trained as in seed 004 (Hubara et al.): latent float weights clamped to [-1, 1] after "
        "each Adam step, forward with b(v) = +1 if v >= 0 else -1 on weights and activations, "
        "straight-through gradient (zeroed where |v| > 1), BatchNorm after every layer "
        "including the last; 150 epochs, batch 32, lr 3e-3 cosine. "
        f"Torch accuracy before export: {100 * trained:.2f} %.\n\n"
        "Export. Weights are stored as the latent floats ([in, out], output channel on axis 1), "
        "each moved at least 1e-3 away from 0 (keeping its sign, 0 counted as +1) so the "
        "graph's `Sign` gives exactly the trained ±1 and never 0; a 1-bit `sign` codec stores "
        "just that sign. With ±1 inputs and weights a neuron's sum z = x·sign(w) is an "
        "integer in [-fan_in, fan_in] (XNOR + popcount: z = fan_in − 2·popcount(x XOR w)). "
        "The trained activation is +1 iff γ(z − μ)/σ + β ≥ 0 (σ = sqrt(var + eps)). For γ > 0 "
        "that is z ≥ t with t = μ − βσ/γ, and since z is an integer, z ≥ τ with τ = ceil(t). "
        "For γ < 0 the inequality flips (z ≤ t); instead of a second comparison op the "
        "neuron's weight column is negated (z' = −z) and τ = ceil(−t), so the graph always "
        "uses `GreaterOrEqual(z, τ)` + `Where(+1, −1)`. γ = 0 gives a constant neuron "
        "(τ = −fan_in − 1 or fan_in + 1); τ is clipped to [−fan_in − 1, fan_in + 1]. "
        "Thresholds are float32 tensors holding integers. The last layer's BatchNorm becomes "
        "the per-class affine logits = z·(γ/σ) + (β − γμ/σ) (`Mul` + `Add`)."
    )


# ---------------------------------------------------------------------------------- CNN

def train_cnn(out: Path) -> dict:
    """CNN on [batch, 1, 8, 8]: Conv3x3(8, pad 1)+ReLU, Conv3x3(16)+ReLU, MaxPool2, Gemm 10."""
    gen = seed_everything()
    x, y = digits("train", ["batch", 1, 8, 8])
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 3 * 3, 10),
    )
    fit(model, x, y, generator=gen, **TRAIN_SETTINGS["cnn"])
    conv1, conv2, fc = model[0], model[2], model[6]
    doc = "FlipLab reference CNN on 8x8 digits [batch, 1, 8, 8], input in [0, 1]."
    graph = cnn_graph((numpy_of(conv1.weight), numpy_of(conv1.bias)),
                      (numpy_of(conv2.weight), numpy_of(conv2.bias)),
                      (numpy_of(fc.weight), numpy_of(fc.bias)), doc)
    path = out / "digits_cnn.onnx"
    onnx.save(graph, str(path))
    layers = [conv1, conv2, fc]
    return measure(
        path,
        parameters={"weights": sum(m.weight.numel() for m in layers),
                    "biases": sum(m.bias.numel() for m in layers),
                    "total": sum(p.numel() for p in model.parameters())},
        architecture=("Conv 3x3 1->8 pad 1 + Relu [8,8,8], Conv 3x3 8->16 + Relu [16,6,6], "
                      "MaxPool 2 [16,3,3], Flatten 144, Gemm 144->10 (float32)"),
        command=COMMAND.format("cnn"),
        seed=SEED,
        notes=("Conv weights are [out_ch, in_ch, 3, 3] (output channel axis 0); Gemm weight "
               "[10, 144] with transB=1. Trained with Adam (lr 3e-3, cosine, weight decay 1e-4), "
               "60 epochs, batch 32."),
    )


TRAINERS = {"mlp": train_mlp, "int8": quantize_mlp, "bnn": train_bnn, "cnn": train_cnn}
CARD_NAMES = {"mlp": "digits_mlp", "int8": "digits_mlp_int8", "bnn": "digits_bnn", "cnn": "digits_cnn"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train FlipLab's reference models on the embedded digits.")
    parser.add_argument("models", nargs="+", choices=[*TRAINERS, "all"],
                        help="which models to (re)build; 'all' = mlp int8 bnn cnn")
    parser.add_argument("--out", type=Path, default=MODELS_DIR,
                        help=f"output directory (default: {MODELS_DIR})")
    args = parser.parse_args(argv)
    names = list(TRAINERS) if "all" in args.models else list(dict.fromkeys(args.models))
    if "int8" in names and "mlp" in names:  # the int8 model is made from the float MLP
        names.remove("int8")
        names.insert(names.index("mlp") + 1, "int8")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        card = TRAINERS[name](args.out)
        write_cards(args.out, {CARD_NAMES[name]: card})
        print(f"{card['file']}: accuracy {100 * card['accuracy']:.2f} % "
              f"({card['correct']}/{card['test_samples']}), {card['bytes']} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
