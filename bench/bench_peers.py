"""FlipLab against its real peers, measured: the same campaign written in each tool (issue 15).

Run it in the benchmarks' own environment (``VENV=.venv-bench bench/peers_env.sh`` builds it:
torch 2.13.0, MRFI 2.1.0, PyTorchFI 0.6.0, FlipLab)::

    .venv-bench/bin/python bench/bench_peers.py --trials 5 --rounds 3

The campaign: seed 000's MNIST CNN, the 10,000 MNIST test images, its weights and biases stored
as ``fixed8`` (seed 000 eq. (1), one range per model: Δ = (w_max − w_min)/255, nearest level),
a binary symmetric channel on the 8 stored bits at ``--rates`` (1e-3 and 1e-2), one corrupted
model per (rate, trial), each evaluated on every image; 2 threads per tool.

Each tool runs in **its own process** (a long-lived worker fed over a pipe), written with its
own API, as its users would:

- ``fliplab``: :func:`host.campaign.run_unit`, the unit of ``host sweep`` (one trial walking
  both rates: nested error pattern, incremental decode, one onnxruntime session per variant);
- ``mrfi``: MRFI 2.1 with a weight fault-injection config on every Conv2d and Linear
  (``name: [weight, bias]``); FlipLab's fixed8 is a custom MRFI quantisation (eq. (1) in
  float64) and the BSC a custom MRFI error mode (a Bernoulli mask over the 8 bit planes), both
  registered with ``mrfi.add_function``, MRFI's extension point. MRFI re-injects the weights
  on every forward call (each batch would see a different corrupted model), so the injection
  is made by one forward of one image, then disabled while the model is evaluated;
- ``pytorchfi``: PyTorchFI 0.6 ``fault_injection(..., layer_types=[Conv2d, Linear])`` and
  ``declare_weight_fi(function=...)`` with one declared location per flipped bit (the
  function flips that bit of the weight's fixed8 code). PyTorchFI reaches weights only:
  **biases are stored in fixed8 but never corrupted** (0.14 % of this model's parameters);
- ``torch``: the plain loop of bench/bench_torch.py (``copy.deepcopy``, quantise every
  parameter, XOR a ``torch.bernoulli`` mask over the 8 bit planes, dequantise, evaluate);
- ``torch-cl``: the same loop with the model and the images in ``torch.channels_last``.

The torch tools emulate fixed8 in float32: the stored value of code c is w_min + Δ·c, computed
in float64 and rounded to float32 (what FlipLab's decoder gives, checked below).

The floor: ``ort-floor`` (a plain onnxruntime session of the original model, 2 threads) and
``torch-floor`` (a clean torch pass, default layout), each in its own process too. One step =
one trial: the floor's clean pass, FlipLab's unit, the torch floor's clean pass, then each
torch tool's variants of that trial; ``--trials`` steps per round, ``--rounds`` rounds, the
tools in the same order every step (so load changes hit every tool alike). Wall
(``perf_counter``) and process CPU (``process_time``, all threads) are measured inside each
worker around the work only; the 1-minute load average is recorded at every step.

Checks: torch's clean accuracy equals onnxruntime's; the torch tools' clean quantised weights
equal FlipLab's fixed8 decode; every tool's mean accuracy per rate agrees with FlipLab's within
3 standard errors of the difference (the flips differ: each tool draws its own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
MODEL = "/work/shared/models/qin_mnist_cnn.onnx"
DATA = "/work/shared/data/mnist.npz"
TOOLS = ("ort-floor", "fliplab", "torch-floor", "mrfi", "pytorchfi", "torch", "torch-cl")
FLOORS = ("ort-floor", "torch-floor")
CODEC = "fixed8"


# ---------------------------------------------------------------------------------------------
# workers: one per tool, each in its own process

class Worker(ABC):
    """A tool's side: ``setup()`` once, then ``step(trial)`` -> one result per variant."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a

    @abstractmethod
    def step(self, trial: int) -> list[dict]:
        """One trial of this tool: a result row per rate (one row for a floor)."""


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> dict:
    return {"wall": time.perf_counter() - t[0], "cpu": time.process_time() - t[1]}


class OrtFloor(Worker):
    """A plain onnxruntime session of the original float model: one clean pass per step."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        import onnxruntime as ort

        from host.data import load_dataset
        from host.model import load_model
        ws = load_model(a.model)
        self.x, self.y = load_dataset(a.data, input_shape=ws.input_shape, samples=a.samples)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = a.threads, 1
        self.session = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
        self.feed = ws.input_name
        self.step(0)  # warm-up: arena, page faults

    def step(self, trial: int) -> list[dict]:
        t = _clock()
        logits = self.session.run(None, {self.feed: self.x})[0]
        acc = float((logits.argmax(1) == self.y).mean())
        return [{"rate": 0.0, "accuracy": acc, **_since(t)}]


class FlipLab(Worker):
    """``host sweep``'s unit: one trial walking every rate (run_unit)."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        from host.campaign import SweepSettings, make_spec, reference_run
        from host.campaign.worker import CampaignJob, context_for
        from host.data import DataSpec
        self.spec = make_spec(a.model, SweepSettings(codecs=CODEC, rates=a.rates, trials=10**6,
                                                     data=DataSpec(a.data, samples=a.samples),
                                                     seed=a.seed))
        _, right = reference_run(self.spec, a.threads)
        self.job = CampaignJob(self.spec, np.packbits(right).tobytes(), threads=a.threads)
        context_for(self.job)  # built once per campaign, as in a sweep
        self.step(10**6 - 1)  # warm-up

    def step(self, trial: int) -> list[dict]:
        from host.campaign import Unit
        from host.campaign.worker import run_unit
        t = _clock()
        rows = run_unit(self.job, Unit(CODEC, "model", trial + 1))  # trial 0 adds a clean row
        spent = _since(t)
        return [{"rate": r["rate"], "accuracy": r["accuracy"], "wall": spent["wall"] / len(rows),
                 "cpu": spent["cpu"] / len(rows)} for r in rows]


class TorchWorker(Worker):
    """Shared by the torch tools: the module, the data, fixed8's range, evaluation."""

    channels_last = False

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        import torch
        from bench_torch import ModelRange, torch_model_from_onnx

        from host.data import load_dataset
        from host.model import load_model
        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
        self.torch = torch
        ws = load_model(a.model)
        x, y = load_dataset(a.data, input_shape=ws.input_shape, samples=a.samples)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.model = torch_model_from_onnx(a.model)
        self.qrange = ModelRange.of(self.model)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.rates = [float(r) for r in a.rates.split(",")]

    def generator(self, trial: int, rate_index: int):
        g = self.torch.Generator()
        g.manual_seed((self.a.seed * 1_000_003 + trial) * 101 + rate_index)
        return g

    def accuracy(self, model) -> float:
        from bench_torch import torch_accuracy
        return torch_accuracy(model, self.x, self.y, self.a.batch_size)

    def quantised(self):
        """A copy of the model whose parameters hold their clean fixed8 values."""
        import copy
        m = copy.deepcopy(self.model)
        with self.torch.no_grad():
            for p in m.parameters():
                p.copy_(self.qrange.dequantise(self.qrange.quantise(p)))
        return m



class InjectingTorchWorker(TorchWorker):
    """A torch tool that corrupts the model: one variant per rate and trial."""

    def step(self, trial: int) -> list[dict]:
        out = []
        for i, rate in enumerate(self.rates):
            t = _clock()
            acc = self.variant(rate, self.generator(trial, i))
            out.append({"rate": rate, "accuracy": acc, **_since(t)})
        return out

    @abstractmethod
    def variant(self, rate: float, generator) -> float:
        """Accuracy of one corrupted model at ``rate``, its flips drawn from ``generator``."""


class TorchFloor(TorchWorker):
    """A clean torch pass (default layout) per step."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        from host.campaign import SweepSettings, make_spec, reference_run
        from host.data import DataSpec
        ref, _ = reference_run(make_spec(a.model, SweepSettings(
            codecs=CODEC, rates=a.rates, trials=1, data=DataSpec(a.data, samples=a.samples))))
        clean = self.accuracy(self.model)
        if round(clean * len(self.y)) != ref["correct"]:
            raise SystemExit(f"torch clean accuracy {clean:.4%} != onnxruntime's "
                             f"{ref['accuracy']:.4%}: the torch module is not the ONNX model")
        self.step(0)

    def step(self, trial: int) -> list[dict]:
        t = _clock()
        acc = self.accuracy(self.model)
        return [{"rate": 0.0, "accuracy": acc, **_since(t)}]


class PlainTorch(InjectingTorchWorker):
    """deepcopy + quantise + Bernoulli mask over the bit planes + dequantise, then evaluate."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        self.check_quantiser()
        self.step(10**6)

    def check_quantiser(self) -> None:
        from bench_torch import check_quantiser
        diff = check_quantiser(self.a, self.model, self.qrange)
        if diff >= 0.5:
            raise SystemExit(f"torch fixed8 weights differ from FlipLab's by {diff:.3f} Δ")

    def variant(self, rate: float, generator) -> float:
        from bench_torch import corrupted_copy
        return self.accuracy(corrupted_copy(self.model, self.qrange, rate, generator))


class ChannelsLast(PlainTorch):
    channels_last = True


class Mrfi(InjectingTorchWorker):
    """MRFI 2.1: a weight FI config on every Conv2d and Linear, weights and biases."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        import mrfi
        torch, q = self.torch, self.qrange

        class ModelRangeFixed8:
            """FlipLab's fixed8 (seed 000 eq. (1), one range per model), in place, float64."""

            @staticmethod
            def quantize(x, w_min: float, delta: float) -> None:
                x.copy_(torch.clamp(torch.round((x.double() - w_min) / delta), 0, 255))

            @staticmethod
            def dequantize(x, w_min: float, delta: float) -> None:
                x.copy_((w_min + delta * x.double()).float())

        def bsc_bit_flip(x, bit_width: int, rate: float):
            """Every one of the ``bit_width`` stored bits flips with probability ``rate``."""
            planes = torch.bernoulli(torch.full((*x.shape, bit_width), float(rate)),
                                     generator=self.current_generator).to(torch.int32)
            mask = (planes << torch.arange(bit_width, dtype=torch.int32)).sum(-1)
            return (x.int() ^ mask).to(x.dtype)

        mrfi.add_function("ModelRangeFixed8", ModelRangeFixed8)
        mrfi.add_function("BscBitFlip", bsc_bit_flip)
        config = mrfi.EasyConfig.load_string(f"""
faultinject:
  - type: weight
    name: [weight, bias]
    quantization:
      method: ModelRangeFixed8
      w_min: {q.w_min!r}
      delta: {q.delta!r}
    enabled: True
    error_mode:
      method: BscBitFlip
      bit_width: 8
      rate: 0.0
    module_type: [Conv2d, Linear]
""")
        self.fi_model = mrfi.MRFI(self.model, config)
        self.current_generator = None
        self.step(10**6)

    def _set(self, **values) -> None:
        for weight_id in (0, 1):  # weight, bias
            for key, value in values.items():
                if key == "enabled":
                    setattr(self.fi_model.get_weights_configs(weight_id=weight_id), key, value)
                else:
                    setattr(self.fi_model.get_weights_configs("error_mode.args",
                                                              weight_id=weight_id), key, value)

    def variant(self, rate: float, generator) -> float:
        self.current_generator = generator
        self._set(rate=rate, enabled=True)
        self.fi_model(self.x[:1])  # MRFI injects in each layer's forward pre-hook
        self._set(enabled=False)  # keep this corrupted model for every batch
        return self.accuracy(self.fi_model)


class PyTorchFi(InjectingTorchWorker):
    """PyTorchFI 0.6: declare_weight_fi with one location per flipped bit (weights only)."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        from pytorchfi.core import fault_injection
        torch = self.torch
        self.clean = self.quantised()  # biases stay clean fixed8: PyTorchFI cannot reach them
        self.pfi = fault_injection(self.clean, a.batch_size, input_shape=[1, 28, 28],
                                   layer_types=[torch.nn.Conv2d, torch.nn.Linear],
                                   use_cuda=False)
        self.shapes = [tuple(s) for s in self.pfi.weights_size]
        self.step(10**6)

    def variant(self, rate: float, generator) -> float:
        torch, q = self.torch, self.qrange
        locations: dict[str, list] = {"layer_num": [], "k": [], "dim1": [], "dim2": [],
                                      "dim3": []}
        bits: list[int] = []
        for layer, shape in enumerate(self.shapes):
            n = int(np.prod(shape))
            flat = torch.nonzero(torch.bernoulli(torch.full((n * 8,), rate),
                                                 generator=generator)).flatten().tolist()
            for f in flat:
                index = np.unravel_index(f // 8, shape)
                locations["layer_num"].append(layer)
                for key, i in zip(("k", "dim1", "dim2", "dim3"), range(4)):
                    locations[key].append(int(index[i]) if i < len(index) else None)
                bits.append(f % 8)
        order = iter(bits)  # declare_weight_fi calls the function in declaration order

        def flip(weight, index):
            code = int(q.quantise(weight[index]).flatten()[0]) ^ (1 << next(order))
            return q.dequantise(torch.tensor(code, dtype=torch.uint8))

        model = self.pfi.declare_weight_fi(function=flip, **locations)
        return self.accuracy(model)


WORKERS = {"ort-floor": OrtFloor, "fliplab": FlipLab, "torch-floor": TorchFloor,
           "mrfi": Mrfi, "pytorchfi": PyTorchFi, "torch": PlainTorch, "torch-cl": ChannelsLast}


def serve(a: argparse.Namespace) -> None:
    """Worker process: build the tool, then answer one JSON line per trial read on stdin."""
    sys.path.insert(0, str(BENCH))
    worker = WORKERS[a.worker](a)
    print(json.dumps({"ready": a.worker}), flush=True)
    for line in sys.stdin:
        print(json.dumps(worker.step(int(line))), flush=True)


# ---------------------------------------------------------------------------------------------
# the driver

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def start(a: argparse.Namespace, tool: str) -> subprocess.Popen:
    argv = [sys.executable, __file__, "--worker", tool, "--model", a.model, "--data", a.data,
            "--rates", a.rates, "--seed", str(a.seed), "--threads", str(a.threads),
            "--batch-size", str(a.batch_size)]
    if a.samples:
        argv += ["--samples", str(a.samples)]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return p


def ask(p: subprocess.Popen, trial: int) -> list[dict]:
    p.stdin.write(f"{trial}\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def drive(a: argparse.Namespace) -> dict:
    results: dict[str, list[dict]] = {t: [] for t in a.tools}
    loads = []
    procs = {}
    for tool in a.tools:  # one at a time: set-up is not timed, but must not overlap the steps
        log(f"starting {tool}")
        procs[tool] = start(a, tool)
        ready = procs[tool].stdout.readline()
        if not ready:
            raise SystemExit(f"worker {tool} failed to start")
    try:
        for rnd in range(a.rounds):
            for i in range(a.trials):
                trial = rnd * a.trials + i
                loads.append(os.getloadavg()[0])
                for tool in a.tools:
                    for r in ask(procs[tool], trial):
                        results[tool].append({**r, "trial": trial, "round": rnd})
                log(f"round {rnd} trial {trial}: load {loads[-1]:.2f}; " + ", ".join(
                    f"{t} {sum(r['cpu'] for r in results[t] if r['trial'] == trial):.2f}"
                    for t in a.tools))
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    return {"results": results, "loads": loads}


def report(a: argparse.Namespace, run: dict) -> list[str]:
    import onnxruntime as ort
    import torch
    res, loads = run["results"], run["loads"]
    med = {t: (statistics.median(r["wall"] for r in rs), statistics.median(r["cpu"] for r in rs))
           for t, rs in res.items()}
    rates = [float(r) for r in a.rates.split(",")]
    floor_ort, floor_torch = med.get("ort-floor"), med.get("torch-floor")
    lines = [
        f"Command: `{' '.join([os.path.relpath(sys.executable), *sys.argv])}`",
        "",
        f"{Path(a.model).name}, {a.samples or 'all'} images of {Path(a.data).name}, {CODEC} "
        f"(one range per model), BSC at {', '.join(f'{r:g}' for r in rates)}, {a.trials} trials "
        f"× {a.rounds} rounds = {a.trials * a.rounds} corrupted models per rate per tool, "
        f"{a.threads} threads each; torch {torch.__version__}, onnxruntime {ort.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; 1-min load average during the run "
        f"{min(loads):.1f}–{max(loads):.1f} (median {statistics.median(loads):.1f}) on "
        f"{os.cpu_count()} cores.",
        "",
        "| tool (own process) | what it runs | per model: wall s | CPU s | CPU ÷ onnxruntime "
        "clean pass | wall ÷ onnxruntime clean pass | CPU ÷ torch clean pass |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    what = {"ort-floor": "clean pass, plain onnxruntime session (floor)",
            "fliplab": "`run_unit` (`host sweep`'s unit), per variant",
            "torch-floor": "clean pass, torch (floor of the torch tools)",
            "mrfi": "MRFI 2.1 weight FI (weights + biases)",
            "pytorchfi": "PyTorchFI 0.6 `declare_weight_fi` (weights only)",
            "torch": "plain torch loop", "torch-cl": "plain torch loop, `channels_last`"}
    for t in a.tools:
        w, c = med[t]
        lines.append(
            f"| {t} | {what[t]} | {w:.3f} | {c:.3f} | "
            f"{c / floor_ort[1]:.2f}× | {w / floor_ort[0]:.2f}× | "
            f"{c / floor_torch[1]:.2f}× |" if floor_ort and floor_torch else
            f"| {t} | {what[t]} | {w:.3f} | {c:.3f} | | | |")
    lines += ["", "| rate | " + " | ".join(t for t in a.tools if t not in FLOORS) +
              " |", "|---:|" + "---:|" * len([t for t in a.tools if t not in FLOORS])]
    agree = []
    for rate in rates:
        cells = []
        ours = [r["accuracy"] for r in res.get("fliplab", []) if r["rate"] == rate]
        for t in a.tools:
            if t in FLOORS:
                continue
            accs = [r["accuracy"] for r in res[t] if r["rate"] == rate]
            mean, se = float(np.mean(accs)), float(np.std(accs, ddof=1) / np.sqrt(len(accs)))
            cells.append(f"{mean:.4f} ± {se:.4f}")
            if ours and t != "fliplab":
                se_ours = float(np.std(ours, ddof=1) / np.sqrt(len(ours)))
                z = (mean - float(np.mean(ours))) / max(np.hypot(se, se_ours), 1e-12)
                agree.append((t, rate, z))
        lines.append(f"| {rate:g} | " + " | ".join(cells) + " |")
    bad = [f"{t} at {r:g} (z = {z:.1f})" for t, r, z in agree if abs(z) > 3]
    lines += ["", "Mean accuracy ± its standard error over the corrupted models. Agreement with "
              "FlipLab (|difference| ≤ 3 standard errors of the difference): " +
              ("every tool at every rate." if not bad else "**fails** for " + ", ".join(bad))]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default=MODEL, help="ONNX file of seed 000's MNIST CNN")
    p.add_argument("--data", default=DATA, help="MNIST .npz (test split)")
    p.add_argument("--samples", type=int, default=None, help="first N test images (default all)")
    p.add_argument("--rates", default="0.001,0.01", help="BSC rates, comma-separated")
    p.add_argument("--trials", type=int, default=5, help="corrupted models per rate per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds (>= 3)")
    p.add_argument("--seed", type=int, default=1, help="campaign seed")
    p.add_argument("--threads", type=int, default=2, help="threads per tool")
    p.add_argument("--batch-size", type=int, default=1000, help="torch tools' evaluation batch")
    p.add_argument("--tools", default=",".join(TOOLS), help="tools, in step order")
    p.add_argument("--json", help="also write the raw timings here")
    p.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        serve(a)
        return 0
    a.tools = tuple(a.tools.split(","))
    run = drive(a)
    if a.json:
        Path(a.json).write_text(json.dumps(run))
    print("\n".join(report(a, run)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
