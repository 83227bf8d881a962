"""Time to the answer (issue 15 item 2): R(0.95) at 10 % resolution with its interval, and
seed 000's full grid, FlipLab against the same work written in torch (and MRFI), each run.

Run it in the benchmarks' own environment (``VENV=.venv-bench bench/peers_env.sh``)::

    nice .venv-bench/bin/python bench/bench_time_to_answer.py

Each tool runs in its own fresh process (``--child TOOL``), one after the other, in the order
given by ``--order`` (repeat rounds with ``--rounds``, interleaved); the parent records the
load average around each child and prints a markdown report with the exact command. Every
time is measured inside the child from the start of its task (model and data loading
included, interpreter imports not): wall (``perf_counter``) and process CPU
(``process_time``, all threads).

The search (the question every tool answers): R(0.95) of the seed 000 MNIST CNN, codec
``fixed8`` (one range per model, seed 000 eq. (1)), BSC on the 8 stored bits of every weight
and bias, the 10,000 MNIST test images, bisection on log p from ``--lo`` to ``--hi`` until
hi/lo <= 1.1, each probe decided at 95 % confidence with a ±``--ci`` indifference zone.

- ``fliplab``: ``host.campaign.find_robustness`` (``host robustness``): sequential stopping over
  trials and samples, the two-stage interval, Bonferroni over a probe's looks
  (host.campaign.sequential).
- ``torch``: the same bisection written in torch as a user would write it, tuned:
  ``torch.set_num_threads(2)``, ``channels_last``, ``torch.inference_mode()``, batches of
  1,000, weights corrupted in place (uint8 codes XOR a Bernoulli mask over the 8 bit planes,
  a ``torch.Generator`` seeded per trial and rate) and restored after each model. Each probe
  adds one trial at a time on the full test set until the Student-t interval of the mean
  (scipy, at the stated confidence) lies on one side of x·A or is narrower than ±ci: the rule
  ``host robustness`` had before sequential stopping over samples (at least 3 trials).
- ``torch-seq``: the torch loop above driven by FlipLab's own stopping rule
  (``host.campaign.sequential.decide``): separates the runtime's share of the speed-up from
  the rule's.
- ``mrfi``: the trials-only search with MRFI 2.1's own API: a weight fault-injection config
  (``EasyConfig``) whose quantisation and error mode are the fixed8 model-range codes and a
  per-bit BSC registered with ``mrfi.add_function``; MRFI re-injects on every forward call,
  so the torch RNG is re-seeded per trial before each batch (the same corrupted model for
  every batch of a trial). MRFI flattens each weight with ``weight.view(-1)``, which fails on
  ``channels_last`` weights, so MRFI runs in torch's default layout.

The grid (``--grid``): seed 000's grid (bench/reproduce.sh: 14 rates 0.001…0.05 × 20 trials,
seed 2018, fixed8, one range per model) with ``host.campaign.run_sweep`` and with the tuned
torch loop (``torch-grid``, ``--torch-grid-trials`` trials per rate: fewer when the machine
is too busy; the report says what was run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MODEL = "/work/shared/models/qin_mnist_cnn.onnx"
DATA = "/work/shared/data/mnist.npz"
GRID_RATES = "0.001,0.002,0.004,0.006,0.008,0.01,0.012,0.015,0.02,0.025,0.03,0.034,0.04,0.05"
TOOLS = ("fliplab", "torch", "torch-seq", "mrfi", "fliplab-grid", "torch-grid")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# the search, shared by the torch and MRFI children (FlipLab's is find_robustness itself)

def bisection(probe: Callable[[float], dict], threshold: float, lo: float, hi: float,
              resolution: float) -> dict:
    """find_robustness's bisection and interval rule over ``probe(rate)`` -> a dict with
    ``mean`` and ``verdict`` (the same steps, so every tool probes the same rates while its
    decisions agree)."""
    probes = []

    def run(rate: float) -> dict:
        p = {"rate": rate, **probe(rate)}
        probes.append(p)
        log(f"  p={rate:.4g}: {p['verdict']} mean={p['mean']:.4f} trials={p['trials']} "
            f"samples={p['samples']}; {len(probes)} probes, "
            f"{sum(q['trials'] for q in probes)} models, CPU {time.process_time():.1f} s")
        return p

    lo0, hi0 = lo, hi
    if run(hi)["mean"] >= threshold:
        status, r = "above_bracket", hi
    elif run(lo)["mean"] < threshold:
        status, r = "below_bracket", 0.0
    else:
        status = "bracketed"
        while hi / lo > 1 + resolution:
            mid = math.sqrt(lo * hi)
            if run(mid)["mean"] >= threshold:
                lo = mid
            else:
                hi = mid
        r = lo
    resolved = [p for p in probes if p["verdict"] != "unresolved"]
    failing = [p["rate"] for p in resolved if p["mean"] < threshold]
    ci_high = min(failing) if failing else (math.inf if status == "above_bracket" else hi0)
    below = [p["rate"] for p in resolved if p["mean"] >= threshold and p["rate"] < ci_high]
    ci_low = max(below) if below else (lo0 if status == "bracketed" else 0.0)
    if status == "bracketed":
        ci_low, ci_high = min(ci_low, r), max(ci_high, hi)
    return {"r": r, "lo": lo, "hi": hi, "ci_low": ci_low, "ci_high": ci_high, "status": status,
            "probes": probes, "models": sum(p["trials"] for p in probes),
            "inferences": sum(p["trials"] * p["samples"] for p in probes)}


def trials_only(model_accuracy: Callable[[int, float], float], threshold: float,
                a: argparse.Namespace) -> Callable[[float], dict]:
    """The per-probe rule a user writes: one trial at a time on the full test set, Student-t
    interval of the mean (host.metrics.mean_ci: scipy.stats.t) at the stated confidence."""
    from host.metrics import mean_ci

    def probe(rate: float) -> dict:
        accs: list[float] = []
        while True:
            accs.append(model_accuracy(len(accs), rate))
            if len(accs) < 3:
                continue
            mean, low, high = mean_ci(accs, a.confidence)
            if low >= threshold:
                v = "above"
            elif high < threshold:
                v = "below"
            elif (high - low) / 2 <= a.ci:
                v = "within"
            else:
                v = "unresolved"
            if v != "unresolved" or len(accs) >= a.max_trials:
                return {"mean": mean, "low": low, "high": high, "verdict": v,
                        "trials": len(accs), "samples": a.samples}
    return probe


# ---------------------------------------------------------------------------------------------
# torch

class TorchCampaign:
    """The tuned torch side: the CNN in channels_last, corrupted in place and restored."""

    def __init__(self, a: argparse.Namespace) -> None:
        import torch
        from bench_torch import ModelRange, torch_model_from_onnx

        from host.data import load_dataset
        from host.model import load_model

        self.torch, self.a = torch, a
        torch.set_num_threads(a.threads)
        ws = load_model(a.model)
        x, y = load_dataset(a.data, input_shape=ws.input_shape, samples=a.samples)
        self.x = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        self.y = torch.from_numpy(y)
        self.model = torch_model_from_onnx(a.model).to(memory_format=torch.channels_last)
        self.qrange = ModelRange.of(self.model)
        self.params = list(self.model.parameters())
        with torch.no_grad():
            self.codes = [self.qrange.quantise(p) for p in self.params]
            self.clean = [self.qrange.dequantise(c) for c in self.codes]
            for p, c in zip(self.params, self.clean):
                p.copy_(c)  # the fixed8 model (FlipLab's decode, checked by bench_torch)
        self.shifts = torch.arange(8, dtype=torch.uint8)
        self.generator = torch.Generator()

    def corrupt(self, seed: int, trial: int, rate: float) -> None:
        torch = self.torch
        self.generator.manual_seed(hash((seed, trial, rate)) & 0x7FFF_FFFF_FFFF)
        with torch.no_grad():
            for p, c in zip(self.params, self.codes):
                planes = torch.bernoulli(torch.full((*c.shape, 8), rate),
                                         generator=self.generator).to(torch.uint8)
                mask = (planes << self.shifts).sum(dim=-1, dtype=torch.uint8)
                p.copy_(self.qrange.dequantise(c ^ mask))

    def restore(self) -> None:
        with self.torch.no_grad():
            for p, c in zip(self.params, self.clean):
                p.copy_(c)

    def correct(self, idx=None) -> int:
        torch = self.torch
        x, y = (self.x, self.y) if idx is None else (self.x[idx], self.y[idx])
        n = 0
        with torch.inference_mode():
            for s in range(0, len(y), self.a.batch_size):
                logits = self.model(x[s:s + self.a.batch_size])
                n += int((logits.argmax(dim=1) == y[s:s + self.a.batch_size]).sum())
        return n

    def accuracy(self, seed: int, trial: int, rate: float) -> float:
        self.corrupt(seed, trial, rate)
        try:
            return self.correct() / len(self.y)
        finally:
            self.restore()


def child_torch(a: argparse.Namespace, sequential: bool) -> dict:
    t = TorchCampaign(a)
    a_ref = t.correct() / len(t.y)
    threshold = 0.95 * a_ref
    if sequential:
        from host.campaign.sequential import SequentialRule, decide, sample_order
        n = len(t.y)
        rule = SequentialRule(n, a.confidence, a.ci, 8, a.max_trials)
        orders = {}

        def probe(rate: float) -> dict:
            def count(trial: int, start: int, stop: int) -> int:
                if trial not in orders:
                    orders[trial] = t.torch.from_numpy(sample_order(a.seed, trial, n))
                t.corrupt(a.seed, trial, rate)
                try:
                    return t.correct(orders[trial][start:stop])
                finally:
                    t.restore()
            d = decide(count, threshold, rule)
            e = d.estimate
            return {"mean": e.mean, "low": e.low, "high": e.high, "verdict": d.verdict,
                    "trials": e.trials, "samples": e.samples}
    else:
        probe = trials_only(lambda trial, rate: t.accuracy(a.seed, trial, rate), threshold, a)
    out = bisection(probe, threshold, a.lo, a.hi, a.resolution)
    return {"reference_accuracy": a_ref, "threshold": threshold, **out}


def child_torch_grid(a: argparse.Namespace) -> dict:
    t = TorchCampaign(a)
    a_ref = t.correct() / len(t.y)
    rates = [float(r) for r in a.grid_rates.split(",")]
    means = {}
    for rate in rates:
        accs = [t.accuracy(a.grid_seed, trial, rate) for trial in range(a.torch_grid_trials)]
        means[rate] = sum(accs) / len(accs)
        log(f"  torch grid p={rate:g}: mean {means[rate]:.4f}")
    from host.metrics import r_at
    r = r_at(means, 0.95, a_ref)
    return {"reference_accuracy": a_ref, "models": len(rates) * a.torch_grid_trials,
            "trials": a.torch_grid_trials, "r": r.rber, "status": r.status, "means": means}


# ---------------------------------------------------------------------------------------------
# MRFI

def child_mrfi(a: argparse.Namespace) -> dict:
    import mrfi
    import torch
    from bench_torch import ModelRange, torch_model_from_onnx

    from host.data import load_dataset
    from host.model import load_model

    torch.set_num_threads(a.threads)
    ws = load_model(a.model)
    x, y = load_dataset(a.data, input_shape=ws.input_shape, samples=a.samples)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = torch_model_from_onnx(a.model)  # MRFI indexes weight.view(-1): no channels_last
    qrange = ModelRange.of(model)
    shifts = torch.arange(8, dtype=torch.uint8)

    class ModelRangeFixed8:  # fixed8, one range per model (seed 000 eq. (1)), in place
        @staticmethod
        def quantize(x):
            x.copy_(qrange.quantise(x).to(x.dtype))

        @staticmethod
        def dequantize(x):
            x.copy_(qrange.dequantise(x.to(torch.uint8)))

    def bsc8(x_in, rate):  # every one of the 8 stored bits flips with probability rate
        codes = x_in.to(torch.uint8)
        planes = torch.bernoulli(torch.full((*codes.shape, 8), rate)).to(torch.uint8)
        return (codes ^ (planes << shifts).sum(dim=-1, dtype=torch.uint8)).to(x_in.dtype)

    mrfi.add_function("ModelRangeFixed8", ModelRangeFixed8)
    mrfi.add_function("BSC8", bsc8)
    config = mrfi.EasyConfig.load_string("""
faultinject:
  - type: weight
    name: [weight, bias]
    quantization:
      method: ModelRangeFixed8
    enabled: True
    error_mode:
      method: BSC8
      rate: 0.001
    module_type: [Conv2d, Linear]
""")
    fi = mrfi.MRFI(model, config)
    weights = fi.get_weights_configs()

    def correct(trial_seed: int | None) -> int:
        n = 0
        for s in range(0, len(y), a.batch_size):
            if trial_seed is not None:
                torch.manual_seed(trial_seed)  # the same corrupted model for every batch
            with torch.inference_mode():
                logits = fi(x[s:s + a.batch_size])
            n += int((logits.argmax(dim=1) == y[s:s + a.batch_size]).sum())
        return n

    with fi.golden_run():
        a_ref = correct(None) / len(y)
    threshold = 0.95 * a_ref

    def accuracy(trial: int, rate: float) -> float:
        weights.error_mode.args.rate = rate
        return correct(hash((a.seed, trial, rate)) & 0x7FFF_FFFF_FFFF) / len(y)

    out = bisection(trials_only(accuracy, threshold, a), threshold, a.lo, a.hi, a.resolution)
    return {"reference_accuracy": a_ref, "threshold": threshold, **out}


# ---------------------------------------------------------------------------------------------
# FlipLab

def child_fliplab(a: argparse.Namespace) -> dict:
    from host.campaign import RobustnessSettings, find_robustness
    from host.data import DataSpec

    r = find_robustness(a.model, RobustnessSettings(
        codec="fixed8", x=0.95, ci=a.ci, data=DataSpec(a.data, samples=a.samples),
        max_trials=a.max_trials, lo=a.lo, hi=a.hi, resolution=a.resolution, seed=a.seed,
        confidence=a.confidence), progress=True)
    return {"reference_accuracy": r.reference_accuracy, "threshold": r.threshold, "r": r.r,
            "lo": r.lo, "hi": r.hi, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "status": r.status, "models": sum(p.trials for p in r.probes),
            "variants": r.variants, "inferences": r.inferences, "reused": r.reused,
            "probes": [{"rate": p.rate, "verdict": p.verdict, "mean": p.mean,
                        "trials": p.trials, "samples": p.samples} for p in r.probes]}


def child_fliplab_grid(a: argparse.Namespace) -> dict:
    from host.campaign import SweepSettings, make_spec, read_rows, run_sweep
    from host.data import DataSpec
    from host.metrics import r_at

    spec = make_spec(a.model, SweepSettings(codecs="fixed8", rates=a.grid_rates,
                                            trials=a.grid_trials,
                                            data=DataSpec(a.data, samples=a.samples),
                                            seed=a.grid_seed))
    out = Path(tempfile.mkdtemp(prefix="tta_grid_"))
    try:
        run_sweep(spec, out / "run", progress=False, summary=False)
        rows = read_rows(out / "run")
        ref = json.loads((out / "run" / "campaign.json").read_text())["reference"]["accuracy"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    means = {r: sum(x["accuracy"] for x in rows if x["rate"] == r) / a.grid_trials
             for r in spec.rates}
    r = r_at(means, 0.95, ref)
    return {"reference_accuracy": ref, "models": len(spec.rates) * a.grid_trials,
            "trials": a.grid_trials, "r": r.rber, "status": r.status, "means": means}


CHILDREN = {"fliplab": child_fliplab, "torch": lambda a: child_torch(a, False),
            "torch-seq": lambda a: child_torch(a, True), "mrfi": child_mrfi,
            "fliplab-grid": child_fliplab_grid, "torch-grid": child_torch_grid}


# ---------------------------------------------------------------------------------------------
# parent

def run_child(tool: str, argv: list[str]) -> dict:
    load0 = os.getloadavg()[0]
    w0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", tool, *argv],
                          stdout=subprocess.PIPE, check=True)
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - w0
    result["load"] = (load0, os.getloadavg()[0])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", choices=TOOLS, help="(internal) run one tool in this process")
    p.add_argument("--order", default="fliplab,torch,torch-seq,mrfi",
                   help="tools to run, in this order, each in its own process")
    p.add_argument("--rounds", type=int, default=1, help="repeat the order this many times")
    p.add_argument("--model", default=MODEL)
    p.add_argument("--data", default=DATA)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--lo", type=float, default=1e-4)
    p.add_argument("--hi", type=float, default=0.1)
    p.add_argument("--resolution", type=float, default=0.1)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--ci", type=float, default=0.005)
    p.add_argument("--max-trials", type=int, default=200, dest="max_trials")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=1000, dest="batch_size")
    p.add_argument("--grid-rates", default=GRID_RATES, dest="grid_rates")
    p.add_argument("--grid-trials", type=int, default=20, dest="grid_trials")
    p.add_argument("--torch-grid-trials", type=int, default=20, dest="torch_grid_trials")
    p.add_argument("--grid-seed", type=int, default=2018, dest="grid_seed")
    p.add_argument("--json", type=Path, help="also write every child's result here")
    a = p.parse_args()
    if a.child:
        sys.path.insert(0, str(Path(__file__).parent))
        w0, c0 = time.perf_counter(), time.process_time()
        result = CHILDREN[a.child](a)
        result.update(tool=a.child, wall=time.perf_counter() - w0,
                      cpu=time.process_time() - c0)
        print(json.dumps(result, default=float))
        return
    argv = [arg for arg in sys.argv[1:]]
    results = []
    for rnd in range(a.rounds):
        for tool in a.order.split(","):
            log(f"round {rnd + 1}: {tool}")
            r = run_child(tool, argv)
            r["round"] = rnd + 1
            results.append(r)
            log(f"  {tool}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, R = {r['r']:.4g}")
            if a.json:
                a.json.write_text(json.dumps(results, indent=1, default=float))
    print(f"Command: `{' '.join(['.venv-bench/bin/python', *sys.argv])}`\n")
    print("| round | tool | R(0.95) | interval | models | sample inferences | wall s | CPU s "
          "| load (1 min) before/after |")
    print("|---:|---|---:|---|---:|---:|---:|---:|---|")
    for r in results:
        interval = (f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]" if "ci_low" in r
                    else f"grid, {r['trials']} trials/rate ({r['status']})")
        infer = r.get("inferences", r["models"] * a.samples)
        print(f"| {r['round']} | {r['tool']} | {r['r']:.4g} | {interval} | {r['models']} | "
              f"{infer:,} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['load'][0]:.1f} / "
              f"{r['load'][1]:.1f} |")


if __name__ == "__main__":
    main()
