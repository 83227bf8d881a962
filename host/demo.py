"""``host demo`` / ``make demo``: the main job on the embedded default, end to end.

Exports the bundled digits MLP in three codecs, injects binary-symmetric-channel errors at a few
raw bit error rates (several trials each, nested patterns), evaluates every variant from its
image on the embedded digits test split, and prints mean accuracy per codec and rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tabulate import tabulate
from tqdm import tqdm

from host.channels import flip_bits, parse_channel
from host.data import load_dataset
from host.export import CodecPlan, build_image, file_sha256
from host.image import manifest_path_for, write_image
from host.model import load_model
from host.models import resolve_model
from host.run import OnnxExecutor, evaluate_image

DEMO_MODEL = "digits_mlp"
DEMO_CODECS = ("fixed8", "parity8", "float16")
DEMO_RATES = (0.0, 1e-3, 3e-3, 1e-2, 3e-2)
DEMO_TRIALS = 10
DEMO_SEED = 2026


def run_demo(out_dir: Path, *, json_out: bool = False) -> dict:
    """Run the demo, write its images under ``out_dir``, print and return the accuracy table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model(DEMO_MODEL)
    ws = load_model(model_path)
    results: dict[str, dict[str, float]] = {}
    bsc = parse_channel(f"bsc:{max(DEMO_RATES)}")
    x = y = None
    steps = len(DEMO_CODECS) * (1 + (len(DEMO_RATES) - 1) * DEMO_TRIALS)
    with tqdm(total=steps, desc="demo", unit="variant", disable=json_out) as bar:
        for spec in DEMO_CODECS:
            image, _ = build_image(ws, CodecPlan(spec), source=model_path.name,
                                   source_sha256=file_sha256(model_path))
            path = out_dir / f"{DEMO_MODEL}.{spec}.bin"
            write_image(image, path)
            write_image(image, manifest_path_for(path), manifest=True)
            if x is None:
                x, y = load_dataset("digits", input_shape=image.model["input_shape"])
            executor = OnnxExecutor.for_image(image, strategy="inputs")
            row = {"clean": evaluate_image(image, x, y, executor=executor).accuracy}
            bar.update()
            regions = image.regions()
            for rate in DEMO_RATES[1:]:
                accs = []
                for trial in range(DEMO_TRIALS):
                    pattern = bsc.pattern(image.payload, regions, seed=DEMO_SEED, trial=trial)
                    noisy = image.payload.copy()
                    flip_bits(noisy, pattern.at(rate))
                    accs.append(evaluate_image(image.with_payload(noisy), x, y,
                                               executor=executor).accuracy)
                    bar.update()
                row[f"{rate:g}"] = float(np.mean(accs))
            results[spec] = row
    if json_out:
        print(json.dumps({"model": DEMO_MODEL, "trials": DEMO_TRIALS, "seed": DEMO_SEED,
                          "mean_accuracy": results}, indent=2))
    else:
        headers = ["codec", "clean"] + [f"p={r:g}" for r in DEMO_RATES[1:]]
        rows = [[spec] + [f"{v:.4f}" for v in row.values()] for spec, row in results.items()]
        print(f"\nMean accuracy of {DEMO_MODEL} on the embedded digits test split "
              f"({len(y)} images), {DEMO_TRIALS} trials per rate, BSC(p) on the stored bits:\n")
        print(tabulate(rows, headers=headers))
        first = out_dir / f"{DEMO_MODEL}.{DEMO_CODECS[1]}.bin"
        print(f"\nImages are in {out_dir}/. Try: host inspect {first}; "
              f"host inject {first} --channel bsc:1e-2 --seed 7 -o noisy.bin; "
              f"host eval --image noisy.bin --data digits")
    return results
