"""Benchmarks of host.campaign (docs/campaigns.md, docs/benchmarks.md).

1. ``grid``: a whole-model grid campaign (1 codec × R rates × M trials on N images) against
   (number of variants × one clean onnxruntime pass of the original model): wall and process
   CPU time. Target ≤ 1.10×.
2. ``layers``: a per-layer campaign (each layer alone) with the prefix computed once per batch
   vs the whole graph run for every variant: the ratio.
3. ``robustness``: time to R(0.95) by bisection (``host robustness``) vs the fixed grid with
   the same relative resolution over the same range.

Defaults read the workspace's MNIST CNN and test images (seed 000's setting). The machine may
be shared: every timing is the median of ``--repeat`` runs, and CPU time of this process
(``time.process_time``) is printed beside wall time.

    .venv/bin/python bench/bench_campaign.py grid layers robustness
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from host.campaign import RobustnessSettings, SweepSettings, find_robustness, make_spec, read_rows, run_sweep
from host.data import DataSpec, load_dataset
from host.executors.ort import OnnxExecutor
from host.model import load_model

MODEL = "/work/shared/models/qin_mnist_cnn.onnx"
DATA = "/work/shared/data/mnist.npz"


def clean_pass(model: str, data: str, samples: int | None, repeat: int) -> tuple[float, float]:
    """Median (wall s, CPU s) of one onnxruntime pass of the original model over the samples,
    a fresh session each time (as every campaign variant gets)."""
    ws = load_model(model)
    x, _ = load_dataset(data, input_shape=ws.input_shape, samples=samples)
    specs = {t.name: (t.values.shape, t.values.dtype) for t in ws.tensors}
    ex = OnnxExecutor(ws.graph, specs, input_name=ws.input_name, output_name=ws.output_name)
    weights = {t.name: t.values for t in ws.tensors}
    ex.logits(weights, x)  # warm-up: arena, page faults
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        ex.logits(weights, x)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def timed_sweep(spec, **kw) -> tuple[float, float, int]:
    """(wall s, CPU s, rows) of one sweep into a fresh folder."""
    out = Path(tempfile.mkdtemp(prefix="bench_campaign_"))
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        run_sweep(spec, out / "run", progress=False, summary=False, **kw)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        return wall, cpu, len(read_rows(out / "run"))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def bench_grid(a: argparse.Namespace) -> list[str]:
    spec = make_spec(a.model, SweepSettings(codecs=a.codec, rates=a.rates, trials=a.trials,
                                            data=DataSpec(a.data, samples=a.samples), seed=1))
    # the floor is timed before and after every campaign run, so a change of load on this
    # shared machine shows up as a spread instead of biasing the ratio
    floors, runs = [clean_pass(a.model, a.data, a.samples, a.repeat)], []
    for _ in range(a.sweep_repeat):
        runs.append(timed_sweep(spec))
        floors.append(clean_pass(a.model, a.data, a.samples, a.repeat))
    clean_wall = statistics.median(f[0] for f in floors)
    clean_cpu = statistics.median(f[1] for f in floors)
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    variants = runs[0][2] + 1  # + the reference pass of the original model
    spread = (f"{min(f[0] for f in floors):.3f}–{max(f[0] for f in floors):.3f} s wall, "
              f"{min(f[1] for f in floors):.3f}–{max(f[1] for f in floors):.3f} s CPU")
    return [
        f"### Whole-model grid campaign ({Path(a.model).name}, {a.codec}, {len(spec.rates)} rates "
        f"× {a.trials} trials, {spec.samples or 'all'} samples)",
        "",
        "| quantity | value |", "|---|---|",
        f"| one clean pass (median of {a.repeat} before and after each of {a.sweep_repeat} "
        f"campaigns; spread {spread}) | {clean_wall:.3f} s wall, {clean_cpu:.3f} s CPU |",
        f"| variants evaluated (incl. clean row + reference) | {variants} |",
        f"| campaign (median of {a.sweep_repeat}) | {wall:.2f} s wall, {cpu:.2f} s CPU |",
        f"| campaign / (variants × clean pass) | **{wall / (variants * clean_wall):.3f}×** wall, "
        f"**{cpu / (variants * clean_cpu):.3f}×** CPU |",
        "",
    ]


def bench_layers(a: argparse.Namespace) -> list[str]:
    spec = make_spec(a.model, SweepSettings(codecs=a.codec, rates=a.layer_rates,
                                            trials=a.layer_trials, scopes=["layers"],
                                            data=DataSpec(a.data, samples=a.samples), seed=1))
    w1, c1, n = timed_sweep(spec, reuse_prefix=True, prefix_cache_bytes=a.cache_mb << 20)
    w0, c0, _ = timed_sweep(spec, reuse_prefix=False)
    return [
        f"### Per-layer campaign ({len(spec.scopes)} layers × {len(spec.rates)} rates × "
        f"{spec.trials} trials, {spec.samples or 'all'} samples, {n} variants)", "",
        "| run | wall | CPU |", "|---|---|---|",
        f"| whole graph per variant | {w0:.2f} s | {c0:.2f} s |",
        f"| prefix once per batch (cache {a.cache_mb} MiB/process) | {w1:.2f} s | {c1:.2f} s |",
        f"| speed-up | **{w0 / w1:.2f}×** | **{c0 / c1:.2f}×** |", "",
    ]


def bench_robustness(a: argparse.Namespace) -> list[str]:
    w0, c0 = time.perf_counter(), time.process_time()
    r = find_robustness(a.model, RobustnessSettings(
        codec=a.rob_codec, x=0.95, ci=a.ci, data=DataSpec(a.data, samples=a.samples),
        max_trials=a.max_trials, lo=a.lo, hi=a.hi, resolution=a.resolution, seed=1),
        progress=False)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    # robustness runs variants on fractions of the samples: cost per full-set variant
    per_variant = wall / max(r.inferences, 1) * r.samples
    grid_rates = math.ceil(math.log(a.hi / a.lo) / math.log1p(a.resolution)) + 1
    grid_variants = grid_rates * a.grid_trials + 1
    return [
        f"### Time to R(0.95) ({Path(a.model).name}, {a.rob_codec}, bracket {a.lo:g}…{a.hi:g}, "
        f"resolution {a.resolution:.0%}, ±{a.ci} accuracy CI)", "",
        "| method | variants | wall | CPU |", "|---|---|---|---|",
        f"| `host robustness` | {r.variants} | {wall:.1f} s | {cpu:.1f} s |",
        f"| fixed grid with the same resolution ({grid_rates} rates × {a.grid_trials} trials), "
        f"**estimated** at the robustness run's {per_variant:.3f} s per variant (its time per "
        f"sample inference × samples) | "
        f"{grid_variants} | {grid_variants * per_variant:.0f} s | – |",
        f"| ratio | | **{grid_variants * per_variant / wall:.1f}×** sooner | |", "",
        f"R(0.95) = {r.r:.4g} (interval [{r.ci_low:.4g}, {r.ci_high:.4g}], {r.status}, "
        f"{len(r.probes)} probes, {r.inferences} inferences)", "",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("which", nargs="*", default=["grid", "layers", "robustness"],
                   choices=["grid", "layers", "robustness"])
    p.add_argument("--model", default=MODEL)
    p.add_argument("--data", default=DATA)
    p.add_argument("--samples", type=int, default=None, help="default: all (10,000 for MNIST)")
    p.add_argument("--codec", default="fixed8")
    p.add_argument("--rates", default="1e-4:1e-2:6")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5, help="clean passes timed")
    p.add_argument("--sweep-repeat", type=int, default=1, help="campaigns timed")
    p.add_argument("--layer-rates", default="1e-3:1e-2:3")
    p.add_argument("--layer-trials", type=int, default=3)
    p.add_argument("--cache-mb", type=int, default=2048)
    p.add_argument("--rob-codec", default="parity8")
    p.add_argument("--ci", type=float, default=0.005)
    p.add_argument("--max-trials", type=int, default=40)
    p.add_argument("--lo", type=float, default=1e-4)
    p.add_argument("--hi", type=float, default=0.1)
    p.add_argument("--resolution", type=float, default=0.1)
    p.add_argument("--grid-trials", type=int, default=20)
    a = p.parse_args(argv)
    lines = [f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`", ""]
    for name in a.which:
        lines += {"grid": bench_grid, "layers": bench_layers, "robustness": bench_robustness}[name](a)
        print("\n".join(lines), flush=True)
        lines = []
    return 0


if __name__ == "__main__":
    sys.exit(main())
