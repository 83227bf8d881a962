"""host.diff.diff_images: bit errors of a noisy image against its golden image.

Hand-worked: the two-tensor image of docs/image-format.md (payload ``50 fa 00 00 00 ff 00 00``)
against a payload written out by hand with seven known flips. Property: the diff of an injected
image reports exactly the flips the channel made, tensor by tensor and position by position,
counted here from the XOR of the two payloads.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.channels import parse_channel
from host.codecs import get_codec
from host.diff import diff_images
from host.image import WORD_BITS, Image, TensorEntry
from host.inject import inject

MODEL = {"input": "x", "input_shape": [1, 2], "output": "y"}


def image_of(tensors: list[tuple[str, np.ndarray, str]]) -> Image:
    """An image of the given (name, values, codec spec) tensors, each starting on a word."""
    entries, segments, offset = [], [], 0
    for name, values, spec in tensors:
        codec = get_codec(spec)
        params = codec.fit(values, axis=0, granularity="tensor")
        seg = codec.pack(codec.encode(values, params))
        stored = codec.stored_bits(values.size)
        entries.append(TensorEntry(name, name, "Gemm", "weight", values.shape, "float32", spec,
                                   params, offset, stored, values.size))
        segments.append((offset, seg))
        offset += -(-stored // WORD_BITS) * WORD_BITS
    payload = np.zeros(offset // 8, np.uint8)
    for start, seg in segments:
        payload[start // 8: start // 8 + seg.size] = seg
    return Image(entries, MODEL, b"", payload)


def doc_image() -> Image:
    """docs/image-format.md's worked example: w (parity4, bits 0-15), b (fixed8, bits 32-47)."""
    w = np.array([[-1.0, -0.5], [0.5, 1.0]], np.float32)
    b = np.array([-0.25, 0.75], np.float32)
    image = image_of([("w", w, "parity4"), ("b", b, "fixed8")])
    assert image.payload.tobytes() == bytes.fromhex("50fa000000ff0000")
    return image


def test_hand_worked_flips_by_tensor_position_and_direction():
    golden = doc_image()
    # payload bits are numbered LSB first within each byte (bit 8k + j = bit j of byte k):
    #  bit  0: 0x50 bit 0 = 0 -> 1   w, field 0, position 0
    #  bit  6: 0x50 bit 6 = 1 -> 0   w, field 1, position 2
    #  bit  9: 0xfa bit 1 = 1 -> 0   w, field 2, position 1
    #  bit 20: 0x00 bit 4 = 0 -> 1   padding after w (outside every tensor)
    #  bit 33: 0x00 bit 1 = 0 -> 1   b, field 0, position 1
    #  bit 40: 0xff bit 0 = 1 -> 0   b, field 1, position 0
    #  bit 63: 0x00 bit 7 = 0 -> 1   padding after b
    noisy = golden.with_payload(np.frombuffer(bytes.fromhex("11f81000 02fe0080"), np.uint8))
    d = diff_images(golden, noisy)
    assert (d["payload_bits"], d["errors"], d["zero_to_one"], d["one_to_zero"]) == (64, 7, 4, 3)
    assert d["ber"] == pytest.approx(7 / 64)
    assert d["outside_tensors"] == 2
    w, b = d["tensors"]
    # layer "w" (a Gemm) + role weight: short name "w.weight" (host.names)
    assert w == {"tensor": "w", "short": "w.weight", "bits": 16, "errors": 3, "zero_to_one": 1, "one_to_zero": 2,
                 "per_position": {"zero_to_one": [1, 0, 0, 0], "one_to_zero": [0, 1, 1, 0]}}
    assert b == {"tensor": "b", "short": "b.weight", "bits": 16, "errors": 2, "zero_to_one": 1, "one_to_zero": 1,
                 "per_position": {"zero_to_one": [0, 1, 0, 0, 0, 0, 0, 0],
                                  "one_to_zero": [1, 0, 0, 0, 0, 0, 0, 0]}}


def test_identical_images_have_no_errors():
    golden = doc_image()
    d = diff_images(golden, golden.with_payload(golden.payload.copy()))
    assert (d["errors"], d["zero_to_one"], d["one_to_zero"], d["ber"]) == (0, 0, 0, 0.0)
    assert d["outside_tensors"] == 0
    assert all(t["errors"] == 0 and sum(t["per_position"]["zero_to_one"]) == 0
               for t in d["tensors"])


def test_every_bit_flipped_counts_each_stored_bit_once():
    golden = doc_image()
    d = diff_images(golden, golden.with_payload(~golden.payload))
    ones = sum(bin(x).count("1") for x in golden.payload.tobytes())  # 0x50, 0xfa, 0xff: 2+6+8
    assert (d["errors"], d["one_to_zero"], d["zero_to_one"]) == (64, ones, 64 - ones) == (64, 16, 48)
    assert d["ber"] == 1.0 and d["outside_tensors"] == 32
    # each of the four 4-bit fields of w has each position flipped once; b has two 8-bit fields
    w, b = d["tensors"]
    assert [a + c for a, c in zip(*w["per_position"].values())] == [4, 4, 4, 4]
    assert [a + c for a, c in zip(*b["per_position"].values())] == [2] * 8


def test_a_secded_tensor_is_counted_per_72_bit_codeword():
    values = np.linspace(-1, 1, 16, dtype=np.float32)  # 128 data bits: two codewords
    golden = image_of([("s", values, "secded(parity8)")])
    flipped = golden.payload.copy()
    flipped[0] ^= 0x01                 # codeword 0, position 0 (0 -> 1 or 1 -> 0)
    flipped[9] ^= 0x04                 # payload bit 74: codeword 1, position 2
    d = diff_images(golden, golden.with_payload(flipped))
    (s,) = d["tensors"]
    assert s["bits"] == 144 and d["errors"] == s["errors"] == 2
    totals = [a + c for a, c in zip(*s["per_position"].values())]
    assert len(totals) == 72 and totals[0] == totals[2] == 1 and sum(totals) == 2


CODECS = ["fixed8", "parity8", "int4", "float16", "hamming16:mid", "secded(parity8)"]


@settings(max_examples=40, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(1, 40), st.sampled_from(CODECS)), min_size=1,
                       max_size=4),
       rate=st.floats(1e-3, 0.5), seed=st.integers(0, 2**32 - 1),
       msb_only=st.booleans())
def test_property_diff_of_an_injected_image_reports_exactly_the_injected_flips(
        shapes, rate, seed, msb_only):
    rng = np.random.default_rng(seed)
    golden = image_of([(f"t{i}", rng.normal(size=n).astype(np.float32), spec)
                       for i, (n, spec) in enumerate(shapes)])
    noisy, report = inject(golden, parse_channel(f"bsc:{rate!r}"), seed=seed,
                           bit_positions=["msb"] if msb_only else None)
    d = diff_images(golden, noisy)
    assert (d["errors"], d["zero_to_one"], d["one_to_zero"]) == (
        report.flips, report.zero_to_one, report.one_to_zero)
    assert d["outside_tensors"] == 0  # a channel only touches the tensors' stored bits
    assert d["ber"] == report.flips / golden.payload_bits
    g_bits = np.unpackbits(golden.payload, bitorder="little")
    x_bits = np.unpackbits(golden.payload ^ noisy.payload, bitorder="little")
    for entry, t in zip(golden.tensors, d["tensors"]):
        field = get_codec(entry.codec).field_bits
        cut = slice(entry.bit_offset, entry.bit_offset + entry.stored_bits)
        changed = x_bits[cut].reshape(-1, field)   # one row per stored field
        stored = g_bits[cut].reshape(-1, field)
        assert t["tensor"] == entry.name and t["bits"] == entry.stored_bits
        assert t["errors"] == int(changed.sum())
        assert t["per_position"]["zero_to_one"] == (changed & (stored == 0)).sum(0).tolist()
        assert t["per_position"]["one_to_zero"] == (changed & (stored == 1)).sum(0).tolist()
        if msb_only:
            assert not changed[:, :-1].any()
