"""The ``reference`` executor: the accelerator's bit-exact integer reference (host/hw).

Runs the image's layer program (``host export --lower accel``) over the image's payload exactly
as ``rtl/accel_top.v`` does — the weight loader's unpacking and parity check included — in
numpy, in a fraction of the simulation's time. Its outputs are what the RTL must produce
(docs/datapath.md, docs/decisions.md#5).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from host.decode import DecodedWeights
from host.executors.base import Executor, Outputs
from host.hw.program import input_activations, logits, run_program
from host.image import Image
from host.sim.accel import AccelConfig, check_image


class ReferenceExecutor(Executor):
    """The layer program on host/hw; needs an image with a layer program."""

    name = "reference"
    options: ClassVar[dict[str, str]] = {}

    def __init__(self, program: dict) -> None:
        self.program = program

    @classmethod
    def for_image(cls, image: Image, **options: Any) -> ReferenceExecutor:
        cls.check_options(options)
        return cls(check_image(image, AccelConfig()))

    def run(self, variant: DecodedWeights, x: np.ndarray) -> Outputs:
        result = run_program(self.program, variant.image.payload,
                             input_activations(self.program, x))
        return Outputs(logits(self.program, result.outputs), {"detected": int(result.detected)})
