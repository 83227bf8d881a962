"""The ``board`` executor: the accelerator on an FPGA board, over the serial protocol (v2).

Each variant's payload goes to the board memory at offset 0 (skipped when the board's DIGEST of
those bytes already matches, e.g. after ``host eval --board PORT``'s write and read-back), the
layer program and the payload go into the accelerator (ACCEL_WRITE, ACCEL_LOAD), and every
sample is one ACCEL_RUN. The host forms the logits from the output vectors as for the
``reference`` and ``rtl`` executors, so all three must agree bit for bit.
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import numpy as np

from host.decode import DecodedWeights
from host.errors import FlipLabError
from host.executors.base import Executor, Outputs
from host.hw.program import input_activations, logits
from host.image import Image
from host.sim.accel import AccelConfig, check_image


class BoardExecutor(Executor):
    """``accel_top`` on a board reached over a serial port (``host eval --board PORT``)."""

    name = "board"
    options: ClassVar[dict[str, str]] = {"port": "serial port of the FPGA board (host eval --board PORT)"}
    shows_progress = True  # a bar of the samples run on stderr

    def __init__(self, port: str, program: dict, progress: bool = False) -> None:
        self.port, self.program, self.progress = port, program, progress

    @classmethod
    def for_image(cls, image: Image, *, port: str | None = None, progress: bool = False,
                  **options: Any) -> BoardExecutor:
        cls.check_options(options)
        if not port:
            raise FlipLabError("the board backend needs the board's serial port: "
                               "host eval --backend board --board PORT")
        program = check_image(image, AccelConfig())  # no program or codec: refused before the port
        return cls(port, program, progress)

    def run(self, variant: DecodedWeights, x: np.ndarray) -> Outputs:
        from host.board import accel
        from host.board import protocol as P
        from host.board.client import BoardClient

        payload = np.asarray(variant.image.payload, dtype=np.uint8).tobytes()
        with BoardClient(self.port) as client:
            # a board without the accelerator, or one too small: one line, before any write
            check_image(variant.image, accel.config_of(client.accel_info()))
            if client.digest(0, len(payload), P.DigestSource.CELLS) != zlib.crc32(payload):
                client.write(payload, 0, progress=self.progress)
            loaded = accel.load(client, variant.image, 0)
            result = accel.run(client, loaded, input_activations(self.program, x),
                               progress=self.progress)
        return Outputs(logits(self.program, result.outputs), {
            "detected": int(result.detected[0]) if result.detected.size else 0,
            "cycles_per_inference": float(result.cycles.mean()) if result.cycles.size else 0.0,
            "outputs": result.outputs.tolist()})
