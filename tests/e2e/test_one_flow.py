"""`host eval` and a campaign take one path: the same (seed, trial, rate) gives the same row.

For every backend that is installed here, a `host sweep` row and `host inject` + `host eval` of
the same seed, trial and rate must agree on accuracy, flips and nulled weights; the commands run
as a user runs them (real processes), so the check covers the CLI, the image files and the
campaign's incremental decoding.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEED, RATE = 5, 0.02

BACKENDS = [
    # backend, model, codec, export options, samples (the simulation is slow: few samples)
    ("onnxruntime", "digits_cnn", "parity8", (), 40),
    ("reference", "models/digits_mlp_int8.onnx", "parity(int8)", ("--lower", "accel"), 40),
    pytest.param("rtl", "models/digits_mlp_int8.onnx", "parity(int8)", ("--lower", "accel"), 6,
                 marks=pytest.mark.skipif(shutil.which("iverilog") is None,
                                          reason="needs Icarus Verilog: apt-get install iverilog")),
]


def host(*args, cwd):
    p = subprocess.run([sys.executable, "-m", "host", *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("backend, model, codec, export, samples", BACKENDS)
def test_eval_and_campaign_rows_agree(tmp_path, backend, model, codec, export, samples):
    root = Path(__file__).resolve().parents[2]
    model = str(root / model) if model.startswith("models/") else model
    trials = 1 if backend == "rtl" else 2
    host("sweep", model, "--codecs", codec, "--rates", repr(RATE), "--trials", trials,
         "--samples", samples, "--seed", SEED, "--backend", backend, "--out", "run", "--json",
         cwd=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    host("export", model, "--codec", codec, *export, "-o", "w.bin", cwd=tmp_path)
    for trial in range(trials):
        [row] = [r for r in rows if r["trial"] == trial and r["rate"] == RATE]
        injected = json.loads(host("inject", "w.bin", "--channel", f"bsc:{RATE!r}", "--seed", SEED,
                                   "--trial", trial, "-o", f"noisy{trial}.bin", "--json",
                                   cwd=tmp_path))
        ev = json.loads(host("eval", "--image", f"noisy{trial}.bin", "--samples", samples,
                             "--backend", backend, "--json", cwd=tmp_path))
        assert (ev["accuracy"], ev["correct"], injected["flips"], ev["nulled"]) == \
            (row["accuracy"], row["correct"], row["flips"], row["nulled"]), (trial, ev, row)
        assert row["flips"] > 0 and ev["backend"] == backend
    [clean] = [r for r in rows if r["rate"] == 0.0]
    ev = json.loads(host("eval", "--image", "w.bin", "--samples", samples, "--backend", backend,
                         "--json", cwd=tmp_path))
    assert (ev["accuracy"], ev["nulled"]) == (clean["accuracy"], clean["nulled"])
