"""accel_top on synthetic layer programs: the corners the digits models do not reach.

Fan-ins that are not a multiple of LANES (partial last beats), plain and parity codecs in one
program, the clipped ReLU with T below the saturation bound, asymmetric saturation bounds,
random 9-bit activations, random multipliers, a binarized layer with bit outputs followed by one
with z outputs, and parity errors planted in the payload. The RTL must equal host.hw bit for
bit and count exactly the weights the host decoder nulls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cocotb_harness import require_simulator

from host.channels import flip_bits
from host.codecs import get_codec
from host.decode import decode_weights
from host.hw import dense_int8, quantize_multiplier
from host.hw.lower import attach_program
from host.hw.program import inference_cycles, layer_weights, payload_words, run_program
from host.image import WORD_BITS, Image, TensorEntry
from host.sim import AccelConfig, simulate

SEED = 20261123


def synthetic_image(layers: list[dict], gen: np.random.Generator) -> Image:
    """An image whose payload holds one random weight tensor per layer, with its program."""
    entries, segments, offset, program_layers = [], [], 0, []
    for k, spec in enumerate(layers):
        n_in, n_out, codec = spec["n_in"], spec["n_out"], get_codec(spec["codec"])
        if spec["type"] == "int8":
            values = gen.integers(-128, 128, (n_out, n_in)).astype(np.int8)
        else:
            values = gen.choice([-1.0, 1.0], (n_out, n_in)).astype(np.float32)
        params = codec.fit(values, axis=0, granularity="tensor",
                           zero_point=0 if spec["type"] == "int8" else None)
        name = f"layer{k}.weight"
        entries.append(TensorEntry(name=name, layer=f"layer{k}", op_type="Gemm", role="weight",
                                   shape=(n_out, n_in), dtype=values.dtype.name,
                                   codec=codec.spec, params=params, bit_offset=offset,
                                   stored_bits=codec.stored_bits(values.size), count=values.size,
                                   binarized=spec["type"] == "binary"))
        segments.append(codec.pack(codec.encode(values, params)))
        offset += -(-entries[-1].stored_bits // WORD_BITS) * WORD_BITS
        layer = {"name": f"layer{k}", "weight": name, **{key: v for key, v in spec.items()
                                                         if key != "codec"}}
        if spec["type"] == "int8":
            spread = 128.0 * 200.0 * np.sqrt(n_in) / 3.0
            ms = [quantize_multiplier(float(gen.uniform(20.0, 200.0)) / spread)
                  for _ in range(n_out)]
            layer.update({"bias": gen.integers(-5000, 5000, n_out).tolist(),
                          "m": [m for m, _ in ms], "s": [s for _, s in ms]})
        elif spec["out"] == "bits":
            layer["tau"] = gen.integers(-n_in - 1, n_in + 2, n_out).tolist()
        program_layers.append(layer)
    payload = np.zeros(offset // 8, dtype=np.uint8)
    for e, seg in zip(entries, segments):
        payload[e.bit_offset // 8:e.bit_offset // 8 + seg.size] = seg
    program = {"format": "fliplab-accel-program", "version": 1, "layers": program_layers,
               "input": {}, "output": {"kind": "affine", "scale": [1.0], "offset": [0.0]}}
    model = {"input": "x", "input_shape": ["batch", layers[0]["n_in"]], "output": "y"}
    return Image(entries, model, b"", payload, attach_program(program, entries))


INT8_LAYERS = [
    {"type": "int8", "n_in": 13, "n_out": 7, "codec": "int8", "lo": -20, "hi": 100,
     "act": True, "t": 0},  # T is set from the data in the test
    {"type": "int8", "n_in": 7, "n_out": 9, "codec": "parity(int8)", "lo": -128, "hi": 127,
     "act": False, "t": 127},
    {"type": "int8", "n_in": 9, "n_out": 4, "codec": "parity(int8)", "lo": -164, "hi": 91,
     "act": False, "t": 91},
]
BINARY_LAYERS = [
    {"type": "binary", "n_in": 19, "n_out": 11, "codec": "sign", "out": "bits"},
    {"type": "binary", "n_in": 11, "n_out": 17, "codec": "parity(sign)", "out": "bits"},
    {"type": "binary", "n_in": 17, "n_out": 5, "codec": "parity(sign)", "out": "z"},
]


@pytest.mark.parametrize("lanes", [8, 3])
@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_synthetic_program_bit_exact(tmp_path: Path, kind: str, lanes: int) -> None:
    require_simulator()
    gen = np.random.default_rng(SEED + lanes)
    image = synthetic_image(INT8_LAYERS if kind == "int8" else BINARY_LAYERS, gen)
    # plant errors: flip 4 % of the payload bits; every parity-coded layer gets some
    flips = np.sort(gen.choice(image.payload_bits, image.payload_bits // 25, replace=False))
    noisy = image.payload.copy()
    flip_bits(noisy, flips)
    image = image.with_payload(noisy)
    decoded = decode_weights(image)
    nulled = decoded.total_nulled
    for layer in image.program["layers"]:
        assert (decoded.nulled[layer["weight"]] > 0) == layer["parity"]
    n_in = image.program["layers"][0]["n_in"]
    if kind == "int8":
        a = gen.integers(-256, 256, (12, n_in))
        # clip threshold T of layer 0 at the median positive output: the boundary is reached
        # (outputs equal to T pass) and passed (outputs above T become 0)
        layer = image.program["layers"][0]
        w, _ = layer_weights(layer, payload_words(image.payload))
        plain = dense_int8(a, w, np.asarray(layer["bias"]), np.asarray(layer["m"]),
                           np.asarray(layer["s"]), relu=False, lo=layer["lo"], hi=layer["hi"],
                           x_bits=9).y
        layer["t"] = int(np.median(plain[plain > 0]))
        assert np.any(plain == layer["t"]) and np.any(plain > layer["t"])
    else:
        a = gen.integers(0, 2, (12, n_in))
    ref = run_program(image.program, image.payload, a)
    assert ref.detected == nulled
    result = simulate(image, a, config=AccelConfig(lanes=lanes), build_dir=tmp_path)
    np.testing.assert_array_equal(result.outputs, ref.outputs)
    np.testing.assert_array_equal(result.detected, np.full(len(a), nulled))
    if kind == "int8":  # T passes, T + 1 and above give 0
        assert np.all(ref.activations[0][plain > layer["t"]] == 0)
        assert np.all(ref.activations[0][plain == layer["t"]] == layer["t"])
    # cycles: every beat once, plus a fixed overhead per layer (host.hw's cycle model, exact)
    config = AccelConfig(lanes=lanes)
    assert np.all(result.cycles == inference_cycles(image.program, lanes, config.word_bits))
