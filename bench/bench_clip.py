"""Cost of the clipped ReLU in onnxruntime: clipped vs unclipped model, side by side (issue 10).

Forms of ``f(r) = r if r <= T else 0`` after each ReLU ``r`` of the model:

- ``fused``: ``c = Clip(r, 0, T+)`` (fused into the convolution by onnxruntime), then
  ``c + Clip(DepthwiseConv1x1(c; -2^24, 2^24 T), -T+, 0)`` (``host.mitigation.clip``'s default:
  +inf gives 0, NaN stays NaN; no NCHWc reorder around the clip);
- ``where``: ``Where(LessOrEqual(r, T), r, 0)`` (``host clip --form where``: +inf and NaN give 0);
- ``mul``: ``Mul(r, Cast(LessOrEqual(r, T)))`` (+inf gives NaN);
- ``thresholded``: ``Sub(r, ThresholdedRelu(r, alpha=T))`` (+inf gives NaN).

Every form is a session created and warmed up beforehand; the passes over the same images are
interleaved (one of each per round) so that load on the shared machine hits them alike.
Reported: median wall and process-CPU time per pass over the rounds, and their ratios to the
unclipped model.

    nice -n 10 .venv/bin/python bench/bench_clip.py                   # MNIST CNN, 10,000 images
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from host.data import load_dataset
from host.mitigation.clip import CLIP_SUFFIX, clip_activations, profile_act_max

SHARED = Path(__file__).resolve().parents[2] / "shared"


def other_form(clipped: onnx.ModelProto, kind: str) -> onnx.ModelProto:
    """``clipped`` (the Where form) with each clip rebuilt as ``kind``: "mul" or
    "thresholded" (same outputs on finite activations)."""
    m = onnx.ModelProto()
    m.CopyFrom(clipped)
    g = m.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    le = {n.output[0]: n for n in g.node if n.op_type == "LessOrEqual"}
    nodes = []
    for node in g.node:
        if node.op_type == "LessOrEqual" and node.name.endswith("/LessOrEqual"):
            continue
        if node.name.endswith(CLIP_SUFFIX):
            cmp = le[node.input[0]]
            r, out = node.input[1], node.output[0]
            if kind == "mul":
                keep = out + "/keep"
                nodes += [cmp, helper.make_node("Cast", [cmp.output[0]], [keep],
                                                to=onnx.TensorProto.FLOAT),
                          helper.make_node("Mul", [r, keep], [out])]
            else:
                above = out + "/above_T"
                nodes += [helper.make_node("ThresholdedRelu", [r], [above],
                                           alpha=float(consts[cmp.input[1]])),
                          helper.make_node("Sub", [r, above], [out])]
            continue
        nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHARED / "models" / "qin_mnist_cnn.onnx"))
    ap.add_argument("--data", default=str(SHARED / "data" / "mnist.npz"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=8192, help="samples per run (campaigns: 8192)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    model = onnx.load(args.model)
    in_shape = [d.dim_value or "N" for d in model.graph.input[0].type.tensor_type.shape.dim]
    x, _ = load_dataset(args.data, input_shape=in_shape)
    x = x[:args.batch]
    act_max = profile_act_max(model, x[:1000])
    clipped = clip_activations(model, act_max, form="where")
    forms = {"unclipped": model, "fused (ours)": clip_activations(model, act_max, form="fused"),
             "where": clipped, "mul": other_form(clipped, "mul"),
             "thresholded": other_form(clipped, "thresholded")}
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    so.log_severity_level = 3
    sessions = {k: ort.InferenceSession(m.SerializeToString(), so,
                                        providers=["CPUExecutionProvider"])
                for k, m in forms.items()}
    feed = model.graph.input[0].name
    outs = {k: s.run(None, {feed: x})[0] for k, s in sessions.items()}  # warm-up
    assert all(np.array_equal(outs["where"], outs[k]) for k in ("fused (ours)", "mul", "thresholded"))
    wall = {k: [] for k in forms}
    cpu = {k: [] for k in forms}
    for _ in range(args.rounds):
        for k, s in sessions.items():
            t0, c0 = time.perf_counter(), time.process_time()
            s.run(None, {feed: x})
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    base_w, base_c = statistics.median(wall["unclipped"]), statistics.median(cpu["unclipped"])
    print(f"{Path(args.model).name}, {len(x)} samples, {args.rounds} rounds, "
          f"{args.threads} threads")
    print(f"{'form':<14} {'wall ms':>9} {'ratio':>6} {'cpu ms':>9} {'ratio':>6}")
    for k in forms:
        w, c = statistics.median(wall[k]), statistics.median(cpu[k])
        print(f"{k:<14} {w * 1e3:9.1f} {w / base_w:6.3f} {c * 1e3:9.1f} {c / base_c:6.3f}")


if __name__ == "__main__":
    main()
