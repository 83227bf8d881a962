"""The ``rtl`` executor: the Verilog accelerator simulated with cocotb + Icarus (host.sim).

The simulated ``accel_top`` reads the (possibly noisy) payload word for word, checks parity in
its weight loader and runs the image's layer program; the host forms the logits from the output
vector exactly as for the reference executor, so the two must agree bit for bit.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from host.decode import DecodedWeights
from host.executors.base import Executor, Outputs
from host.hw.program import input_activations, logits
from host.image import Image
from host.sim.accel import AccelConfig, check_image
from host.sim.run import require_simulator, simulate


class RtlExecutor(Executor):
    """``accel_top`` under simulation; needs an image with a layer program and Icarus."""

    name = "rtl"
    options: ClassVar[dict[str, str]] = {}
    shows_progress = True  # a bar of the samples simulated on stderr (terminals only)

    def __init__(self, program: dict, config: AccelConfig, progress: bool = False) -> None:
        self.program, self.config, self.progress = program, config, progress

    @classmethod
    def for_image(cls, image: Image, *, progress: bool = False,
                  **options: Any) -> RtlExecutor:
        cls.check_options(options)
        config = AccelConfig()
        program = check_image(image, config)  # refuse the image before any slow work
        require_simulator()
        return cls(program, config, progress)

    def run(self, variant: DecodedWeights, x: np.ndarray) -> Outputs:
        result = simulate(variant.image, input_activations(self.program, x), config=self.config,
                          progress=self.progress)
        return Outputs(logits(self.program, result.outputs), {
            "detected": int(result.detected[0]) if result.detected.size else 0,
            "cycles_per_inference": float(result.cycles.mean()) if result.cycles.size else 0.0,
            "outputs": result.outputs.tolist()})
