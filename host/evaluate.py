"""The ``host eval`` job: an image (a file, a raw dump + manifest, or a board round trip),
optionally errors injected in memory, a dataset shaped for the model, one executor by name.

image ─ (board round trip) ─ (inject) ─ decode ─ executor ─ Evaluation: the same steps, by the
same functions, as every variant of a campaign (host.campaign.worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.data import DataSpec
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
    executor_cls.check_options(s.options)
    img = read_image(s.image, s.manifest)
    options = dict(s.options)
    if "progress" in executor_cls.options:
        options["progress"] = s.progress
    executor = executor_cls.for_image(img, **options)  # refuses the image before slow work
    chan = None
    if s.channel is not None:  # validate the spec before any slow work
        from host.channels import parse_channel
        chan = parse_channel(s.channel)
    x, y = s.data.load(img.model["input_shape"])
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
