"""The ``onnxruntime`` executor: the model's ONNX graph run with decoded weights.

Two ways to give one corrupted variant's weights to onnxruntime, behind one class
(docs/decisions.md#4 and #10; bench/bench_eval.py measures both, docs/benchmarks.md has the numbers):

- ``"session"`` (default): the graph is kept once, serialised, with every weight initializer
  marked as external data; each variant builds a fresh session whose initializers are replaced
  by the decoded arrays (``SessionOptions.add_external_initializers``). Costs a few ms per
  variant, and onnxruntime keeps its constant-weight (pre-packed) convolution kernels. All
  sessions share one process-wide memory arena: without it every new session page-faults a
  fresh arena as large as the batch's activations (measured: 1.7x the clean pass on the MNIST
  CNN with 10,000 images; 1.02x with the shared arena).
- ``"inputs"``: one session whose weights are graph inputs, fed on every run. No per-variant
  set-up, but the kernels cannot pre-pack constant weights (slower per sample on CNNs).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from host.decode import DecodedWeights
from host.errors import FlipLabError
from host.executors.base import Executor, Outputs
from host.image import Image, graph_of

STRATEGIES = ("session", "inputs")
#: graph optimisers that change what a graph computes: onnxruntime's WeightBiasQuantization
#: (basic level, onnxruntime >= 1.20) quantises the float weights of a node between a
#: DequantizeLinear and a QuantizeLinear to int8, which the activation fault points
#: (host.activations) would otherwise trigger on every layer (docs/activation-faults.md)
DISABLED_OPTIMIZERS = ["WeightBiasQuantization"]
_PLACEHOLDER_LOCATION = "fliplab-image-payload"
_shared_arena = False


def _use_shared_arena() -> None:
    """Register one CPU arena allocator for the whole process (once)."""
    global _shared_arena
    if not _shared_arena:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                 ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
        _shared_arena = True


#: what onnxruntime raises when it refuses a graph
REFUSALS = (ort.capi.onnxruntime_pybind11_state.Fail,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph,
            ort.capi.onnxruntime_pybind11_state.InvalidArgument)


def session_options(threads: int | None) -> ort.SessionOptions:
    """Options for every session: thread count, quiet logs, the process-wide arena."""
    _use_shared_arena()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry("session.use_env_allocators", "1")
    return so


def _with_external_placeholders(graph: onnx.ModelProto, specs: dict[str, tuple]) -> bytes:
    """The graph plus one initializer per weight whose data is 'external' (supplied per session)."""
    m = onnx.ModelProto()
    m.CopyFrom(graph)
    for name, (shape, dtype) in specs.items():
        t = TensorProto(name=name, dims=list(shape),
                        data_type=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)),
                        data_location=TensorProto.EXTERNAL)
        for key, value in (("location", _PLACEHOLDER_LOCATION), ("offset", "0"),
                           ("length", str(int(np.prod(shape)) * np.dtype(dtype).itemsize))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        m.graph.initializer.append(t)
    return m.SerializeToString()


def _with_weight_inputs(graph: onnx.ModelProto, specs: dict[str, tuple]) -> bytes:
    m = onnx.ModelProto()
    m.CopyFrom(graph)
    for name, (shape, dtype) in specs.items():
        m.graph.input.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape)))
    return m.SerializeToString()


class OnnxExecutor(Executor):
    """Runs one graph with many weight variants. ``specs``: {weight name: (shape, dtype)}.

    Also used on parts of a graph (a campaign's prefix and suffix around a corrupted layer,
    host.campaign.split): any graph whose weight slots ``specs`` names.
    """

    name = "onnxruntime"
    options: ClassVar[dict[str, str]] = {"strategy": "how weights reach onnxruntime: session (default) or inputs",
               "threads": "onnxruntime intra-op threads (default: up to 4)"}

    def __init__(self, graph: onnx.ModelProto, specs: dict[str, tuple], *,
                 input_name: str, output_name: str, strategy: str = "session",
                 threads: int | None = None) -> None:
        if strategy not in STRATEGIES:
            raise FlipLabError(f"unknown execution strategy {strategy!r}; choose "
                               f"{' or '.join(STRATEGIES)}")
        self.strategy, self.threads = strategy, threads
        self.input_name, self.output_name = input_name, output_name
        self.batch = fixed_batch(graph, input_name)
        self._names = list(specs)
        try:
            if strategy == "session":
                self._model = _with_external_placeholders(graph, specs)
            else:
                self._model = _with_weight_inputs(graph, specs)
                self._session = ort.InferenceSession(
                    self._model, session_options(threads), providers=["CPUExecutionProvider"],
                    disabled_optimizers=DISABLED_OPTIMIZERS)
        except REFUSALS as exc:
            raise FlipLabError(f"onnxruntime refused the model: {ort_reason(exc)}") from None

    @classmethod
    def for_image(cls, image: Image, *, strategy: str | None = None,
                  threads: int | None = None, **options: Any) -> OnnxExecutor:
        cls.check_options(options)
        specs = {t.name: (t.shape, t.dtype) for t in image.tensors}
        return cls(graph_of(image), specs, input_name=image.model["input"],
                   output_name=image.model["output"], strategy=strategy or "session",
                   threads=threads)

    def run(self, variant: DecodedWeights, x: np.ndarray) -> Outputs:
        return Outputs(self.logits(variant.weights, x))

    def session(self, weights: dict[str, np.ndarray]) -> ort.InferenceSession:
        """A session bound to one variant's weights (``"session"`` strategy)."""
        so = session_options(self.threads)
        values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(weights[n]))
                  for n in self._names]
        so.add_external_initializers(self._names, values)
        try:  # the "session" strategy's first session is where onnxruntime checks the graph
            return ort.InferenceSession(self._model, so, providers=["CPUExecutionProvider"],
                                        disabled_optimizers=DISABLED_OPTIMIZERS)
        except REFUSALS as exc:
            raise FlipLabError(f"onnxruntime refused the model: {ort_reason(exc)}") from None

    def logits(self, weights: dict[str, np.ndarray], x: np.ndarray,
               batch_size: int = 8192) -> np.ndarray:
        """Model outputs for samples ``x`` (already shaped like the model input)."""
        if self.strategy == "session":
            sess, extra = self.session(weights), {}
        else:
            sess, extra = self._session, {n: weights[n] for n in self._names}
        batch_size = self.batch or batch_size
        outs = []
        for i in range(0, len(x), batch_size):
            chunk = x[i:i + batch_size]
            if self.batch and len(chunk) < self.batch:  # pad the last chunk, drop the padding
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), 0)])
            try:
                out = sess.run([self.output_name], {self.input_name: chunk, **extra})[0]
            except (ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                    ort.capi.onnxruntime_pybind11_state.Fail) as exc:
                raise FlipLabError(f"onnxruntime could not run the data through the model: "
                                   f"{ort_reason(exc)}") from None
            outs.append(out[:len(x) - i])
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def ort_reason(exc: Exception) -> str:
    """onnxruntime's whole message on one line (its reason is often on the second line,
    e.g. "index: 0 Got: 10 Expected: 1")."""
    return " ".join(str(exc).split())


def fixed_batch(graph: onnx.ModelProto, input_name: str) -> int | None:
    """The batch size a model fixes in its data input's first dimension (None: symbolic).

    Such a model is run in chunks of that batch, the last one padded with copies of its last
    sample and the padding's outputs dropped. The graph is not relaxed to a symbolic batch: its
    exporter may have baked the batch into constants too (a legacy export's flatten is
    ``Reshape(x, [1, -1])``), so chunks are the only way that always computes what the model
    computes.
    """
    for value in graph.graph.input:
        if value.name == input_name:
            dims = value.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                return int(dims[0].dim_value)
    return None
