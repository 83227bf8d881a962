"""Noisy accuracy of onnxruntime's QDQ CNN (tests/models/cnn_qdq.onnx) with its int32 biases
unprotected or under parity: the numbers of docs/models.md ("Codec defaults for integer codes").

    .venv/bin/python bench/bench_bias_protection.py [--trials 20]

The embedded digits test split (450 images), bsc at 1e-3 and 1e-2, trials 0..N-1 of seed 0;
median and minimum accuracy over the trials. Runs through the variant path (inject, decode,
onnxruntime executor).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from host.channels import parse_channel
from host.data import DataSpec
from host.evaluate import evaluate_image
from host.export import CodecPlan, build_image
from host.inject import inject
from host.model import load_model

MODEL = Path(__file__).resolve().parents[1] / "tests" / "models" / "cnn_qdq.onnx"
PLANS = {
    "int8 weights, int32 biases": CodecPlan("int8"),
    "parity(int8) weights, int32 biases": CodecPlan("parity(int8)", (("*bias*", "int32"),)),
    "parity(int8) weights, parity(int16) biases": CodecPlan("parity(int8)", (("*bias*", "parity(int16)"),)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    ws = load_model(MODEL)
    x, y = DataSpec("digits", "unit").load(ws.input_shape)
    print("| codecs | clean | bsc:1e-3 median (min) | bsc:1e-2 median (min) |\n|---|---|---|---|")
    for label, plan in PLANS.items():
        image, _ = build_image(ws, plan)
        cells = [f"{evaluate_image(image, x, y).accuracy:.3f}"]
        for rate in ("1e-3", "1e-2"):
            channel = parse_channel(f"bsc:{rate}")
            accuracies = [evaluate_image(inject(image, channel, seed=0, trial=t)[0], x, y).accuracy
                          for t in range(args.trials)]
            cells.append(f"{np.median(accuracies):.3f} ({min(accuracies):.3f})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
