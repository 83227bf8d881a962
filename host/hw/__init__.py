"""Bit-exact integer reference of the FlipLab accelerator datapath (docs/datapath.md).

The RTL in ``rtl/`` (and later the firmware) is tested against these functions, never against
floating point (docs/decisions.md#5, "one integer truth for hardware").

- :mod:`host.hw.requant`: 32-bit accumulator wrap, requantisation by (M, S) with round half up,
  int8 saturation, the clipped ReLU of seed 003, and ``quantize_multiplier(scale) -> (M, S)``.
- :mod:`host.hw.dense`: the int8 dense layer and the binarized XNOR-popcount layer (z >= tau,
  valid mask for nulled weights), BatchNorm folding into tau (seed 004).
- :mod:`host.hw.loader`: the weight loader's field unpacking and even-parity check.
- :mod:`host.hw.program`: a whole layer program on a batch (what ``rtl/accel_top.v`` computes),
  the host-side input quantisation, the predictions from the output vector, and the cycles
  per inference (``inference_cycles``).
- :mod:`host.hw.lower`: ONNX (int8 QDQ or binarized MLP) -> layer program (imported on demand).
"""

from host.hw.dense import (
    DenseResult,
    binary_dense,
    dense_int8,
    fold_batchnorm,
    xnor_popcount,
)
from host.hw.loader import LoadedFields, extract_fields, sign_extend, stream_bits, unpack_fields
from host.hw.program import (
    ProgramRun,
    inference_cycles,
    input_activations,
    logits,
    predictions,
    run_program,
)
from host.hw.requant import (
    clipped_relu,
    quantize_multiplier,
    requantize,
    rounding_shift,
    saturate_int8,
    wrap_int32,
)

__all__ = [
    "DenseResult", "LoadedFields", "ProgramRun", "binary_dense", "clipped_relu", "dense_int8",
    "inference_cycles", "input_activations", "logits", "predictions", "run_program",
    "extract_fields", "fold_batchnorm", "quantize_multiplier", "requantize", "rounding_shift",
    "saturate_int8", "sign_extend", "stream_bits", "unpack_fields", "wrap_int32", "xnor_popcount",
]
