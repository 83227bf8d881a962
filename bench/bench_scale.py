"""Scale: a variant's cost and a sweep's memory on large synthetic MLPs; Dask workers (issue 15).

    .venv/bin/python bench/bench_scale.py variant memory dask

1. ``variant``: synthetic MLPs in ONNX (784 inputs, ``--depth`` hidden layers of equal width
   with ReLU, 10 outputs; about ``--params`` parameters each, weights normal / sqrt(fan-in)),
   ``--samples`` random inputs in [0, 1] labelled with the clean model's own top-1 (so the
   clean accuracy is 1). Interleaved ``--repeat`` times in one process: one clean pass (a plain
   onnxruntime session made once, the floor) and one ``run_unit`` of a fixed8 BSC campaign
   (one trial walking ``--rates``; per variant = unit time / rates). Then the same variant
   path taken apart (what ``run_unit`` calls, timed step by step): the nested error pattern,
   ``IncrementalDecoder.flip`` (flip the new bits, re-decode the touched words), the
   session build (``OnnxExecutor.session``: the decoded weights as external initializers) and
   the run. ``--low-memory``: the unit of a ``host sweep --low-memory`` campaign instead
   (in-place walk, weights fed as inputs; no step-by-step part).
2. ``memory``: peak resident memory (``VmHWM``, read by the process itself at exit) of
   ``host sweep`` and ``host sweep --low-memory`` on the ``--memory-params`` MLPs with 2 and
   with 8 rates (one trial; ``--memory-rates``: the rate ranges), against
   the float model's bytes plus one batch of activations (samples × the widest layer × 4
   bytes, input and output), beside the peak of the imports alone.
3. ``dask``: the MNIST CNN of seed 000, a fixed8 campaign, on a Dask ``LocalCluster`` of 1, 2
   and 4 single-threaded worker processes (``host sweep --scheduler``: ``run_sweep(...,
   scheduler=address)``); wall time of the sweep, variants per second and the efficiency per
   worker (throughput / (workers × throughput with one worker)).

Every timing is wall (``perf_counter``) beside process CPU (``process_time``); the 1-minute
load average is printed with each table (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

INPUTS, OUTPUTS = 784, 10
CNN = "/work/shared/models/qin_mnist_cnn.onnx"
MNIST = "/work/shared/data/mnist.npz"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


# ---------------------------------------------------------------------------------------------
# the synthetic model and its data

def width_for(params: float, depth: int) -> int:
    """Hidden width w with 784·w + (depth-1)·w² + 10·w ≈ params (the biases are negligible)."""
    a, b = depth - 1, INPUTS + OUTPUTS
    return int(round((-b + np.sqrt(b * b + 4 * a * params)) / (2 * a)))


def build_mlp(folder: Path, params: float, depth: int, samples: int, seed: int = 0
              ) -> tuple[Path, Path, int, int]:
    """(model.onnx, data.npz, parameter count, width) of a synthetic MLP and its labelled data."""
    width = width_for(params, depth)
    rng = np.random.default_rng(seed)
    sizes = [INPUTS] + [width] * depth + [OUTPUTS]
    nodes, inits, x = [], [], "input"
    count = 0
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        last = i == len(sizes) - 1
        gemm = "logits" if last else f"g{i}"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [gemm],
                                      transB=1, name=f"fc{i}"))
        w = rng.standard_normal((n_out, n_in), dtype=np.float32)
        w *= np.float32(1 / np.sqrt(n_in))
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"),
                  numpy_helper.from_array(np.zeros(n_out, np.float32), f"fc{i}.bias")]
        count += w.size + n_out
        if not last:
            nodes.append(helper.make_node("Relu", [gemm], [f"h{i}"], name=f"relu{i}"))
            x = f"h{i}"
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", INPUTS])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", OUTPUTS])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"mlp_{count // 1_000_000}M.onnx"
    onnx.save(model, str(path))
    xs = rng.random((samples, INPUTS), dtype=np.float32)
    ys = plain_session(path, 2).run(None, {"input": xs})[0].argmax(1)
    data = folder / f"mlp_{count // 1_000_000}M_data.npz"
    np.savez(data, x_test=xs, y_test=ys.astype(np.int64))
    return path, data, count, width


def plain_session(path: Path | str, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------------------------
# 1. per-variant cost

def bench_variant(a: argparse.Namespace, folder: Path) -> list[str]:
    from host.campaign import SweepSettings, Unit, make_spec, reference_run
    from host.campaign.grid import scope_selection
    from host.campaign.worker import CampaignJob, context_for, run_unit
    from host.data import DataSpec
    from host.decode import IncrementalDecoder
    from host.inject import error_pattern

    lines = [f"Command: `{' '.join([os.path.relpath(sys.executable), *sys.argv])}`", "",
             f"Synthetic MLPs (784 → {a.depth} hidden ReLU layers → 10), {a.samples} random "
             f"inputs, fixed8 (one range per model), BSC at {a.rates}, {a.threads} onnxruntime "
             f"threads; onnxruntime {ort.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}.", "",
             "| parameters | width | clean pass wall s | CPU s | variant (`run_unit`) wall s | "
             "CPU s | **variant ÷ clean, CPU** | variant ÷ clean, wall | load |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    parts_lines = ["", "The variant path taken apart (medians, CPU s): "
                   "pattern = the trial's nested error pattern ÷ rates; flip = "
                   "`IncrementalDecoder.flip` (new bits, touched words re-decoded); session = "
                   "`OnnxExecutor.session` with the decoded weights; run = the samples through it.",
                   "", "| parameters | pattern | flip | session | run | clean pass |",
                   "|---:|---:|---:|---:|---:|---:|"]
    for params in a.params:
        log(f"building a {params:g}-parameter MLP")
        model, data, count, width = build_mlp(folder, params, a.depth, a.samples)
        spec = make_spec(model, SweepSettings(codecs="fixed8", rates=a.rates, trials=10_000,
                                              data=DataSpec(str(data)), seed=1))
        _, right = reference_run(spec, a.threads, low_memory=a.low_memory)
        job = CampaignJob(spec, np.packbits(right).tobytes(), threads=a.threads,
                          low_memory=a.low_memory)
        ctx = context_for(job)
        session = plain_session(model, a.threads)
        x = ctx.x
        session.run(None, {"input": x})
        run_unit(job, Unit("fixed8", "model", 9_999))  # warm-up
        clean, variant = [], []
        for trial in range(1, a.repeat + 1):
            t = clock()
            session.run(None, {"input": x})
            clean.append(since(t))
            t = clock()
            rows = run_unit(job, Unit("fixed8", "model", trial))
            w, c = since(t)
            variant.append((w / len(rows), c / len(rows)))
            log(f"{count:,} parameters, trial {trial}: clean {clean[-1][1]:.2f} s CPU, "
                f"variant {variant[-1][1]:.2f} s CPU, load {load()}")
        cw, cc = (statistics.median(v[i] for v in clean) for i in (0, 1))
        vw, vc = (statistics.median(v[i] for v in variant) for i in (0, 1))
        lines.append(f"| {count:,} | {width} | {cw:.3f} | {cc:.3f} | {vw:.3f} | {vc:.3f} | "
                     f"**{vc / cc:.3f}×** | {vw / cw:.3f}× | {load()} |")
        if a.low_memory:
            del ctx, session, job
            model.unlink()
            continue

        # the same path, step by step
        stored = ctx.stored("fixed8")
        steps: dict[str, list[float]] = {"pattern": [], "flip": [], "session": [], "run": [],
                                          "clean": []}
        for trial in range(1, a.repeat + 1):
            t = clock()
            pattern = error_pattern(stored.image, ctx.channel, seed=spec.seed, trial=trial,
                                    rate_max=spec.rates[-1], **scope_selection("model"))
            steps["pattern"].append(since(t)[1] / len(spec.rates))
            decoder = IncrementalDecoder(stored.clean)
            previous = 0.0
            for rate in spec.rates:
                t = clock()
                decoded = decoder.flip(pattern.between(previous, rate))
                previous = rate
                steps["flip"].append(since(t)[1])
                t = clock()
                sess = stored.executor.session(decoded.weights)
                steps["session"].append(since(t)[1])
                t = clock()
                sess.run(None, {"input": x})
                steps["run"].append(since(t)[1])
                del decoded, sess
            t = clock()
            session.run(None, {"input": x})
            steps["clean"].append(since(t)[1])
        m = {k: statistics.median(v) for k, v in steps.items()}
        parts_lines.append(f"| {count:,} | {m['pattern']:.3f} | {m['flip']:.3f} | "
                           f"{m['session']:.3f} | {m['run']:.3f} | {m['clean']:.3f} |")
        del ctx, session, job
        model.unlink()
    return lines if a.low_memory else lines + parts_lines


# ---------------------------------------------------------------------------------------------
# 2. memory of a sweep

#: run ``host.cli.main(argv)`` in a fresh interpreter and print its own peak resident memory
#: (``VmHWM``: the high-water mark of the process's address space, counted from its exec; the
#: ``ru_maxrss`` of a child also counts the parent's pages at the fork, which on this script's
#: process was a few hundred MB)
_PEAK = ("import atexit, sys\n"
         "def peak():\n"
         "    status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
         "    sys.stderr.write('VmHWM ' + status['VmHWM'].split()[0] + '\\n')\n"
         "atexit.register(peak)\n"
         "if sys.argv[1:]:\n"
         "    from host.cli import main\n"
         "    sys.exit(main(sys.argv[1:]))\n"
         "import host.campaign, host.executors.ort, pandas  # the imports alone\n")


def peak_rss_of(argv: list[str]) -> tuple[int, float]:
    """(peak resident bytes, wall s) of ``host ARGV`` run in a fresh process."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _PEAK, *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode:
        raise SystemExit(f"host {' '.join(argv)} failed: {p.stderr}")
    kib = [line.split()[1] for line in p.stderr.splitlines() if line.startswith("VmHWM ")]
    return int(kib[-1]) * 1024, time.perf_counter() - t0


def bench_memory(a: argparse.Namespace, folder: Path) -> list[str]:
    base, _ = peak_rss_of([])
    lines = ["", f"Command: `{' '.join([os.path.relpath(sys.executable), *sys.argv])}`", "",
             f"`host sweep MODEL --codecs fixed8 --rates RATES --trials 1 [--low-memory] --data "
             f"DATA.npz`, {a.samples} samples, load {load()}; peak resident memory of the process "
             f"(VmHWM). The imports alone (host.campaign, onnxruntime, pandas) peak at "
             f"{base / 1e6:.0f} MB; the last column is the peak above them.", "",
             "| parameters | float model MB | one batch of activations MB | mode | rates | "
             "peak MB | ÷ (model + batch) | (peak − imports) ÷ (model + batch) |",
             "|---:|---:|---:|---|---|---:|---:|---:|"]
    for params in a.memory_params:
        model, data, count, width = build_mlp(folder, params, a.depth, a.samples)
        model_mb = count * 4 / 1e6
        batch_mb = a.samples * (max(width, INPUTS) * 2) * 4 / 1e6
        for mode, rates in [(m, r) for m in ("default", "--low-memory")
                            for r in a.memory_rates]:
            out = folder / f"sweep_{count}"
            rss, wall = peak_rss_of(["sweep", str(model), "--codecs", "fixed8", "--rates",
                                     rates, "--trials", "1", "--data", str(data),
                                     "--out", str(out)] + ([mode] if mode != "default" else []))
            shutil.rmtree(out, ignore_errors=True)
            log(f"{count:,} parameters, {mode}, {rates}: peak {rss / 1e6:.0f} MB, {wall:.1f} s")
            lines.append(f"| {count:,} | {model_mb:.0f} | {batch_mb:.1f} | {mode} | {rates} | "
                         f"{rss / 1e6:.0f} | {rss / 1e6 / (model_mb + batch_mb):.2f}× | "
                         f"{(rss - base) / 1e6 / (model_mb + batch_mb):.2f}× |")
        model.unlink()
    return lines


# ---------------------------------------------------------------------------------------------
# 3. Dask

def bench_dask(a: argparse.Namespace, folder: Path) -> list[str]:
    from distributed import LocalCluster

    from host.campaign import SweepSettings, make_spec, read_rows, run_sweep
    from host.data import DataSpec
    spec = make_spec(CNN, SweepSettings(codecs="fixed8", rates="1e-3,1e-2", trials=a.dask_trials,
                                        data=DataSpec(MNIST, samples=a.dask_samples), seed=1))
    variants = len(spec.rates) * spec.trials + 1
    lines = ["", f"Command: `{' '.join([os.path.relpath(sys.executable), *sys.argv])}`", "",
             f"qin_mnist_cnn.onnx, {a.dask_samples} MNIST images, fixed8, BSC 1e-3 and 1e-2 × "
             f"{a.dask_trials} trials ({variants} variants incl. the clean row); a Dask "
             f"`LocalCluster` of N worker processes, 1 thread each (onnxruntime 1 thread per "
             f"session, as `run_sweep` sets for a scheduler); the cluster is started before the "
             f"timing, the workers' per-campaign set-up is inside it; {os.cpu_count()} cores.", "",
             "| workers | sweep wall s | variants / s | speed-up | efficiency per worker | "
             "variants' own time in the workers, s (sum of `elapsed_s`) | load |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    base = None
    for workers in a.dask_workers:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            out = folder / f"dask_{workers}"
            t = clock()
            run_sweep(spec, out, scheduler=cluster.scheduler_address, progress=False,
                      summary=False)
            wall, _ = since(t)
            work = sum(r["elapsed_s"] for r in read_rows(out))
            shutil.rmtree(out, ignore_errors=True)
        rate = variants / wall
        base = base or rate
        log(f"dask {workers} workers: {wall:.1f} s")
        lines.append(f"| {workers} | {wall:.1f} | {rate:.2f} | {rate / base:.2f}× | "
                     f"{rate / base / workers:.0%} | {work:.1f} | {load()} |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("parts", nargs="+", choices=("variant", "memory", "dask"))
    p.add_argument("--params", type=float, nargs="+", default=[1e7, 1e8],
                   help="parameters of the MLPs timed (variant)")
    p.add_argument("--memory-params", type=float, nargs="+", default=[1e7],
                   help="parameters of the MLPs whose sweep memory is measured")
    p.add_argument("--memory-rates", nargs="+",
                   default=["1e-3:1e-2:2", "1e-3:1e-2:8", "1e-4:1e-3:8"],
                   help="rate ranges of the memory part's sweeps")
    p.add_argument("--low-memory", action="store_true",
                   help="variant: time the unit of a --low-memory campaign")
    p.add_argument("--depth", type=int, default=6, help="hidden layers")
    p.add_argument("--samples", type=int, default=1000, help="random inputs")
    p.add_argument("--rates", default="1e-3,1e-2", help="BSC rates of the unit")
    p.add_argument("--repeat", type=int, default=3, help="interleaved clean pass + unit")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    p.add_argument("--dask-workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--dask-trials", type=int, default=8)
    p.add_argument("--dask-samples", type=int, default=2000)
    a = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    lines: list[str] = []
    try:
        if "variant" in a.parts:
            lines += bench_variant(a, folder)
        if "memory" in a.parts:
            lines += bench_memory(a, folder)
        if "dask" in a.parts:
            lines += bench_dask(a, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
