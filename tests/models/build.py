"""Build the folder of test models: small models exported the way users export them.

Run from the repository root. It needs the ``train`` extra (torch 2.13.0), onnxscript (the
default exporter) and, for the brevitas models, brevitas installed without letting pip choose
a torch (brevitas's own requirement would pull another one)::

    .venv/bin/pip install torch==2.13.0 onnxscript onnxoptimizer
    .venv/bin/pip install --no-deps brevitas==0.13.4 unfoldNd
    .venv/bin/pip install dependencies==2.0.1
    .venv/bin/pip install skl2onnx              # the sklearn group

Then::

    .venv/bin/python tests/models/build.py            # every model
    .venv/bin/python tests/models/build.py brevitas   # only a group: torch, qdq, brevitas, sklearn

Each model is trained for a few seconds on the embedded digits (8 x 8 pixels, 0..16) and
exported by torch 2.13's default (dynamo) exporter or its legacy one (``dynamo=False``),
onnxruntime's ``quantize_static`` (QDQ, per channel), brevitas (QCDQ and QONNX) or
sklearn-onnx (a scikit-learn MLPClassifier: predicted label first, probabilities second; and
with its default ZipMap, whose probabilities are a sequence of maps, which FlipLab refuses). The
``.onnx`` files and ``expected.json`` are committed; the tests (tests/host/test_user_models.py)
read only those and need neither torch nor brevitas.

``expected.json`` holds, per model: how its input is fed (``normalize``, the input dtype), the
codec that must reproduce it exactly (``float32`` or the model's own codes), and the top-1
predictions onnxruntime gives on the original file for the first ``SAMPLES`` digits test
images, with their accuracy.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from host.data import load_digits  # noqa: E402

SAMPLES = 100
torch.manual_seed(0)


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    raw = load_digits(split)
    return raw.x.reshape(len(raw.y), 64), raw.y


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv1(x)).flatten(1))


class Recurrent(nn.Module):
    """Reads the image row by row: 8 steps of 8 pixels.

    ``hidden`` is large enough that the recurrence matrix [gates * hidden, hidden] has more
    than 8,192 values: onnxscript's constant folding (torch's default exporter) then leaves
    the Slice/Concat chains that reorder the stacked gates in the graph, as users see them.
    """

    def __init__(self, cell: type, hidden: int) -> None:
        super().__init__()
        self.rnn = cell(8, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class Embedding(nn.Module):
    """Token ids (the stored pixel values 0..16) -> embedding -> mean -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(17, 8)
        self.fc = nn.Linear(64 * 8, 10)

    def forward(self, tokens):
        return self.fc(self.emb(tokens).flatten(1))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 300) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def export(model: nn.Module, example: torch.Tensor, path: Path, *, dynamo: bool,
           fixed_batch: bool = False) -> None:
    kwargs: dict = {"input_names": ["input"], "output_names": ["logits"]}
    if not fixed_batch:
        if dynamo:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
        else:
            kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=dynamo, **kwargs)


def ort_predictions(path: Path, x: np.ndarray) -> list[int]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    batch = sess.get_inputs()[0].shape[0]
    if isinstance(batch, int):
        out = np.concatenate([sess.run(None, {name: x[i:i + batch]})[0]
                              for i in range(0, len(x), batch)])
    else:
        out = sess.run(None, {name: x})[0]
    if out.ndim == 1:  # the model's own predicted labels (sklearn-onnx's first output)
        return [int(p) for p in out]
    return [int(p) for p in out.argmax(axis=1)]


GROUPS = ("torch", "qdq", "brevitas", "sklearn")


def main(groups: list[str]) -> None:
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise SystemExit(f"unknown group(s) {sorted(unknown)}; choose from {GROUPS}")
    groups = groups or list(GROUPS)
    xtr, ytr = digits("train")
    xte, yte = digits("test")
    xte, yte = xte[:SAMPLES], yte[:SAMPLES]
    unit_tr = torch.tensor(xtr / 16.0, dtype=torch.float32)
    labels = torch.tensor(ytr, dtype=torch.long)
    unit_te = (xte / 16.0).astype(np.float32)
    feeds = {  # how each architecture reads a digit: (train tensor, test array, input shape)
        "mlp": (unit_tr, unit_te),
        "cnn": (unit_tr.reshape(-1, 1, 8, 8), unit_te.reshape(-1, 1, 8, 8)),
        "lstm": (unit_tr.reshape(-1, 8, 8), unit_te.reshape(-1, 8, 8)),
        "gru": (unit_tr.reshape(-1, 8, 8), unit_te.reshape(-1, 8, 8)),
        "embedding": (torch.tensor(xtr, dtype=torch.long), xte.astype(np.int64)),
    }
    makers = {"mlp": MLP, "cnn": CNN, "lstm": lambda: Recurrent(nn.LSTM, 48),
              "gru": lambda: Recurrent(nn.GRU, 56), "embedding": Embedding}
    expected_path = HERE / "expected.json"
    expected: dict[str, dict] = json.loads(expected_path.read_text()) if expected_path.exists() else {}

    def record(name: str, x: np.ndarray, codec: str, normalize: str,
               predictions: list[int] | None = None, **extra) -> None:
        """``predictions``: given for models onnxruntime cannot run (QONNX: the torch model's)."""
        path = HERE / f"{name}.onnx"
        if predictions is None:
            predictions = ort_predictions(path, x)
        accuracy = float(np.mean(np.array(predictions) == yte))
        expected[name] = {"codec": codec, "normalize": normalize, "samples": SAMPLES,
                          "input_dtype": str(x.dtype), "accuracy": accuracy,
                          "predictions": predictions, **extra}
        print(f"{name:24s} {path.stat().st_size / 1024:6.1f} KB  accuracy {accuracy:.2f}")

    for arch, make in makers.items() if "torch" in groups else ():
        x_train, x_test = feeds[arch]
        model = train(make(), x_train, labels)
        example = x_train[:2]
        normalize = "none" if arch == "embedding" else "unit"
        for dynamo in (True, False):
            name = f"{arch}_{'dynamo' if dynamo else 'legacy'}"
            export(model, example, HERE / f"{name}.onnx", dynamo=dynamo)
            record(name, x_test, "float32", normalize, exporter="dynamo" if dynamo else "legacy")

        if arch == "mlp":
            export(model, unit_tr[:1], HERE / "mlp_batch1.onnx", dynamo=False, fixed_batch=True)
            record("mlp_batch1", unit_te, "float32", "unit", exporter="legacy", batch=1)

    if "qdq" in groups:
        build_qdq(unit_tr.reshape(-1, 1, 8, 8).numpy())
        record("cnn_qdq", unit_te.reshape(-1, 1, 8, 8), "own", "unit", exporter="quantize_static")

    if "brevitas" in groups:
        torch_predictions = build_brevitas(unit_tr, labels, torch.tensor(unit_te))
        record("brevitas_qcdq4", unit_te, "own", "unit", exporter="brevitas qcdq", batch=1)
        for name in ("brevitas_qonnx4", "brevitas_bipolar"):
            record(name, unit_te, "own", "unit", torch_predictions[name],
                   exporter="brevitas qonnx", batch=1)

    if "sklearn" in groups:
        build_sklearn(unit_tr.numpy(), ytr)
        record("sklearn_mlp", unit_te, "float32", "unit", exporter="skl2onnx")

    expected_path.write_text(json.dumps(dict(sorted(expected.items())), indent=1) + "\n")


def build_sklearn(x: np.ndarray, y: np.ndarray) -> None:
    """A scikit-learn MLPClassifier converted by sklearn-onnx: without ZipMap (outputs
    ``output_label`` int64 [N], then ``output_probability`` float [N, 10]) and with it."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few seconds of training
        model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(x, y)
    example = x[:1].astype(np.float32)
    (HERE / "sklearn_mlp.onnx").write_bytes(
        to_onnx(model, example, options={"zipmap": False}).SerializeToString())
    (HERE / "sklearn_mlp_zipmap.onnx").write_bytes(to_onnx(model, example).SerializeToString())


def build_qdq(x_calib: np.ndarray) -> None:
    """onnxruntime's static quantizer, QDQ format, per channel, on the legacy CNN export."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": x_calib[i:i + 64]} for i in range(0, 256, 64)])

        def get_next(self):
            return next(self.batches, None)

    pre = HERE / "cnn_pre.onnx"
    quant_pre_process(str(HERE / "cnn_legacy.onnx"), str(pre))
    quantize_static(str(pre), str(HERE / "cnn_qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8)
    pre.unlink()


def build_brevitas(x: torch.Tensor, y: torch.Tensor, test: torch.Tensor) -> dict[str, list[int]]:
    """4-bit QuantLinear MLPs exported as QCDQ and QONNX (brevitas's documented exports,
    batch 1), and one with binary weights (QONNX BipolarQuant). Returns the torch models'
    predictions on ``test`` (onnxruntime cannot run QONNX ops)."""
    import brevitas.nn as qnn
    from brevitas.export import export_onnx_qcdq, export_qonnx
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    class QuantMLP(nn.Module):
        def __init__(self, **quant) -> None:
            super().__init__()
            self.fc1 = qnn.QuantLinear(64, 32, bias=True, **quant)
            self.fc2 = qnn.QuantLinear(32, 10, bias=True, **quant)

        def forward(self, v):
            return self.fc2(torch.relu(self.fc1(v)))

    four = train(QuantMLP(weight_bit_width=4), x, y)
    binary = train(QuantMLP(weight_quant=SignedBinaryWeightPerTensorConst), x, y)
    example = x[:1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(four, example, export_path=str(HERE / "brevitas_qcdq4.onnx"),
                         input_names=["input"], output_names=["logits"])
        export_qonnx(four, example, export_path=str(HERE / "brevitas_qonnx4.onnx"),
                     input_names=["input"], output_names=["logits"])
        export_qonnx(binary, example, export_path=str(HERE / "brevitas_bipolar.onnx"),
                     input_names=["input"], output_names=["logits"])
    with torch.no_grad():
        return {"brevitas_qonnx4": four(test).argmax(1).tolist(),
                "brevitas_bipolar": binary(test).argmax(1).tolist()}


if __name__ == "__main__":
    main(sys.argv[1:])
