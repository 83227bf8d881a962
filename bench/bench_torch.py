"""FlipLab's campaigns vs the same campaigns written with PyTorch (issue 3 benchmarks).

The peer comparison proper is bench/bench_peers.py (issue 15): each tool in its own process,
MRFI and PyTorchFI beside the plain torch loop, with and without ``channels_last``, interleaved
with the floor. That script imports the torch module, the fixed8 quantiser and the corrupting
loop from here; part 1 below (both runtimes in one process, default layout) stays only as the
source of part 2's per-model time.

Run it in the benchmark's own environment, which holds torch (never the project's ``.venv``)::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0      # the CPU wheel on disk; no other version
    .venv-bench/bin/pip install -e .
    .venv-bench/bin/python bench/bench_torch.py    # MNIST CNN, 10,000 test images, ~10 min

What it measures (docs/benchmarks.md):

1. **Whole-model grid campaign**: ``--rates`` × ``--trials`` distorted models of the MNIST CNN of
   seed 000, codec ``fixed8`` with one range per model (seed 000 eq. (1):
   Δ = (w_max − w_min)/(2^8 − 1), nearest level), a binary symmetric channel on the 8 stored
   bits of every weight and bias, each model evaluated on every sample.

   - *ours*: ``host.campaign.run_sweep`` (the ``host sweep`` machinery: nested patterns, a
     table-gather decode of the touched tensors, one onnxruntime session per variant, results
     written to disk), timed end to end, and unit by unit (``run_unit``: one trial walking all
     rates) interleaved with the PyTorch trials;
   - *PyTorch*: what a user of a PyTorchFI-style library writes — the CNN as a ``torch.nn``
     module loaded from the ONNX initializers, and per trial and rate ``copy.deepcopy(model)``;
     for each parameter: quantise to uint8 codes (eq. (1), the model-wide range), XOR a
     ``torch.bernoulli`` mask over the 8 bit planes (a ``torch.Generator`` seeded per trial),
     dequantise, write back; evaluate in batches of ``--batch-size`` (1,000, the PyTorch MNIST
     example's test batch; sliced from one tensor, no DataLoader overhead) under
     ``torch.inference_mode()``, with ``torch.set_num_threads(--threads)``. Deliberately not
     optimised beyond that.

   Reported: median wall and process CPU time per distorted model (interleaved, so machine
   load hits both alike), the whole campaigns' times, and their ratios.
2. **Time to R(0.95)**: ``host.campaign.find_robustness`` (``host robustness``, bisection on
   log p to a relative resolution ``--resolution``) timed end to end, against the fixed-grid
   PyTorch campaign that gives R(0.95) at the same resolution over the same bracket: rates
   spaced by the factor (1 + resolution) from ``--lo`` to ``--hi`` (the bisection's own stopping
   rule, hi/lo ≤ 1 + resolution), ``--grid-trials`` trials each (20: issue 3 asks ≥ 20 trials
   per rate for seed 000's experiment), plus the clean model; by default 74 rates × 20 + 1.
   That grid is not run: its time is **computed** as (its number of variants) × (the median
   PyTorch time per distorted model measured in part 1).

Checks (the script stops if one fails): the PyTorch module's clean accuracy equals
onnxruntime's on the same samples, and its quantised weights equal the decode of FlipLab's
``fixed8`` image (same codes, same Δ). Every number printed is computed here; the output is a
markdown report with the exact command.

Process CPU time (``time.process_time``, all threads) is the steadier figure on a shared
machine; both runtimes share this process, so their idle thread pools may spin briefly into
each other's intervals.
"""

from __future__ import annotations

import argparse
import copy
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from host.campaign import (
    CampaignJob,
    RobustnessSettings,
    SweepSettings,
    Unit,
    find_robustness,
    make_spec,
    read_rows,
    reference_run,
    run_sweep,
    run_unit,
)
from host.campaign.worker import context_for
from host.data import DataSpec, load_dataset
from host.decode import decode_weights
from host.export import CodecPlan, build_image
from host.metrics import r_at
from host.model import load_model

MODEL = "/work/shared/models/qin_mnist_cnn.onnx"
DATA = "/work/shared/data/mnist.npz"
CODEC = "fixed8"
LEVELS = 2 ** 8
#: stored bits per weight of fixed8: the bit planes the PyTorch loop corrupts
BIT_PLANES = 8


# ---------------------------------------------------------------------------------------------
# timing

@dataclass
class Timer:
    """Wall (``perf_counter``) and process CPU (``process_time``, all threads) seconds."""

    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    """``with timed() as t: ...`` fills ``t.wall`` and ``t.cpu`` (seconds) on exit."""
    t = Timer()
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        yield t
    finally:
        t.wall, t.cpu = time.perf_counter() - w0, time.process_time() - c0


def median_of(timers: list[Timer]) -> Timer:
    """Median wall and median CPU time (taken separately) of several timings."""
    return Timer(statistics.median(t.wall for t in timers),
                 statistics.median(t.cpu for t in timers))


def log(message: str) -> None:
    """Progress on stderr (the report goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# the PyTorch side: what a user of a PyTorch fault-injection library writes

class QinMnistCnn(nn.Module):
    """Seed 000's MNIST CNN (Table I), parameter names as the ONNX initializers'.

    Input float32 [N, 1, 28, 28] in [0, 1]; output logits [N, 10].
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 32, 3)
        self.conv3 = nn.Conv2d(32, 64, 3)
        self.conv4 = nn.Conv2d(64, 64, 3)
        self.fc1 = nn.Linear(1024, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        x = nn.functional.max_pool2d(x, 2)
        x = torch.relu(self.conv4(torch.relu(self.conv3(x))))
        x = nn.functional.max_pool2d(x, 2)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def torch_model_from_onnx(path: str) -> nn.Module:
    """The CNN with the ONNX file's float32 initializers as its parameters (eval mode)."""
    model = QinMnistCnn()
    names = set(model.state_dict())
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(path).graph.initializer if i.name in names}
    model.load_state_dict(weights, strict=True)  # raises on a missing or misshaped tensor
    return model.eval()


@dataclass(frozen=True)
class ModelRange:
    """Seed 000 eq. (1) with one range per model: levels w_min + Δ·i, i = 0 … 255."""

    w_min: float
    delta: float

    @classmethod
    def of(cls, model: nn.Module) -> ModelRange:
        """The range of every parameter of ``model`` (weights and biases)."""
        with torch.no_grad():
            lo = min(float(p.min()) for p in model.parameters())
            hi = max(float(p.max()) for p in model.parameters())
        return cls(lo, (hi - lo) / (LEVELS - 1))

    def quantise(self, w: torch.Tensor) -> torch.Tensor:
        """uint8 code of the nearest level of each weight (computed in float64, as eq. (1))."""
        level = torch.round((w.to(torch.float64) - self.w_min) / self.delta)
        return torch.clamp(level, 0, LEVELS - 1).to(torch.uint8)

    def dequantise(self, codes: torch.Tensor) -> torch.Tensor:
        """float32 weight of each code."""
        return (self.w_min + self.delta * codes.to(torch.float64)).to(torch.float32)


def corrupted_copy(model: nn.Module, qrange: ModelRange, rate: float,
                   generator: torch.Generator) -> nn.Module:
    """A deep copy of ``model`` whose parameters went through fixed8 storage with BSC(rate).

    Every one of the 8 stored bits of every parameter flips independently with probability
    ``rate`` (a Bernoulli mask per bit plane, XORed into the codes).
    """
    noisy = copy.deepcopy(model)
    shifts = torch.arange(BIT_PLANES, dtype=torch.uint8)
    with torch.no_grad():
        for param in noisy.parameters():
            codes = qrange.quantise(param)
            planes = torch.bernoulli(torch.full((*codes.shape, BIT_PLANES), rate),
                                     generator=generator).to(torch.uint8)
            mask = (planes << shifts).sum(dim=-1, dtype=torch.uint8)
            param.copy_(qrange.dequantise(codes ^ mask))
    return noisy


def torch_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Top-1 accuracy of ``model`` on (x, y), evaluated in batches."""
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size])
            correct += int((logits.argmax(dim=1) == y[start:start + batch_size]).sum())
    return correct / len(x)


# ---------------------------------------------------------------------------------------------
# the benchmark

@dataclass
class GridTimes:
    """Part 1's measurements."""

    rates: tuple[float, ...]
    reference: dict
    torch_clean_accuracy: float
    max_weight_diff_over_delta: float
    ort_clean: Timer
    torch_clean: Timer
    sweep_total: Timer
    sweep_variants: int
    sweep_means: dict[float, float]
    torch_setup: Timer
    ours_units: list[tuple[Timer, int]] = field(default_factory=list)  # (time, variants)
    torch_variants: list[Timer] = field(default_factory=list)
    torch_accuracies: dict[float, list[float]] = field(default_factory=dict)

    def ours_per_variant(self) -> list[Timer]:
        """Each interleaved unit's time split evenly over its variants."""
        return [Timer(t.wall / n, t.cpu / n) for t, n in self.ours_units]

    def torch_total(self) -> Timer:
        """The PyTorch campaign: model build + clean pass + every distorted model."""
        parts = [self.torch_setup, self.torch_clean, *self.torch_variants]
        return Timer(sum(t.wall for t in parts), sum(t.cpu for t in parts))


def plain_session(model: str, threads: int) -> ort.InferenceSession:
    """A plain onnxruntime session of the original model, as a user would run it."""
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def check_quantiser(a: argparse.Namespace, model: nn.Module, qrange: ModelRange) -> float:
    """max |w_torch − w_fliplab| / Δ over the clean quantised weights (< 0.5: the same codes)."""
    image, _ = build_image(load_model(a.model), CodecPlan(CODEC))
    ours = decode_weights(image).weights
    worst = 0.0
    with torch.no_grad():
        for name, param in model.named_parameters():
            theirs = qrange.dequantise(qrange.quantise(param)).numpy()
            worst = max(worst, float(np.max(np.abs(theirs.astype(np.float64) - ours[name]))))
    return worst / qrange.delta


def bench_grid(a: argparse.Namespace) -> GridTimes:
    """Part 1: checks, then ours end to end, then ours and PyTorch interleaved per trial."""
    torch.set_num_threads(a.threads)
    spec = make_spec(a.model, SweepSettings(codecs=CODEC, rates=a.rates, trials=a.trials,
                                            data=DataSpec(a.data, samples=a.samples),
                                            seed=a.seed))
    ws = load_model(a.model)
    x_np, y_np = load_dataset(a.data, input_shape=ws.input_shape, samples=a.samples)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

    log(f"checks: clean accuracy (onnxruntime vs torch), quantiser; {len(y)} samples")
    reference, right = reference_run(spec)
    with timed() as setup:  # the PyTorch user's campaign starts here
        model = torch_model_from_onnx(a.model)
        qrange = ModelRange.of(model)
    session = plain_session(a.model, a.threads)
    session.run(None, {ws.input_name: x_np})  # warm-up: the first full passes of a process
    torch_accuracy(model, x, y, a.batch_size)  # grow arenas and fault pages in (2-4x slower)
    ort_times, torch_times = [], []
    for _ in range(a.repeat):  # clean passes, interleaved
        with timed() as t:
            session.run(None, {ws.input_name: x_np})
        ort_times.append(t)
        with timed() as t:
            clean_acc = torch_accuracy(model, x, y, a.batch_size)
        torch_times.append(t)
    del session
    if round(clean_acc * len(y)) != reference["correct"]:
        raise SystemExit(f"torch clean accuracy {clean_acc:.4%} != onnxruntime's "
                         f"{reference['accuracy']:.4%}: the torch module is not the ONNX model")
    diff = check_quantiser(a, model, qrange)
    if diff >= 0.5:
        raise SystemExit(f"torch fixed8 weights differ from FlipLab's by {diff:.3f} Δ")

    log(f"ours: run_sweep, {len(spec.rates)} rates × {spec.trials} trials")
    out = Path(tempfile.mkdtemp(prefix="bench_torch_"))
    try:
        with timed() as sweep_total:
            run_sweep(spec, out / "run", progress=False, summary=False)
        rows = read_rows(out / "run")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    sweep_means = {r: float(np.mean([row["accuracy"] for row in rows if row["rate"] == r]))
                   for r in spec.rates}

    g = GridTimes(spec.rates, reference, clean_acc, diff, median_of(ort_times),
                  median_of(torch_times), sweep_total, len(rows) + 1, sweep_means, setup,
                  torch_accuracies={r: [] for r in spec.rates})

    job = CampaignJob(spec, np.packbits(right).tobytes())  # as run_sweep builds it
    context_for(job)  # built once per campaign, outside the per-unit timings
    for trial in range(spec.trials):
        unit = Unit(CODEC, "model", trial)
        with timed() as t:
            n = len(run_unit(job, unit))
        g.ours_units.append((t, n))
        generator = torch.Generator()
        generator.manual_seed(a.seed * 1_000_003 + trial)  # seeded per trial
        for rate in spec.rates:
            with timed() as t:
                noisy = corrupted_copy(model, qrange, rate, generator)
                acc = torch_accuracy(noisy, x, y, a.batch_size)
            g.torch_variants.append(t)
            g.torch_accuracies[rate].append(acc)
        log(f"trial {trial}: ours {g.ours_units[-1][0].wall:.1f} s ({n} variants), "
            f"torch {sum(v.wall for v in g.torch_variants[-len(spec.rates):]):.1f} s "
            f"({len(spec.rates)} variants)")
    return g


@dataclass
class RobustnessTimes:
    """Part 2's measurements."""

    result: object
    time: Timer
    grid_rates: int
    grid_variants: int


def grid_rate_count(lo: float, hi: float, resolution: float) -> int:
    """Rates of a log grid from lo to hi whose neighbours differ by at most (1 + resolution)."""
    return math.ceil(math.log(hi / lo) / math.log1p(resolution) - 1e-9) + 1


def bench_robustness(a: argparse.Namespace) -> RobustnessTimes:
    """Part 2: ``find_robustness`` end to end; the PyTorch grid's size."""
    log(f"ours: find_robustness x=0.95, bracket {a.lo:g}…{a.hi:g}, resolution {a.resolution:.0%}")
    with timed() as t:
        r = find_robustness(a.model, RobustnessSettings(
            codec=CODEC, x=0.95, ci=a.ci, data=DataSpec(a.data, samples=a.samples),
            max_trials=a.max_trials, lo=a.lo, hi=a.hi, resolution=a.resolution, seed=a.seed),
            progress=False)
    rates = grid_rate_count(a.lo, a.hi, a.resolution)
    return RobustnessTimes(r, t, rates, rates * a.grid_trials + 1)


# ---------------------------------------------------------------------------------------------
# report

def grid_r95(means: dict[float, float], reference_accuracy: float) -> str:
    """Seed 000's R(0.95) on a grid's mean curve, as text (``host.metrics.r_at``)."""
    r = r_at(means, 0.95, reference_accuracy)
    return f"{r.rber:.3g} ({r.status.replace('_', ' ')})"


def report(a: argparse.Namespace, g: GridTimes, rob: RobustnessTimes | None) -> list[str]:
    n = len(g.torch_variants)
    ours_v, torch_v = median_of(g.ours_per_variant()), median_of(g.torch_variants)
    torch_total = g.torch_total()
    a_ref = g.reference["accuracy"]
    torch_means = {r: float(np.mean(v)) for r, v in g.torch_accuracies.items()}
    lines = [
        f"Command: `{' '.join([sys.executable.replace(str(Path.cwd()) + '/', ''), *sys.argv])}`",
        "",
        f"Model {Path(a.model).name}, {g.reference['samples']} samples of {Path(a.data).name}, "
        f"codec {CODEC} (one range per model), BSC on the 8 stored bits of every weight and bias; "
        f"torch {torch.__version__} with {a.threads} threads (batch {a.batch_size}), "
        f"onnxruntime {ort.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}.",
        "",
        f"Checks: clean accuracy torch {g.torch_clean_accuracy:.2%} = onnxruntime "
        f"{a_ref:.2%}; torch's quantised weights = FlipLab's {CODEC} decode "
        f"(max difference {g.max_weight_diff_over_delta:.2g} Δ).",
        "",
        f"### Whole-model grid campaign: {len(g.rates)} rates ({g.rates[0]:g}…{g.rates[-1]:g}) "
        f"× {a.trials} trials",
        "",
        "| what | wall s | CPU s |",
        "|---|---:|---:|",
        f"| one clean pass, plain onnxruntime session (median of {a.repeat}, interleaved) | "
        f"{g.ort_clean.wall:.3f} | {g.ort_clean.cpu:.3f} |",
        f"| one clean pass, torch (median of {a.repeat}, interleaved) | {g.torch_clean.wall:.3f} | "
        f"{g.torch_clean.cpu:.3f} |",
        f"| per distorted model, ours (`run_unit`, median of {len(g.ours_units)} units, "
        f"interleaved) | {ours_v.wall:.3f} | {ours_v.cpu:.3f} |",
        f"| per distorted model, PyTorch (deepcopy + corrupt + evaluate, median of {n}, "
        f"interleaved) | {torch_v.wall:.3f} | {torch_v.cpu:.3f} |",
        f"| **ratio per distorted model, PyTorch / ours** | **{torch_v.wall / ours_v.wall:.2f}×** "
        f"| **{torch_v.cpu / ours_v.cpu:.2f}×** |",
        f"| whole campaign, ours (`run_sweep` end to end, {g.sweep_variants} variants incl. "
        f"clean row and reference) | {g.sweep_total.wall:.1f} | {g.sweep_total.cpu:.1f} |",
        f"| whole campaign, PyTorch (model build + clean pass + {n} distorted models) | "
        f"{torch_total.wall:.1f} | {torch_total.cpu:.1f} |",
        f"| **ratio whole campaign, PyTorch / ours** | "
        f"**{torch_total.wall / g.sweep_total.wall:.2f}×** | "
        f"**{torch_total.cpu / g.sweep_total.cpu:.2f}×** |",
        "",
        "| rate | mean accuracy, ours | mean accuracy, PyTorch |",
        "|---:|---:|---:|",
        *[f"| {r:g} | {g.sweep_means[r]:.4f} | {torch_means[r]:.4f} |" for r in g.rates],
        f"| grid R(0.95) | {grid_r95(g.sweep_means, a_ref)} | "
        f"{grid_r95(torch_means, a_ref)} |",
        "",
    ]
    if rob is None:
        return lines
    r = rob.result
    grid = Timer(rob.grid_variants * torch_v.wall, rob.grid_variants * torch_v.cpu)
    lines += [
        f"### Time to R(0.95) at {a.resolution:.0%} relative resolution (bracket "
        f"{a.lo:g}…{a.hi:g}, {CODEC})",
        "",
        "| method | models evaluated (incl. clean) | wall s | CPU s |",
        "|---|---:|---:|---:|",
        f"| `host robustness` (`find_robustness`, ±{a.ci} accuracy CI, ≤ {a.max_trials} trials "
        f"per probe), measured | {r.variants + 1} | {rob.time.wall:.1f} | {rob.time.cpu:.1f} |",
        f"| PyTorch fixed grid: {rob.grid_rates} rates (factor {1 + a.resolution:g} apart) × "
        f"{a.grid_trials} trials + clean, **computed** as variants × the measured median "
        f"{torch_v.wall:.3f} s wall / {torch_v.cpu:.3f} s CPU per distorted model | "
        f"{rob.grid_variants} | {grid.wall:.0f} | {grid.cpu:.0f} |",
        f"| **ratio, PyTorch grid / `host robustness`** | | "
        f"**{grid.wall / rob.time.wall:.1f}×** | **{grid.cpu / rob.time.cpu:.1f}×** |",
        "",
        f"R(0.95) = {r.r:.4g}, interval [{r.ci_low:.4g}, {r.ci_high:.4g}] ({r.status}, "
        f"{len(r.probes)} probes, {r.unresolved} unresolved, {r.inferences} sample inferences "
        f"incl. the reference pass).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default=MODEL, help="ONNX file of seed 000's MNIST CNN")
    p.add_argument("--data", default=DATA, help="dataset spec (host.data), default MNIST .npz")
    p.add_argument("--samples", type=int, default=None, help="first N test samples (default: all)")
    p.add_argument("--rates", default="1e-4:1e-2:6", help="grid rates, lo:hi:n or a list")
    p.add_argument("--trials", type=int, default=10, help="grid trials per rate")
    p.add_argument("--seed", type=int, default=1, help="campaign seed (both sides)")
    p.add_argument("--threads", type=int, default=2, help="torch / plain onnxruntime threads")
    p.add_argument("--batch-size", type=int, default=1000, help="torch evaluation batch")
    p.add_argument("--repeat", type=int, default=3, help="clean passes timed")
    p.add_argument("--no-robustness", action="store_true", help="skip part 2")
    p.add_argument("--ci", type=float, default=0.005, help="robustness: accuracy half-width")
    p.add_argument("--max-trials", type=int, default=40, help="robustness: trials per probe")
    p.add_argument("--lo", type=float, default=1e-4, help="bracket low rate (both methods)")
    p.add_argument("--hi", type=float, default=0.1, help="bracket high rate (both methods)")
    p.add_argument("--resolution", type=float, default=0.1, help="relative resolution of R")
    p.add_argument("--grid-trials", type=int, default=20,
                   help="trials per rate of the fixed grid (issue 3: >= 20)")
    a = p.parse_args(argv)
    g = bench_grid(a)
    rob = None if a.no_robustness else bench_robustness(a)
    print("\n".join(report(a, g, rob)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
