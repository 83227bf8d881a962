"""Algorithm 1 of seed 002 (feature resilience optimisation) with torch fine-tuning.

The ONNX model is read as a chain (:func:`host.mitigation.relevance.read_chain`), converted to
a torch ``nn.Sequential`` of the same ops (:func:`to_torch`), fine-tuned, and its weights
written back into the ONNX initializers (:func:`write_back`): the ONNX graph stays the model of
record, torch only trains. Iteration t of :func:`algorithm1`:

1. lines 2-7: for each feature layer, ρ on D, η, eq. 6, re-quantisation to the codec's grid
   (:func:`host.mitigation.rescale.adjust_weights`);
2. the measures after setting the adjusted weights (the paper's Fig. 5): test accuracy and
   (1/L)·Σ SD(η / mean η) on D;
3. lines 8-10: unless t = T-1, fine-tune (Adam, cross-entropy) on the training data.

Each finished iteration is saved in the log folder (``iterations.jsonl`` and the model entering
the next iteration, ``state.onnx``, both written atomically), so an interrupted run resumes
after its last finished iteration.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn
from tqdm import tqdm

from host.errors import FlipLabError
from host.fileio import write_atomic
from host.mitigation.relevance import Chain, Step, convergence_measure, criticality, read_chain
from host.mitigation.rescale import adjust_weights
from host.model.graph import copy_model
from host.model.reading import read_onnx


class _Reshape(nn.Module):
    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(self.shape)])


def _symmetric(pads: list[int], step: Step) -> tuple[int, int]:
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise FlipLabError(f"{step.node}: asymmetric pads {pads} have no torch layer here")
    return pads[0], pads[1]


def _module(step: Step) -> nn.Module:
    layer: nn.Conv2d | nn.Linear
    if step.kind == "conv":
        assert step.weight is not None
        k, c, u, v = step.weight.shape
        layer = nn.Conv2d(c, k, (u, v), stride=tuple(step.attrs["strides"]),
                          padding=_symmetric(step.attrs["pads"], step), bias=step.bias is not None)
    elif step.kind == "dense":
        assert step.weight is not None
        layer = nn.Linear(step.weight.shape[1], step.weight.shape[0], bias=step.bias is not None)
    elif step.kind == "relu":
        return nn.ReLU()
    elif step.kind == "maxpool":
        a = step.attrs
        return nn.MaxPool2d(a["kernel"], a["strides"], padding=_symmetric(a["pads"], step))
    elif step.kind == "avgpool":
        return nn.AvgPool2d(step.attrs["kernel"], step.attrs["strides"])
    elif step.kind == "gap":
        return nn.AdaptiveAvgPool2d(1)
    elif step.kind == "reshape":
        return _Reshape(step.attrs["shape"])
    else:
        raise FlipLabError(f"{step.node}: a {step.kind} step cannot be fine-tuned (rescale takes "
                           f"a float model)")
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(step.weight)))
        if step.bias is not None and layer.bias is not None:
            layer.bias.copy_(torch.from_numpy(step.bias.reshape(-1)))
    return layer


def to_torch(chain: Chain) -> nn.Sequential:
    """The chain as torch layers with its weights (float32)."""
    return nn.Sequential(*[_module(step) for step in chain.steps])


def write_back(model: onnx.ModelProto, chain: Chain, module: nn.Sequential) -> onnx.ModelProto:
    """``model`` with the weight layers' initializers set from the trained ``module``."""
    result = copy_model(model)
    inits = {t.name: i for i, t in enumerate(result.graph.initializer)}
    for step, layer in zip(chain.steps, module):
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            continue
        w = layer.weight.detach().cpu().numpy().astype(np.float32)
        if step.layout in ("gemm", "matmul"):
            w = w.T
        pairs = [(step.weight_name, w)]
        if step.bias is not None and layer.bias is not None:
            pairs.append((step.bias_name, layer.bias.detach().cpu().numpy().astype(np.float32)))
        for name, value in pairs:
            if name is None or name not in inits:
                raise FlipLabError(f"layer {step.node}: its weights are not float initializers")
            old = result.graph.initializer[inits[name]]
            shape = numpy_helper.to_array(old).shape
            old.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value.reshape(shape)), name))
    return result


def fine_tune(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray, *, epochs: float,
              lr: float, batch: int, seed: int, progress: bool = False,
              desc: str = "fine-tune") -> tuple[onnx.ModelProto, float]:
    """``epochs`` passes (fractions allowed) of Adam on cross-entropy over (x, y); returns the
    model with the new weights and the mean loss of the last 50 batches."""
    chain = read_chain(model)
    module = to_torch(chain)
    module.train()
    optimiser = torch.optim.Adam(module.parameters(), lr=lr)
    generator = np.random.default_rng(seed)
    steps = max(1, math.ceil(epochs * len(x) / batch))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)
    order = np.concatenate([generator.permutation(len(x))
                            for _ in range(math.ceil(steps * batch / len(x)) + 1)])
    losses: list[float] = []
    for i in tqdm(range(steps), desc=desc, unit="batch", disable=not progress):
        idx = torch.from_numpy(order[i * batch:(i + 1) * batch])
        loss = nn.functional.cross_entropy(module(xt[idx]), yt[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return write_back(model, chain, module), float(np.mean(losses[-50:]))


def accuracy(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the ONNX model (torch forward of the same chain, batched)."""
    module = to_torch(read_chain(model)).eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), 1000):
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + 1000], dtype=np.float32))
            correct += int((module(xb).argmax(1).numpy() == y[start:start + 1000]).sum())
    return correct / len(x)


@dataclass(frozen=True)
class RescaleConfig:
    """The settings of ``host rescale`` (a changed setting does not resume an old log)."""

    data: str = "digits"
    normalize: str = "unit"
    samples: int | None = None       # first N training samples fine-tuned on (None: all)
    lrp_samples: int = 1000          # first N training samples of D for ρ and η
    iterations: int = 5              # T
    epochs: float = 1.0              # fine-tuning epochs between iterations
    lr: float = 1e-4
    batch: int = 64
    codec: str | None = "int8"       # re-quantisation grid (None: keep float)
    compensate: bool = False         # function-keeping eq. 6 instead of the paper's form
    seed: int = 0


def _load(config: RescaleConfig, model_path: Path, split: str, samples: int | None
          ) -> tuple[np.ndarray, np.ndarray]:
    from host.mitigation.relevance import load_samples

    return load_samples(model_path, config.data, config.normalize, samples, split)


def algorithm1(model: onnx.ModelProto, train: tuple[np.ndarray, np.ndarray],
               test: tuple[np.ndarray, np.ndarray], config: RescaleConfig, log: str | Path, *,
               progress: bool = False) -> tuple[onnx.ModelProto, list[dict]]:
    """Algorithm 1 for ``config.iterations`` iterations, resumable from ``log`` (a folder)."""
    if config.iterations < 1 or config.epochs < 0 or config.lr <= 0 or config.batch < 1:
        raise FlipLabError("rescale needs iterations >= 1, epochs >= 0, lr > 0 and batch >= 1")
    folder = Path(log)
    folder.mkdir(parents=True, exist_ok=True)
    settings = json.dumps(asdict(config), sort_keys=True)
    config_file, records_file, state_file = (folder / "config.json", folder / "iterations.jsonl",
                                             folder / "state.onnx")
    records: list[dict] = []
    if config_file.exists():
        if config_file.read_text() != settings:
            raise FlipLabError(f"{folder} holds a run with other settings; remove it or give "
                               f"another --log")
        if records_file.exists() and state_file.exists():
            records = [json.loads(line) for line in records_file.read_text().splitlines() if line]
            model = read_onnx(state_file)
    else:
        write_atomic(config_file, settings.encode())
    x_lrp, y_lrp = train[0][:config.lrp_samples], train[1][:config.lrp_samples]
    if not records:
        layers = criticality(read_chain(model), x_lrp, y_lrp)
        records.append({"iteration": "original", "mean_sd_normalised_eta":
                        convergence_measure(layers), "accuracy": accuracy(model, *test)})
        write_atomic(records_file, (json.dumps(records[0]) + "\n").encode())
    done = len(records) - 1
    for t in range(done, config.iterations):
        step = (lambda name, t=t: print(f"iteration {t}: adjusted {name}", flush=True)) \
            if progress else None
        model, _ = adjust_weights(model, x_lrp, y_lrp, compensate=config.compensate,
                                  codec=config.codec, progress=step)
        layers = criticality(read_chain(model), x_lrp, y_lrp)
        record = {"iteration": t, "mean_sd_normalised_eta": convergence_measure(layers),
                  "accuracy": accuracy(model, *test)}
        if t < config.iterations - 1 and config.epochs > 0:
            model, loss = fine_tune(model, *train, epochs=config.epochs, lr=config.lr,
                                    batch=config.batch, seed=config.seed + t, progress=progress,
                                    desc=f"fine-tune {t}")
            record["fine_tune_loss"] = round(loss, 5)
            record["accuracy_fine_tuned"] = accuracy(model, *test)
        write_atomic(state_file, model.SerializeToString())
        records.append(record)
        write_atomic(records_file, "".join(json.dumps(r) + "\n" for r in records).encode())
    return model, records


def rescale_to_file(model_path: str | Path, output: str | Path, config: RescaleConfig,
                    log: str | Path, *, progress: bool = False) -> dict:
    """``host rescale``: Algorithm 1 on the model at ``model_path``, the result written
    atomically to ``output``; returns the per-iteration records."""
    path = Path(model_path)
    train = _load(config, path, "train", config.samples)
    test = _load(config, path, "test", None)
    model, records = algorithm1(read_onnx(path), train, test, config, log, progress=progress)
    write_atomic(output, model.SerializeToString())
    return {"model": str(path), "output": str(output), "log": str(log),
            "config": asdict(config), "iterations": records}
