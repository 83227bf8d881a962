"""The ``host eval`` job: an image (from a file, a raw dump + manifest, or a board round trip),
optionally errors injected in memory, a dataset shaped for the model, one executor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from host.data import check_labels, load_dataset
from host.errors import FlipLabError
from host.image import read_image
from host.run import Evaluation, OnnxExecutor, evaluate_image


def evaluate(*, image: Path, manifest: Path | None = None, data: str = "digits",
             samples: int | None = None, normalize: str = "unit", channel: str | None = None,
             seed: int = 0, trial: int = 0, strategy: str = "session",
             board: str | None = None, backend: str = "onnxruntime") -> Evaluation:
    """Accuracy of the model stored in ``image`` on ``data`` (see ``host eval --help``).

    ``backend``: ``onnxruntime`` (decode the weights, run the graph) or ``rtl`` (simulate the
    accelerator on the image's layer program with cocotb + Icarus, host.sim)."""
    if backend not in ("onnxruntime", "rtl"):
        raise FlipLabError(f"unknown backend {backend!r}; choose onnxruntime or rtl")
    img = read_image(image, manifest)
    if backend == "rtl":  # refuse an image the accelerator cannot run before any slow work
        from host.sim import AccelConfig, check_image, require_simulator
        check_image(img, AccelConfig())
        require_simulator()
    flips = None
    if channel is not None:  # validate the spec before any slow work
        from host.channels import parse_channel
        chan = parse_channel(channel)
    x, y = load_dataset(data, input_shape=img.model["input_shape"], normalize=normalize,
                        samples=samples)
    check_labels(y, _classes(img, backend), data)
    if board is not None:
        from host.board import roundtrip
        golden = img
        dump = roundtrip(golden.payload.tobytes(), board)
        img = golden.with_payload(np.frombuffer(dump, dtype=np.uint8).copy())
        flips = int(np.unpackbits(golden.payload ^ img.payload).sum())
    if channel is not None:
        from host.inject import inject
        img, report = inject(img, chan, seed=seed, trial=trial)
        flips = report.flips + (flips or 0)
    if backend == "rtl":
        from host.sim import evaluate_rtl
        return evaluate_rtl(img, x, y, flips=flips)
    executor = OnnxExecutor.for_image(img, strategy=strategy)
    return evaluate_image(img, x, y, executor=executor, flips=flips)


def _classes(img, backend: str) -> int | None:
    """The model's output width: the accelerator program's last layer (rtl), or the graph
    output's last dimension when it is fixed; None when neither says."""
    if backend == "rtl" and img.program:
        return int(img.program["layers"][-1]["n_out"])
    if not img.graph:
        return None
    import onnx

    graph = onnx.load_model_from_string(img.graph).graph  # parsed and checked by read_image
    for out in graph.output:
        if out.name == img.model["output"]:
            dims = out.type.tensor_type.shape.dim
            return int(dims[-1].dim_value) if dims and dims[-1].dim_value > 0 else None
    return None
