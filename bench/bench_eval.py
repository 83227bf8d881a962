"""Cost of evaluating one corrupted variant vs the clean-inference floor (issue 2 benchmark).

The floor is one onnxruntime pass of the original model over the same images (session created
and warmed up beforehand). A variant's time covers everything a campaign pays per trial: the
nested error pattern, the noisy payload, decoding every weight, building the executor's session
(strategy "session") and the inference pass. Both strategies of the onnxruntime executor are measured in the
same run; medians over the variants of wall time and of process CPU time (all threads; far
less disturbed by other load on a shared machine) are reported, with their ratios to the floor.

    .venv/bin/python bench/bench_eval.py                       # MNIST CNN, 10,000 MNIST images
    .venv/bin/python bench/bench_eval.py --model models/digits_cnn.onnx --data digits
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import onnxruntime as ort

from host.channels import flip_bits, parse_channel
from host.data import load_dataset
from host.decode import decode_weights
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_image
from host.model import load_model

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHARED / "models" / "qin_mnist_cnn.onnx"))
    ap.add_argument("--data", default=str(SHARED / "data" / "mnist.npz"))
    ap.add_argument("--codec", default="fixed8")
    ap.add_argument("--rate", type=float, default=1e-3)
    ap.add_argument("--variants", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    image, _ = build_image(load_model(args.model), CodecPlan(args.codec))
    x, y = load_dataset(args.data, input_shape=image.model["input_shape"])
    plain = ort.SessionOptions()  # the floor: a plain session, as a user would run the model
    plain.intra_op_num_threads, plain.inter_op_num_threads = args.threads, 1
    floor_sess = ort.InferenceSession(args.model, plain, providers=["CPUExecutionProvider"])
    in_name = floor_sess.get_inputs()[0].name
    floor_sess.run(None, {in_name: x[:64]})
    channel, regions = parse_channel(f"bsc:{args.rate}"), image.regions()

    def variant(executor: OnnxExecutor, trial: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        noisy = image.payload.copy()
        flip_bits(noisy, channel.pattern(image.payload, regions, seed=1, trial=trial).at(args.rate))
        weights = decode_weights(image.with_payload(noisy)).weights
        acc = (executor.logits(weights, x).argmax(1) == y).mean()
        assert 0 <= acc <= 1
        return time.perf_counter() - t0, time.process_time() - c0

    executors = {s: OnnxExecutor.for_image(image, strategy=s, threads=args.threads)
                 for s in ("session", "inputs")}
    times: dict[str, list[tuple[float, float]]] = {"floor": [], "session": [], "inputs": []}
    for trial in range(args.variants):  # interleaved, so machine noise hits all alike
        t0, c0 = time.perf_counter(), time.process_time()
        floor_sess.run(None, {in_name: x})
        times["floor"].append((time.perf_counter() - t0, time.process_time() - c0))
        for name, ex in executors.items():
            times[name].append(variant(ex, trial))
    wall0 = statistics.median(t[0] for t in times["floor"])
    cpu0 = statistics.median(t[1] for t in times["floor"])
    print(f"model {Path(args.model).name}, {len(x)} samples, codec {args.codec}, "
          f"BSC({args.rate}), {args.variants} variants, {args.threads} threads\n")
    print("| what | median wall s | ratio | median CPU s | ratio |\n|---|---|---|---|---|")
    for name in ("floor", "session", "inputs"):
        wall = statistics.median(t[0] for t in times[name])
        cpu = statistics.median(t[1] for t in times[name])
        print(f"| {name} | {wall:.3f} | {wall / wall0:.3f} | {cpu:.3f} | {cpu / cpu0:.3f} |")


if __name__ == "__main__":
    main()
