"""Inference on a board's accelerator over the serial link (protocol v2, docs/protocol.md).

The same program the simulated ``accel_top`` runs (``host.sim``): its registers and neuron
parameters go to the board with ACCEL_WRITE, the weights are the image payload *in the board's
memory* (written with WRITE, so on a noisy memory they are the noisy bytes), copied into the
accelerator's payload RAM with ACCEL_LOAD, and each input vector is one ACCEL_RUN, whose reply
carries the output vector and the cycle and parity-error counters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.board import protocol as P
from host.board.client import BoardClient
from host.errors import FlipLabError
from host.image import Image
from host.sim.accel import AccelConfig, check_image, register_writes


def config_of(info: P.AccelInfo) -> AccelConfig:
    """The :class:`AccelConfig` of the board's accelerator (its ACCEL_INFO)."""
    def log2(n: int, what: str) -> int:
        if n < 1 or n & (n - 1):
            raise FlipLabError(f"board accelerator reports {n} {what}: not a power of two")
        return n.bit_length() - 1

    word_bytes = info.word_bits // 8
    if info.word_bits % 32 or info.payload_bytes % max(word_bytes, 1):
        raise FlipLabError(f"board accelerator reports {info.word_bits}-bit payload words "
                           f"and {info.payload_bytes} payload bytes")
    return AccelConfig(lanes=info.lanes, word_bits=info.word_bits,
                       addr_bits=log2(info.payload_bytes // word_bytes, "payload RAM words"),
                       n_bits=log2(info.activations, "activation entries"),
                       p_bits=log2(info.neurons, "neuron records"),
                       l_bits=log2(info.layers, "layers"))


@dataclass
class BoardProgram:
    """A layer program loaded into a board's accelerator."""

    program: dict
    config: AccelConfig
    layers: int
    n_in: int
    n_out: int


def load(client: BoardClient, image: Image, offset: int = 0) -> BoardProgram:
    """Load ``image``'s layer program into the board's accelerator and copy its payload, which
    must already be in the board memory at byte ``offset``, into the payload RAM.

    Raises:
        FlipLabError: no accelerator on the board, an image it cannot run (no program, codecs,
            sizes: refused before anything is sent), or a refused request.
    """
    config = config_of(client.accel_info())
    program = check_image(image, config)
    prog, par = register_writes(program, config)
    for space, writes in ((P.AccelSpace.PROGRAM, prog), (P.AccelSpace.PARAMETERS, par)):
        addresses = [a for a, _ in writes]
        assert addresses == list(range(len(writes))), "register writes are not contiguous"
        client.accel_write(space, 0, [v for _, v in writes])
    client.accel_load(offset, int(image.payload.size))
    layers = program["layers"]
    return BoardProgram(program, config, len(layers), int(layers[0]["n_in"]), int(layers[-1]["n_out"]))


@dataclass
class BoardRun:
    """Per-sample results of :func:`run`: outputs int64 (samples, n_out), cycles and
    detected (parity failures) int64 (samples,)."""

    outputs: np.ndarray
    cycles: np.ndarray
    detected: np.ndarray


def run(client: BoardClient, loaded: BoardProgram, activations: np.ndarray, *,
        progress: bool = False) -> BoardRun:
    """One ACCEL_RUN per row of ``activations`` (the accelerator's input vectors,
    :func:`host.hw.program.input_activations`)."""
    a = np.asarray(activations, dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != loaded.n_in:
        raise FlipLabError(f"input vectors of shape {list(a.shape)}: the program's first layer "
                           f"takes {loaded.n_in} inputs")
    from tqdm import tqdm  # here, not at the top: host --help does not need it

    outputs, cycles, detected = [], [], []
    for row in tqdm(a.tolist(), desc="board", unit="sample", disable=not progress, leave=False):
        res = client.accel_run(loaded.layers, row, loaded.n_out)
        outputs.append(res.outputs)
        cycles.append(res.cycles)
        detected.append(res.detected)
    return BoardRun(np.asarray(outputs, dtype=np.int64).reshape(len(a), loaded.n_out),
                    np.asarray(cycles, dtype=np.int64), np.asarray(detected, dtype=np.int64))
