"""Model cards: measure each shipped model with onnxruntime and write cards.json + README.md.

No torch here. ``measure(path)`` runs a model on the embedded digits test split (unit
normalisation, the input the models were trained on) and returns the numbers of its card;
``write_cards`` merges them into ``cards.json`` (the one place the numbers live; the tests
compare against it) and renders ``README.md`` from it, so the two never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from host.data import load_dataset

MODELS_DIR = Path(__file__).resolve().parent
CARDS_FILE = "cards.json"
README_FILE = "README.md"
TEST_SPEC = "digits:test"


def onnx_io(model: onnx.ModelProto) -> tuple[dict, dict]:
    """(input, output) of a single-input, single-output graph as {"name", "shape"} dicts."""

    def describe(value) -> dict:
        dims = [d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim]
        return {"name": value.name, "shape": dims}

    init_names = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in init_names]
    return describe(inputs[0]), describe(model.graph.output[0])


def accuracy(path: Path, split: str = "test") -> tuple[float, int, int]:
    """(accuracy in [0, 1], correct, total) of the ONNX model at ``path`` on digits ``split``."""
    model = onnx.load(str(path))
    inp, out = onnx_io(model)
    x, y = load_dataset(f"digits:{split}", input_shape=inp["shape"], normalize="unit")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (logits,) = session.run([out["name"]], {inp["name"]: x})
    correct = int(np.sum(np.argmax(logits, axis=1) == y))
    return correct / len(y), correct, len(y)


def measure(path: Path, *, parameters: dict[str, int], architecture: str, command: str,
            seed: int, notes: str) -> dict:
    """The card entry of one model file: I/O, size, parameter counts, measured accuracy."""
    model = onnx.load(str(path))
    inp, out = onnx_io(model)
    acc, correct, total = accuracy(path)
    return {
        "file": path.name,
        "architecture": architecture,
        "input": inp,
        "output": out,
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "bytes": path.stat().st_size,
        "parameters": parameters,
        "dataset": TEST_SPEC,
        "normalize": "unit",
        "test_samples": total,
        "correct": correct,
        "accuracy": acc,
        "seed": seed,
        "train_command": command,
        "notes": notes,
    }


def load_cards(directory: Path = MODELS_DIR) -> dict:
    """The cards.json of ``directory`` ({} when absent)."""
    path = directory / CARDS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_cards(directory: Path, entries: dict[str, dict]) -> None:
    """Merge ``entries`` (model name -> card) into cards.json and re-render README.md."""
    cards = load_cards(directory)
    cards.update(entries)
    cards = dict(sorted(cards.items()))
    text = json.dumps(cards, indent=2, ensure_ascii=False) + "\n"
    (directory / CARDS_FILE).write_text(text, encoding="utf-8")
    (directory / README_FILE).write_text(render_readme(cards), encoding="utf-8")


def format_accuracy(card: dict) -> str:
    """Accuracy as written in README.md, e.g. ``97.33 % (438/450)``."""
    return f"{100 * card['accuracy']:.2f} % ({card['correct']}/{card['test_samples']})"


def _shape(shape: list) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def render_readme(cards: dict) -> str:
    """README.md text: an introduction, then one card section per model in ``cards``."""
    lines = [
        "# Reference models",
        "",
        "Small models trained on the embedded digits (scikit-learn's 8 x 8 handwritten digits,",
        "`host/data/digits.npz`: stratified 75/25 split, random_state=0; 1,347 train / 450 test",
        "images). Every model takes float32 input in [0, 1] (`unit` normalisation: pixel / 16)",
        "named `input` and returns `logits` [batch, 10]. Accuracy is measured with onnxruntime on",
        "the 450 test images by `models/train.py`, which writes it to `models/cards.json`;",
        "this file is generated from that JSON (do not edit it by hand: re-run the training).",
        "",
        "Re-train everything (CPU, about a minute; torch is only needed here):",
        "",
        "```",
        ".venv/bin/pip install -e .[train]",
        ".venv/bin/python models/train.py all",
        "```",
        "",
        "Seeds are fixed (torch, numpy, one thread, deterministic algorithms), so re-training",
        "reproduces the same weights and accuracy up to float noise.",
        "",
    ]
    for name, card in cards.items():
        params = ", ".join(f"{k}: {v:,}" for k, v in card["parameters"].items())
        lines += [
            f"## {name}",
            "",
            f"- file: `models/{card['file']}` ({card['bytes']:,} bytes, opset {card['opset']})",
            f"- architecture: {card['architecture']}",
            f"- input: `{card['input']['name']}` {_shape(card['input']['shape'])} float32 in [0, 1];"
            f" output: `{card['output']['name']}` {_shape(card['output']['shape'])}",
            f"- parameters: {params}",
            f"- clean accuracy on {card['dataset']} (onnxruntime): {format_accuracy(card)}",
            f"- seed: {card['seed']}",
            f"- re-train: `{card['train_command']}`",
            "",
            card["notes"],
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
