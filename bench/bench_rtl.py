"""RTL accelerator benchmark (issue 4): cycles per inference against the lane bound, and the
speed of the Icarus simulation under cocotb.

For each digits model lowered for the accelerator (``host export --lower accel``, parity
codecs), N test images run through ``rtl/accel_top.v`` (host.sim.simulate). Reported:

- cycles per inference (accel_top's cycle counter, start to done) and the lane bound
  MACs / LANES, with their ratio (target <= 1.25);
- simulated cycles per second: the inferences' cycles over the wall time of the simulator's
  inference loop (per-sample input writes and output reads included; build and memory
  loading excluded), and the wall time per simulated inference on that basis;
- the whole run's wall time (memory loading included, build excluded).

    .venv/bin/python bench/bench_rtl.py                 # 50 samples per model, LANES = 8
    .venv/bin/python bench/bench_rtl.py --samples 100 --lanes 16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from host.data import load_dataset
from host.export import CodecPlan, build_accel_image
from host.hw.program import input_activations, run_program
from host.model import load_model
from host.sim import AccelConfig, simulate

MODELS = Path(__file__).resolve().parents[1] / "models"
CASES = (("digits_mlp_int8", "parity(int8)"), ("digits_bnn", "parity(sign)"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--word-bits", type=int, default=128)
    args = ap.parse_args()
    config = AccelConfig(lanes=args.lanes, word_bits=args.word_bits)
    rows = []
    for model, codec in CASES:
        image, _ = build_accel_image(load_model(MODELS / f"{model}.onnx"), CodecPlan(codec))
        x, _ = load_dataset("digits", input_shape=image.model["input_shape"], normalize="unit",
                            samples=args.samples)
        a = input_activations(image.program, x)
        with tempfile.TemporaryDirectory(prefix="fliplab-bench-rtl-") as tmp:
            r = simulate(image, a, config=config, build_dir=Path(tmp))
        exact = bool((r.outputs == run_program(image.program, image.payload, a).outputs).all())
        macs = sum(int(l["n_in"]) * int(l["n_out"]) for l in image.program["layers"])
        bound = macs / config.lanes
        cycles = float(r.cycles.mean())
        rows.append((model, codec, macs, bound, cycles, cycles / bound,
                     float(r.cycles.sum()) / r.run_seconds, 1e3 * r.run_seconds / len(a),
                     r.wall_seconds, exact))
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}` "
          f"(LANES = {config.lanes}, RAM words of {config.word_bits} bits, "
          f"{args.samples} samples per model, Icarus Verilog + cocotb)\n")
    print("| model | codec | MACs | lane bound (cycles) | cycles / inference | ratio | "
          "simulated cycles/s | ms / simulated inference | run wall (s) | bit-exact |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m, c, macs, bound, cyc, ratio, cps, ms, wall, exact in rows:
        print(f"| {m} | {c} | {macs} | {bound:.0f} | {cyc:.0f} | {ratio:.3f} | {cps:,.0f} | "
              f"{ms:.1f} | {wall:.1f} | {'yes' if exact else 'NO'} |")


if __name__ == "__main__":
    main()
