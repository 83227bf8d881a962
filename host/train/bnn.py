"""Bit-error tolerant BNN training of seed 004: the flip operator E_p, eq. 1's straight-through
gradient, the hinge regulariser of eq. 7, the Fashion FCNN and CNN, export to FlipLab's ONNX.

Needs torch (``pip install -e .[train]``). docs/tolerance.md "Training" explains the recipe.

- ``E_p(B(W))`` multiplies the binarized weights by a fresh ±1 mask per forward pass (each
  entry -1 with probability p). Its gradient is straight-through (eq. 1: ``∇_B(W) ℓ =
  ∇_E_p(B(W)) ℓ``, gradient ``ste``) or, as the paper's comparison, the mask-multiplied gradient
  autograd gives for ``B(W) * mask`` (gradient ``naive``). E_p acts in training only.
- Latent weights are clipped to [-1, 1] after each step; BatchNorm follows every layer, the last
  included (its output is the logits).
- Eq. 7: ``λ · mean max(0, b − T)`` over the neurons, positions and samples of the sign layers,
  with the differentiable ``T = |h − c|`` (c the BatchNorm boundary, eq. 2 without the ½ that
  only settles integer ties).
- Export: BatchNorm + sign folded to integer thresholds (:func:`host.hw.dense.fold_batchnorm`),
  the ``GreaterOrEqual → Where`` form ``host export --lower accel`` lowers; the inputs are
  binarized at 0.5 of full scale (a ±1 first layer, so the accelerator runs it).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from tqdm import tqdm

from host.errors import FlipLabError
from host.fileio import atomic_path, write_atomic
from host.hw.dense import fold_batchnorm

BINARIZE_AT = 0.5
GRADIENTS = ("ste", "naive")
ARCHS = ("fcnn", "cnn")


class SignSTE(torch.autograd.Function):
    """B(v) = +1 if v >= 0 else -1; backward straight through (B as the identity, eq. 1)."""

    @staticmethod
    def forward(ctx, v):
        return torch.where(v >= 0, torch.ones_like(v), -torch.ones_like(v))

    @staticmethod
    def backward(ctx, grad):
        return grad


class FlipSTE(torch.autograd.Function):
    """E_p with a given ±1 mask: forward ``b * mask``, backward the gradient unchanged (eq. 1)."""

    @staticmethod
    def forward(ctx, b, mask):
        return b * mask

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def flip_mask(shape, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A ±1 mask with each entry -1 independently with probability p."""
    flips = torch.rand(shape, generator=generator) < p
    return 1.0 - 2.0 * flips.float()


def apply_flip(b: torch.Tensor, mask: torch.Tensor, gradient: str) -> torch.Tensor:
    """E_p(b) for a drawn mask, with the straight-through (``ste``) or mask-multiplied
    (``naive``) gradient."""
    if gradient == "ste":
        return FlipSTE.apply(b, mask)
    if gradient == "naive":
        return b * mask
    raise FlipLabError(f"unknown flip gradient {gradient!r}; choose {' or '.join(GRADIENTS)}")


class _Binary(nn.Module):
    """Latent weights in [-1, 1]; forward uses E_p(B(W)) in training, B(W) in eval."""

    p: float = 0.0
    gradient: str = "ste"

    def binary_weight(self) -> torch.Tensor:
        b = SignSTE.apply(self.weight)
        if self.training and self.p > 0:
            self.last_mask = flip_mask(b.shape, self.p)
            b = apply_flip(b, self.last_mask, self.gradient)
        return b


class BinaryLinear(_Binary):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-1, 1))

    def forward(self, x):
        return x @ self.binary_weight().t()


class BinaryConv2d(_Binary):
    def __init__(self, c_in: int, c_out: int, k: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in, k, k).uniform_(-1, 1))

    def forward(self, x):
        return nn.functional.conv2d(x, self.binary_weight(), padding=1)


class BNN(nn.Module):
    """Seed 004's Fashion networks. ``fcnn``: In → w → w → 10 (w = 2048 in the paper);
    ``cnn``: C(c) 3×3, MP2, C(c), MP2, FC w, FC w, 10 (c = 64, w = 2048). Every layer is
    followed by BatchNorm; a sign after every BatchNorm but the last. Inputs binarized at 0.5."""

    def __init__(self, arch: str, in_shape: tuple[int, ...], width: int = 2048,
                 channels: int = 64) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise FlipLabError(f"unknown architecture {arch!r}; choose {' or '.join(ARCHS)}")
        self.arch, self.in_shape = arch, tuple(in_shape)
        self.convs = nn.ModuleList()
        self.conv_norms = nn.ModuleList()
        n_in = int(np.prod(in_shape))
        if arch == "cnn":
            if len(in_shape) != 3:
                raise FlipLabError(f"the CNN needs image samples (C, H, W), got {in_shape}")
            c, h, w = in_shape
            for c_in in (c, channels):
                self.convs.append(BinaryConv2d(c_in, channels))
                self.conv_norms.append(nn.BatchNorm2d(channels))
            n_in = channels * (h // 4) * (w // 4)
        sizes = [n_in, width, width, 10]
        self.linears = nn.ModuleList(BinaryLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in sizes[1:])

    def binary_layers(self) -> list[_Binary]:
        return [*self.convs, *self.linears]

    def set_flip(self, p: float, gradient: str = "ste") -> None:
        if gradient not in GRADIENTS:
            raise FlipLabError(f"unknown flip gradient {gradient!r}; choose {' or '.join(GRADIENTS)}")
        for layer in self.binary_layers():
            layer.p, layer.gradient = p, gradient

    def forward(self, x, margins: list | None = None):
        """Logits; ``margins`` (a list) receives each sign layer's differentiable T = |h − c|."""
        h = torch.where(x >= BINARIZE_AT, torch.ones_like(x), -torch.ones_like(x))
        if self.arch == "cnn":
            h = h.reshape(-1, *self.in_shape)
            for conv, norm in zip(self.convs, self.conv_norms):
                h = nn.functional.max_pool2d(self._sign(conv(h), norm, margins), 2)
        h = h.reshape(len(h), -1)
        for k, (lin, norm) in enumerate(zip(self.linears, self.norms)):
            if k < len(self.linears) - 1:
                h = self._sign(lin(h), norm, margins)
            else:
                h = norm(lin(h))
        return h

    @staticmethod
    def _sign(h, norm, margins):
        bn = norm(h)
        if margins is not None:
            # BN(h) = γ (h − μ)/σ + β vanishes at the boundary c, so |h − c| = |BN(h)| σ / |γ|,
            # σ the standard deviation BN normalises with (the batch's in training)
            dims = [0] + list(range(2, h.dim()))
            var = h.var(dim=dims, unbiased=False) if norm.training else norm.running_var
            shape = [1, -1] + [1] * (h.dim() - 2)
            sigma = torch.sqrt(var + norm.eps).view(shape)
            margins.append(bn.abs() * sigma / norm.weight.abs().view(shape).clamp(min=1e-12))
        return SignSTE.apply(bn)


def hinge(margins: list[torch.Tensor], b: float) -> torch.Tensor:
    """Eq. 7 averaged: mean over all sign-layer neurons, positions and samples of
    max(0, b − T)."""
    flat = torch.cat([m.reshape(-1) for m in margins])
    return torch.clamp(b - flat, min=0).mean()


def clip_latent(model: BNN) -> None:
    with torch.no_grad():
        for layer in model.binary_layers():
            weight: Any = layer.weight
            weight.clamp_(-1, 1)


# ------------------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; a checkpoint resumes only under the same config."""

    arch: str = "fcnn"
    data: str = "digits"
    normalize: str = "unit"
    samples: int | None = None
    flip_p: float = 0.0
    gradient: str = "ste"
    lam: float = 0.0
    b: float = 64.0
    epochs: int = 20
    batch: int = 128
    lr: float = 1e-3
    width: int = 2048
    channels: int = 64
    seed: int = 0


def _resumable(config: dict | None) -> dict | None:
    """The settings a checkpoint must share to resume: all but ``epochs`` (a run may be
    extended)."""
    return None if config is None else {k: v for k, v in config.items() if k != "epochs"}


def _sample_shape(config: TrainConfig) -> tuple[int, ...]:
    from host.data.dataset import read_split

    shape = tuple(int(d) for d in read_split(config.data, split="train").x.shape[1:])
    if config.arch == "fcnn":
        return (int(np.prod(shape)),)
    return (1, *shape) if len(shape) == 2 else shape


def load_split(config: TrainConfig, split: str, samples: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    from host.data import load_dataset

    shape = _sample_shape(config)
    x, y = load_dataset(config.data, input_shape=["batch", *shape], split=split,
                        normalize=config.normalize, samples=samples)
    return torch.from_numpy(x), torch.from_numpy(y)


def build(config: TrainConfig) -> BNN:
    model = BNN(config.arch, _sample_shape(config), width=config.width, channels=config.channels)
    model.set_flip(config.flip_p, config.gradient)
    return model


def _validate(config: TrainConfig) -> None:
    if not 0 <= config.flip_p <= 0.5:
        raise FlipLabError(f"--flip-p {config.flip_p}: must be in [0, 0.5]")
    if config.gradient not in GRADIENTS:
        raise FlipLabError(f"unknown flip gradient {config.gradient!r}; choose {' or '.join(GRADIENTS)}")
    if config.lam < 0 or config.b < 0 or not math.isfinite(config.lam):
        raise FlipLabError("--lam and --b must be >= 0")
    if config.arch not in ARCHS:
        raise FlipLabError(f"unknown architecture {config.arch!r}; choose {' or '.join(ARCHS)}")
    if min(config.epochs, config.batch, config.width, config.channels) < 1 or config.lr <= 0:
        raise FlipLabError("epochs, batch, width, channels and lr must be positive")


def train(config: TrainConfig, checkpoint: str | Path | None = None, *,
          progress: bool = True) -> tuple[BNN, dict]:
    """Train (or resume from ``checkpoint``, saved after every epoch) and return the model in
    eval mode and a summary (final loss, train accuracy, epochs, images/s)."""
    _validate(config)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    x, y = load_split(config, "train", config.samples)
    model = build(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    # the paper halves the learning rate every 25 epochs (100 epochs in all)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=25, gamma=0.5)
    start, history = 0, []
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        try:
            state = torch.load(ckpt, weights_only=False)
        except Exception as exc:  # torch raises many kinds for a damaged file
            raise FlipLabError(f"cannot read checkpoint {ckpt}: {str(exc).splitlines()[0]}") from None
        if _resumable(state.get("config")) != _resumable(asdict(config)):
            raise FlipLabError(f"checkpoint {ckpt} was made with other settings; remove it or "
                               f"choose another output")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start, history = state["epoch"], state["history"]
    loss_fn = nn.CrossEntropyLoss()
    bar = tqdm(range(start, config.epochs), desc="train-bnn", unit="epoch", disable=not progress,
               initial=start, total=config.epochs)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(y), generator=generator)
        total, correct, seen = 0.0, 0, 0
        for s in range(0, len(y), config.batch):
            idx = order[s:s + config.batch]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            optimizer.zero_grad()
            margins: list | None = [] if config.lam > 0 else None
            out = model(x[idx], margins)
            loss = loss_fn(out, y[idx])
            if margins:
                loss = loss + config.lam * hinge(margins, config.b)
            loss.backward()
            optimizer.step()
            clip_latent(model)
            total += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == y[idx]).sum())
            seen += len(idx)
        scheduler.step()
        history.append({"epoch": epoch + 1, "loss": total / max(seen, 1),
                        "train_accuracy": correct / max(seen, 1)})
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", acc=f"{history[-1]['train_accuracy']:.4f}")
        if ckpt is not None:
            state = {"config": asdict(config), "epoch": epoch + 1, "history": history,
                     "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                     "torch_rng": torch.get_rng_state()}
            with atomic_path(ckpt) as tmp:
                torch.save(state, tmp)
    model.eval()
    return model, {"config": asdict(config), "history": history}


# ------------------------------------------------------------------------------- export

def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def _folded(lin: Any, norm: Any, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """±1 weights (neurons first) and integer thresholds of sign(BN(B(W) x)), gamma < 0
    folded by negating the neuron's weights (host.hw.dense.fold_batchnorm)."""
    w = np.where(_np(lin.weight) >= 0, 1.0, -1.0)
    tau, invert = fold_batchnorm(_np(norm.weight), _np(norm.bias), _np(norm.running_mean),
                                 _np(norm.running_var), norm.eps, n_in)
    w[invert] = -w[invert]
    return w, tau


def to_onnx(model: BNN, doc: str = "") -> onnx.ModelProto:
    """The eval-mode network in FlipLab's folded form (see the module docstring): weights ±1
    behind ``Sign`` (FlipLab stores them with the ``sign`` codec), BatchNorm + sign as
    ``GreaterOrEqual(z, tau) → Where(±1)``, the last BatchNorm as ``Mul(scale) + Add(offset)``."""
    def init(name, array):
        return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)

    inits = [init("binarize.at", np.array(BINARIZE_AT)), init("const.plus_one", np.array(1.0)),
             init("const.minus_one", np.array(-1.0))]
    nodes = [helper.make_node("GreaterOrEqual", ["input", "binarize.at"], ["input.ge"], name="input.ge"),
             helper.make_node("Where", ["input.ge", "const.plus_one", "const.minus_one"],
                              ["input.bin"], name="input.bin")]
    current = "input.bin"

    def sign_block(name, tau_shape, tau):
        inits.append(init(f"{name}.threshold", tau.reshape(tau_shape)))
        return [helper.make_node("GreaterOrEqual", [f"{name}.z", f"{name}.threshold"], [f"{name}.ge"],
                                 name=f"{name}.ge"),
                helper.make_node("Where", [f"{name}.ge", "const.plus_one", "const.minus_one"],
                                 [f"{name}.act"], name=f"{name}.act")]

    convs: list[Any] = list(model.convs)
    linears: list[Any] = list(model.linears)
    norm: Any = None
    for k, (conv, norm) in enumerate(zip(convs, model.conv_norms)):
        name = f"conv{k + 1}"
        n_in = int(np.prod(conv.weight.shape[1:]))
        w, tau = _folded(conv, norm, n_in)
        inits.append(init(f"{name}.weight", w))
        nodes += [helper.make_node("Sign", [f"{name}.weight"], [f"{name}.weight_sign"], name=f"{name}.sign"),
                  helper.make_node("Conv", [current, f"{name}.weight_sign"], [f"{name}.z"], name=name,
                                   pads=[1, 1, 1, 1])]
        nodes += sign_block(name, (1, -1, 1, 1), tau)
        nodes.append(helper.make_node("MaxPool", [f"{name}.act"], [f"{name}.pool"], name=f"{name}.pool",
                                      kernel_shape=[2, 2], strides=[2, 2]))
        current = f"{name}.pool"
    if convs:
        nodes.append(helper.make_node("Flatten", [current], ["flat"], name="flatten", axis=1))
        current = "flat"
    last = len(linears) - 1
    name = "fc"
    for k, (lin, norm) in enumerate(zip(linears, model.norms)):
        name = f"fc{k + 1}"
        n_in = int(lin.weight.shape[1])
        if k < last:
            w, tau = _folded(lin, norm, n_in)
        else:
            w = np.where(_np(lin.weight) >= 0, 1.0, -1.0)
        inits.append(init(f"{name}.weight", w.T))          # MatMul weights are [in, out]
        nodes += [helper.make_node("Sign", [f"{name}.weight"], [f"{name}.weight_sign"], name=f"{name}.sign"),
                  helper.make_node("MatMul", [current, f"{name}.weight_sign"], [f"{name}.z"], name=name)]
        if k < last:
            nodes += sign_block(name, (-1,), tau)
            current = f"{name}.act"
    sigma = np.sqrt(_np(norm.running_var) + norm.eps)
    scale = _np(norm.weight) / sigma
    offset = _np(norm.bias) - scale * _np(norm.running_mean)
    inits += [init(f"{name}.scale", scale), init(f"{name}.offset", offset)]
    nodes += [helper.make_node("Mul", [f"{name}.z", f"{name}.scale"], [f"{name}.scaled"], name=f"{name}.scale"),
              helper.make_node("Add", [f"{name}.scaled", f"{name}.offset"], ["logits"], name=f"{name}.offset")]
    graph = helper.make_graph(
        nodes, f"bnn_{model.arch}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *model.in_shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string=doc)
    out.ir_version = 8
    onnx.checker.check_model(out)
    return out


def train_to_file(config: TrainConfig, out: str | Path, checkpoint: str | Path | None = None,
                  *, progress: bool = True) -> dict:
    """Train, then write the ONNX model atomically to ``out`` and ``out``'s summary beside it."""
    model, summary = train(config, checkpoint, progress=progress)
    doc = "seed 004 flip-regularised BNN: " + json.dumps(asdict(config))
    write_atomic(out, to_onnx(model, doc).SerializeToString())
    return summary
