"""A tiny synthetic run folder shared by the host.report tests (no model runs).

The synthetic run's accuracies are chosen so that its R(x) values are known by hand; the
report must print those and the same values as host.metrics.r_at on the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

A = 0.95        # reference accuracy; 0.99·A = 0.9405, 0.95·A = 0.9025
N = 100         # samples per trial
RATES = [1e-3, 1e-2, 1e-1]


# accuracy of each trial; the clean row (rate 0) is one trial
#   fixed8:  means 0.95 | 0.94 | 0.75 | 0.10 -> R(0.99) = 0 (1e-3 fails 0.9405), R(0.95) = 1e-3
#   parity8: means 0.95 | 0.95 | 0.94 | 0.50 -> R(0.99) = 1e-3,              R(0.95) = 1e-2
#   float16: means 0.96 | 0.96 | 0.96 | 0.95 -> R(0.99) = R(0.95) = 0.1, above the grid
TRIALS = {
    "fixed8": {0.0: [0.95], 1e-3: [0.95, 0.94, 0.93], 1e-2: [0.80, 0.70, 0.75],
               1e-1: [0.10, 0.10, 0.10]},
    "parity8": {0.0: [0.95], 1e-3: [0.95, 0.95, 0.95], 1e-2: [0.94, 0.95, 0.93],
                1e-1: [0.50, 0.60, 0.40]},
    "float16": {0.0: [0.96], 1e-3: [0.96, 0.96, 0.96], 1e-2: [0.96, 0.95, 0.97],
                1e-1: [0.95, 0.95, 0.95]},
}
BITS = {"fixed8": 8.0, "parity8": 8.0, "float16": 16.0}
LAYERS = {"conv1": 2000, "fc1": 50000}  # stored bits per layer, for the flip counts


def result_rows(layers: bool = False) -> list[dict]:
    rows = []
    scopes = ["model"] + ([f"layer:{name}" for name in LAYERS] if layers else [])
    for codec, curve in TRIALS.items():
        for scope in scopes:
            layer_bits = LAYERS.get(scope.removeprefix("layer:"), 60000)
            for rate, accs in curve.items():
                for trial, acc in enumerate(accs):
                    correct = round(acc * N)
                    rows.append({
                        "model": "tiny", "model_sha256": "0" * 64, "codec": codec,
                        "bits_per_weight": BITS[codec], "channel": "bsc", "rate": rate,
                        "trial": trial, "scope": scope, "seed": 11, "samples": N,
                        "correct": correct, "accuracy": correct / N,
                        "failures": max(0, round(A * N) - correct),
                        "flips": round(rate * layer_bits), "nulled": 0, "corrected": 0,
                        "elapsed_s": 0.01,
                    })
    return rows


def make_run(path: Path, rows: list[dict] | None = None, *, layers: bool = False,
             trials: int = 3, campaign: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rows = result_rows(layers) if rows is None else rows
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # as host sweep writes it: the grid nested under "grid"
    definition = {
        "model": "tiny", "model_sha256": "0" * 64,
        "reference": {"accuracy": A, "correct": round(A * N), "samples": N},
        "grid": {"codecs": list(TRIALS), "channel": "bsc", "rates": RATES, "trials": trials,
                 "scopes": ["model"] + ([f"layer:{n}" for n in LAYERS] if layers else [])},
        "seed": 11, "data": "synthetic",
    }
    (path / "campaign.json").write_text(json.dumps(definition if campaign is None else campaign))
    return path
