"""The accelerator's configuration, its register map, and the checks made before simulating.

``AccelConfig`` mirrors the parameters ``rtl/accel_top.v`` is built with; ``check_image`` refuses,
with one-line :class:`FlipLabError` messages and before any simulator starts, an image without a
layer program, with codecs the weight loader cannot read, or with sizes beyond the configured
memories. ``register_writes`` turns a program into the writes the testbench makes into the
top's program and neuron-parameter memories (docs/datapath.md, "Layer program").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.errors import FlipLabError
from host.hw.lower import attach_program
from host.hw.program import payload_words
from host.image import Image

PROG_REGS = 8  # 32-bit program registers per layer
FLAG_BINARY, FLAG_PARITY, FLAG_ACT, FLAG_OUT_Z = 1, 2, 4, 8


@dataclass(frozen=True)
class AccelConfig:
    """Build parameters of accel_top (defaults: the digits models fit with room to spare).

    Attributes:
        lanes: weights (MACs or XNORs) per cycle.
        word_bits: payload RAM word width, a multiple of 32; one beat per cycle needs
            lanes * q <= 5/8 * word_bits (rtl/lane_loader.v), 72 of 128 bits by default.
        addr_bits: payload RAM depth 2**addr_bits words.
        n_bits: activation buffers of 2**n_bits entries (the widest layer).
        p_bits: 2**p_bits neuron parameter records (all layers together).
        l_bits: 2**l_bits program layers.
    """

    lanes: int = 8
    word_bits: int = 128
    addr_bits: int = 10
    n_bits: int = 7
    p_bits: int = 8
    l_bits: int = 3

    def parameters(self) -> dict[str, int]:
        """The Verilog parameters of accel_top."""
        return {"LANES": self.lanes, "WORD_BITS": self.word_bits, "ADDR_BITS": self.addr_bits,
                "N_BITS": self.n_bits, "P_BITS": self.p_bits, "L_BITS": self.l_bits}

    @property
    def payload_bytes(self) -> int:
        return (self.word_bits // 8) << self.addr_bits


def check_image(image: Image, config: AccelConfig) -> dict:
    """The image's program, re-finished against its tensor table and checked against ``config``.

    Raises:
        FlipLabError: no program, an unsupported codec, or sizes beyond the memories.
    """
    if image.program is None:
        raise FlipLabError("image has no accelerator layer program: export it with "
                           "'host export MODEL --codec ... --lower accel'")
    try:
        program = attach_program(image.program, image.tensors)
        layers = program["layers"]
    except (KeyError, TypeError):
        raise FlipLabError("image's accelerator layer program is malformed") from None
    if config.word_bits % 32 or config.word_bits < 32 or config.lanes < 1:
        raise FlipLabError(f"accelerator configuration: RAM words of {config.word_bits} bits "
                           f"(a multiple of 32 needed) and {config.lanes} lanes (>= 1)")
    if image.payload.size > config.payload_bytes:
        raise FlipLabError(f"payload of {image.payload.size} bytes exceeds the accelerator's "
                           f"{config.payload_bytes}-byte payload RAM")
    if not layers or len(layers) > 1 << config.l_bits:
        raise FlipLabError(f"{len(layers)} layers: the accelerator's program holds 1 to "
                           f"{1 << config.l_bits}")
    neurons = sum(int(layer["n_out"]) for layer in layers)
    if neurons > 1 << config.p_bits:
        raise FlipLabError(f"{neurons} neurons exceed the accelerator's "
                           f"{1 << config.p_bits} neuron parameter records")
    for layer in layers:
        for key in ("n_in", "n_out"):
            if not 1 <= int(layer[key]) <= 1 << config.n_bits:
                raise FlipLabError(f"layer {layer['name']!r}: {key} = {layer[key]} exceeds the "
                                   f"{1 << config.n_bits}-entry activation buffers")
    return program


def register_writes(program: dict, config: AccelConfig) -> tuple[list[tuple[int, int]],
                                                                 list[tuple[int, int]]]:
    """(program register writes, neuron parameter writes) as (address, 32-bit value) pairs."""
    prog, par, base = [], [], 0
    mask = (1 << 32) - 1
    for index, layer in enumerate(program["layers"]):
        binary = layer["type"] == "binary"
        flags = (FLAG_BINARY * binary | FLAG_PARITY * bool(layer["parity"])
                 | FLAG_ACT * bool(layer.get("act", False))
                 | FLAG_OUT_Z * (layer.get("out") == "z") | int(layer["q"]) << 8)
        n_out = int(layer["n_out"])
        values = [flags, int(layer["n_in"]), n_out, int(layer["bit_offset"]),
                  int(layer.get("t", 0)), int(layer.get("lo", 0)), int(layer.get("hi", 0)), base]
        prog += [(index * PROG_REGS + r, v & mask) for r, v in enumerate(values)]
        if binary:
            tau = layer.get("tau", [0] * n_out)
            records = [(0, 0, 0, int(t)) for t in tau]
        else:
            records = [(int(b), int(m), int(s), 0)
                       for b, m, s in zip(layer["bias"], layer["m"], layer["s"])]
        for j, rec in enumerate(records):
            par += [((base + j) * 4 + f, v & mask) for f, v in enumerate(rec)]
        base += n_out
    return prog, par


def ram_words(payload: np.ndarray, config: AccelConfig) -> list[int]:
    """The payload as RAM words of ``config.word_bits`` bits (image word 4k+b in bits 32b..)."""
    words = payload_words(payload).astype(np.uint64)
    per = config.word_bits // 32
    words = np.concatenate([words, np.zeros(-len(words) % per, dtype=np.uint64)])
    out = []
    for row in words.reshape(-1, per):
        value = 0
        for b, w in enumerate(row.tolist()):
            value |= int(w) << (32 * b)
        out.append(value)
    return out
