"""Running a layer program on the integer reference: what ``rtl/accel_top.v`` computes.

``run_program(program, payload, activations)`` executes the program of docs/datapath.md
("Layer program") on a batch of input activation vectors, reading every weight out of the
(possibly corrupted) payload exactly as the hardware's weight loader does, parity check
included. ``input_activations`` turns float samples into the accelerator's input vector (the
host does the input quantisation / binarisation), ``predictions`` turns the accelerator's
output vector into class predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.errors import FlipLabError
from host.hw.dense import binary_dense, dense_int8, xnor_popcount
from host.hw.loader import sign_extend, unpack_fields


@dataclass(frozen=True)
class ProgramRun:
    """Result of a program on a batch.

    Attributes:
        outputs: int64 (batch, n_out of the last layer): int8 layers give ``y = y_q - z_y``
            (the output relative to its zero point), a binarized last layer gives z.
        detected: weights whose parity check failed (each is read once per inference).
        activations: every layer's output, int64 (batch, n_out) (bits for binarized layers).
    """

    outputs: np.ndarray
    detected: int
    activations: list[np.ndarray]


def payload_words(payload: np.ndarray) -> np.ndarray:
    """The payload bytes as little-endian 32-bit words (uint32)."""
    b = np.ascontiguousarray(payload, dtype=np.uint8)
    if b.size % 4:
        raise FlipLabError(f"payload of {b.size} bytes is not a whole number of 32-bit words")
    return b.view("<u4").astype(np.uint32)


def layer_weights(layer: dict, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights, valid) of one layer as the loader delivers them, shaped (n_out, n_in).

    int8 layers: int64 weights, 0 where nulled; binarized layers: weight bits (1 = +1).
    ``valid`` is False where the parity check failed.
    """
    n_in, n_out = int(layer["n_in"]), int(layer["n_out"])
    fields = unpack_fields(words, int(layer["bit_offset"]), int(layer["q"]), n_in * n_out,
                           parity=bool(layer["parity"]))
    valid = ~fields.error.reshape(n_out, n_in)
    if layer["type"] == "int8":
        return sign_extend(fields.data, 8).reshape(n_out, n_in), valid
    return (fields.data & 1).reshape(n_out, n_in), valid


def run_program(program: dict, payload: np.ndarray, activations: np.ndarray) -> ProgramRun:
    """Execute ``program`` over ``payload`` for a batch of input vectors.

    Args:
        program: a finished program (``host.hw.lower.attach_program``).
        payload: the image payload (uint8 bytes).
        activations: int64 (batch, n_in of layer 0) from :func:`input_activations`.

    Returns:
        ProgramRun(outputs, detected, activations).
    """
    words = payload_words(payload)
    a = np.asarray(activations, dtype=np.int64)
    detected, trace = 0, []
    for layer in program["layers"]:
        w, valid = layer_weights(layer, words)
        detected += int(np.count_nonzero(~valid))
        if a.shape[1] != int(layer["n_in"]):
            raise FlipLabError(f"layer {layer['name']!r} takes {layer['n_in']} inputs, got "
                               f"{a.shape[1]}")
        if layer["type"] == "int8":
            a = dense_int8(a, w, np.asarray(layer["bias"], np.int64), np.asarray(layer["m"]),
                           np.asarray(layer["s"]), int(layer["t"]), relu=bool(layer["act"]),
                           lo=int(layer["lo"]), hi=int(layer["hi"]), x_bits=9).y
        elif layer["out"] == "bits":
            a = binary_dense(a, w, np.asarray(layer["tau"], np.int64), valid).astype(np.int64)
        else:
            a = xnor_popcount(a, w, valid)
        trace.append(a)
    return ProgramRun(a, detected, trace)


# fixed cycles of a layer besides its beats (docs/datapath.md, "Cycles per layer"): LOAD 1,
# loader fill 3 (memory read, read register, bit buffer), the lane register 1, the unit's
# latency (mac_dense 7, xnor_popcount 2), write-back 1, NEXT 1
LAYER_OVERHEAD = {"int8": 14, "binary": 9}


def inference_cycles(program: dict, lanes: int = 8, word_bits: int = 128) -> int:
    """Clock cycles of one inference on ``rtl/accel_top.v`` (its cycle counter): the start
    cycle, then per layer n_out * ceil(n_in / lanes) beats plus :data:`LAYER_OVERHEAD`, plus
    one when the layer's first beat needs a second RAM word. Holds while the loader gives one
    beat per cycle (lanes * q <= 5/8 * word_bits)."""
    total = 1
    for layer in program["layers"]:
        n_in, n_out, q = int(layer["n_in"]), int(layer["n_out"]), int(layer["q"])
        kind = "int8" if layer["type"] == "int8" else "binary"
        straddle = int(layer["bit_offset"]) % word_bits + min(lanes, n_in) * q > word_bits
        total += n_out * -(-n_in // lanes) + LAYER_OVERHEAD[kind] + int(straddle)
    return total


def input_activations(program: dict, x: np.ndarray) -> np.ndarray:
    """The accelerator's input vectors for float samples ``x`` (batch, n_in).

    int8 programs: ``QuantizeLinear`` as onnxruntime computes it, in float32 with round half to
    even, ``x_q = sat8(rint(x / scale) + z)``, returned relative to the zero point (``x_q - z``).
    Binarized programs: the input bit ``x >= threshold`` (1 = +1).
    """
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    spec = program["input"]
    if spec["kind"] == "binary":
        return (x >= np.float32(spec["threshold"])).astype(np.int64)
    z = int(spec["zero_point"])
    q = np.clip(np.rint(x / np.float32(spec["scale"])).astype(np.int64) + z, -128, 127)
    return q - z


def logits(program: dict, outputs: np.ndarray) -> np.ndarray:
    """The model's logits from the accelerator outputs (float32 (batch, classes)).

    int8 programs: ``(y + z_y - z_y) * s_y`` = the dequantised int8 logits; binarized
    programs: the per-class affine ``z * scale + offset`` in float32, as the graph's Mul + Add.
    """
    spec = program["output"]
    out = np.asarray(outputs)
    if spec["kind"] == "affine":
        return out.astype(np.float32) * np.asarray(spec["scale"], np.float32) \
            + np.asarray(spec["offset"], np.float32)
    return out.astype(np.float32) * np.float32(spec["scale"])


def predictions(program: dict, outputs: np.ndarray) -> np.ndarray:
    """Top-1 class per sample (first index on ties, like ``numpy.argmax``)."""
    return logits(program, outputs).argmax(axis=1)
