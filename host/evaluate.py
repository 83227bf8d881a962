"""The ``host eval`` job: an image (a file, a raw dump + manifest, or a board round trip),
optionally errors injected in memory, a dataset shaped for the model, one executor by name.

image ─ (board round trip) ─ (inject) ─ decode ─ executor ─ Evaluation: the same steps, by the
same functions, as every variant of a campaign (host.campaign.worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.data import DataSpec, check_labels
from host.decode import decode_weights
from host.evaluation import Evaluation, run_variant
from host.executors import DEFAULT, get_executor
from host.executors.base import Executor
from host.image import Image, read_image


@dataclass(frozen=True)
class EvalSettings:
    """What ``host eval`` evaluates, and how.

    Attributes:
        image: image file, or a raw payload dump with ``manifest``.
        manifest: the golden image's manifest, for a raw dump.
        data: the labelled samples.
        channel: inject errors in memory before evaluating (a channel spec), or None.
        seed, trial: identify the injected errors (as ``host inject``).
        tensors: only these tensors/layers take the channel's errors (fnmatch patterns,
            ``!P`` excludes P; None: all), as ``host inject --tensors``.
        board: a serial port: write the payload to the board, read it back, evaluate that.
        backend: executor name (host.executors).
        options: the executor's own options (``{"strategy": "inputs"}``); an option the
            backend does not take is refused.
        progress: a bar of the samples done on stderr, for executors that are slow enough to
            show one (the ``rtl`` simulation; terminals only).
    """

    image: Path
    manifest: Path | None = None
    data: DataSpec = field(default_factory=DataSpec)
    channel: str | None = None
    seed: int = 0
    trial: int = 0
    tensors: list[str] | None = None
    board: str | None = None
    backend: str = DEFAULT
    options: dict = field(default_factory=dict)
    progress: bool = False


def evaluate(settings: EvalSettings) -> Evaluation:
    """Accuracy of the model stored in the image on the data (see ``host eval --help``)."""
    s = settings
    executor_cls = get_executor(s.backend)
    executor_cls.check_options(s.options)  # options of the user's; the board's port is --board
    img = read_image(s.image, s.manifest)
    options = dict(s.options)
    if s.backend == "board":
        options["port"] = s.board
    if executor_cls.shows_progress:
        options["progress"] = s.progress
    executor = executor_cls.for_image(img, **options)  # refuses the image before slow work
    chan = None
    if s.channel is not None:  # validate the spec before any slow work
        from host.channels import parse_channel
        chan = parse_channel(s.channel)
    x, y = s.data.load_for(img.model)
    check_labels(y, _classes(img, s.backend), s.data.data)  # before any slow work
    flips = None
    if s.board is not None:
        from host.board import roundtrip
        golden = img
        dump = roundtrip(golden.payload.tobytes(), s.board)
        img = golden.with_payload(np.frombuffer(dump, dtype=np.uint8).copy())
        flips = int(np.unpackbits(golden.payload ^ img.payload).sum())
    if chan is not None:
        from host.inject import inject
        img, report = inject(img, chan, seed=s.seed, trial=s.trial, tensors=s.tensors)
        flips = report.flips + (flips or 0)
    return run_variant(executor, decode_weights(img), x, y, flips=flips)


def evaluate_image(image: Image, x: np.ndarray, y: np.ndarray, *,
                   executor: Executor | None = None, flips: int | None = None) -> Evaluation:
    """Decode ``image`` and score it on ``x``/``y`` (default executor: onnxruntime)."""
    executor = executor or get_executor(DEFAULT).for_image(image)
    return run_variant(executor, decode_weights(image), x, y, flips=flips)


def _classes(img: Image, backend: str) -> int | None:
    """The model's output width: the accelerator program's last layer (reference, rtl), or the graph
    output's last dimension when it is fixed; None when neither says."""
    if backend != DEFAULT and img.program:
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


#: A clean image scoring below this multiple of chance (1 / number of classes) is reported.
NEAR_CHANCE = 1.5


def near_chance_warning(result: Evaluation, settings: EvalSettings, image_model: dict) -> str | None:
    """A one-line warning when a CLEAN evaluation (no channel, no board) scores near chance:
    most often the input is not normalised as in training. None otherwise."""
    if settings.channel is not None or settings.board is not None or not result.samples:
        return None
    chance = 1.0 / max(len(np.unique(result.labels)), 2)
    if result.accuracy >= NEAR_CHANCE * chance:
        return None
    used = settings.data.normalize or image_model.get("normalize") or "unit"
    return (f"the clean image scores {result.accuracy:.4f}, near chance ({chance:.2f}) on "
            f"{settings.data.data}: is the input normalised as in training? (used --normalize "
            f"{used}; record the right one with host export --normalize)")
