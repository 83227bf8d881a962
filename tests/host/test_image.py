"""The memory image: the worked example of docs/image-format.md byte for byte, round trips,
and every way a damaged or mismatched file is refused."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from host.codecs import get_codec
from host.decode import decode_weights
from host.errors import FlipLabError
from host.image import (
    Image,
    TensorEntry,
    image_bytes,
    manifest_path_for,
    parse_image,
    read_image,
    read_like,
    write_image,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "image-format.md"


def doc_example_bytes() -> bytes:
    """The ```hex block of docs/image-format.md, parsed from its xxd lines."""
    block = DOC.read_text().split("```hex\n", 1)[1].split("```", 1)[0]
    out = bytearray()
    for line in block.splitlines():
        groups = line.split(":", 1)[1][:41].split()
        out += bytes.fromhex("".join(groups))
    return bytes(out)


def example_image() -> Image:
    """The doc's two-tensor image, encoded through the codecs from the weight values."""
    w = np.array([[-1.0, -0.5], [0.5, 1.0]], np.float32)
    b = np.array([-0.25, 0.75], np.float32)
    entries, payload, offset = [], np.zeros(8, np.uint8), 0
    for name, role, values, spec in (("w", "weight", w, "parity4"), ("b", "bias", b, "fixed8")):
        codec = get_codec(spec)
        params = codec.fit(values, axis=0, granularity="tensor")
        seg = codec.pack(codec.encode(values, params))
        payload[offset // 8: offset // 8 + seg.size] = seg
        entries.append(TensorEntry(name, "fc", "Gemm", role, values.shape, "float32", spec,
                                   params, offset, codec.stored_bits(values.size), values.size))
        offset += 32
    return Image(entries, {"input": "x", "input_shape": [1, 2], "output": "y"}, b"", payload)


def test_worked_example_matches_the_doc_byte_for_byte():
    data = image_bytes(example_image())
    assert data == doc_example_bytes()
    # the documented fields, read independently of host.image
    magic, vmaj, vmin, hsize, wbits, flags, tlen, glen, poff, plen, mcrc, hcrc = \
        struct.unpack_from("<8sHHIIIQQQQII", data)
    assert (magic, vmaj, vmin, hsize, wbits, flags) == (b"FLIPLAB\0", 1, 0, 64, 32, 0)
    assert (tlen, glen, poff, plen) == (547, 0, 640, 8)
    assert hcrc == zlib.crc32(data[:60]) == 0x33565B6B
    assert mcrc == zlib.crc32(data[64:64 + tlen]) == 0x81AF4402
    assert data[poff:] == bytes.fromhex("50fa000000ff0000")  # hand-packed codes 0,5,10,15 | 0,255


def test_worked_example_flips_as_the_doc_says():
    image = parse_image(doc_example_bytes())
    w = decode_weights(image).weights["w"]
    np.testing.assert_allclose(w.ravel(), [-1, -3 / 7, 3 / 7, 1], rtol=1e-6)
    one = image.payload.copy()
    one[0] ^= 0b10  # payload bit 1: code 0 becomes 0010, odd parity
    d = decode_weights(image.with_payload(one))
    assert d.weights["w"][0, 0] == 0.0 and d.nulled == {"w": 1, "b": 0}
    two = image.payload.copy()
    two[0] ^= 0b110  # bits 1 and 2: 0110, even parity, undetected: level 3
    d = decode_weights(image.with_payload(two))
    assert d.total_nulled == 0
    assert d.weights["w"][0, 0] == pytest.approx(-1 + 3 * 2 / 7, rel=1e-6)


def test_write_read_round_trip_and_manifest(tmp_path):
    image = example_image()
    path = tmp_path / "weights.bin"
    write_image(image, path)
    write_image(image, manifest_path_for(path), manifest=True)
    back = read_image(path)
    assert image_bytes(back) == image_bytes(image)
    dump = tmp_path / "dump.bin"
    dump.write_bytes(image.payload.tobytes())
    from_dump = read_image(dump, manifest_path_for(path))
    assert np.array_equal(from_dump.payload, image.payload)
    assert read_like(dump, image).payload.tobytes() == image.payload.tobytes()
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave nothing behind


def test_regions_cover_each_tensor_and_restrict_bit_positions():
    image = example_image()
    regions = image.regions()
    assert [(r.start_bit, r.n_fields, r.field_bits, r.tensor) for r in regions] == \
        [(0, 4, 4, "w"), (32, 2, 8, "b")]
    msb = image.regions(["b"], ["msb"])
    assert msb[0].positions == (7,) and msb[0].tensor == "b"
    with pytest.raises(FlipLabError, match="outside the 4-bit fields"):
        image.regions(["w"], [4])
    with pytest.raises(FlipLabError, match="matches no tensor"):
        image.regions(["conv*"])


def corrupt(data: bytes, offset: int, value: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= value
    return bytes(b)


def reheader(data: bytes, **fields) -> bytes:
    """Rewrite header fields and fix the header CRC, to reach the checks behind the CRC."""
    names = ["magic", "vmaj", "vmin", "hsize", "wbits", "flags", "tlen", "glen", "poff", "plen",
             "mcrc", "hcrc"]
    values = dict(zip(names, struct.unpack_from("<8sHHIIIQQQQII", data)))
    values.update(fields)
    head = struct.pack("<8sHHIIIQQQQ", *[values[n] for n in names[:10]]) + \
        struct.pack("<I", values["mcrc"])
    return head + struct.pack("<I", zlib.crc32(head)) + data[64:]


GOOD = doc_example_bytes()


@pytest.mark.parametrize("data, message", [
    (b"", "truncated"),
    (GOOD[:40], "truncated"),
    (b"NOTFLIPL" + GOOD[8:], "not a FlipLab image"),
    (corrupt(GOOD, 30, 0x01), "damaged header"),
    (reheader(GOOD, vmaj=2), "format version 2.0"),
    (reheader(GOOD, wbits=64), "word width"),
    (reheader(GOOD, poff=100), "inconsistent header"),
    (corrupt(GOOD, 100, 0x20), "damaged tensor table"),
    (GOOD[:300], "truncated"),
    (GOOD[:-1], "truncated or padded"),
    (GOOD + b"\0\0\0\0", "truncated or padded"),
    (reheader(GOOD, flags=1), "is a manifest"),
])
def test_damaged_images_are_refused_never_decoded(data, message):
    with pytest.raises(FlipLabError, match=message):
        parse_image(data)


def test_table_that_lies_about_layout_is_refused():
    image = example_image()
    bad = TensorEntry("b", "fc", "Gemm", "bias", (2,), "float32", "fixed8",
                      image.tensors[1].params, 8, 16, 2)  # overlaps w and is unaligned
    with pytest.raises(FlipLabError, match="tensor 'b': bit_offset = 8 is not a multiple of 32"):
        parse_image(image_bytes(Image([image.tensors[0], bad], image.model, b"", image.payload)))
    short = TensorEntry("b", "fc", "Gemm", "bias", (3,), "float32", "fixed8",
                        image.tensors[1].params, 32, 16, 2)
    with pytest.raises(FlipLabError, match=r"tensor 'b': shape \[3\] holds 3 weights but count is 2"):
        parse_image(image_bytes(Image([image.tensors[0], short], image.model, b"", image.payload)))


def test_dump_and_manifest_mismatches(tmp_path):
    image = example_image()
    manifest = tmp_path / "w.manifest"
    write_image(image, manifest, manifest=True)
    dump = tmp_path / "dump.bin"
    dump.write_bytes(b"\0" * 12)
    with pytest.raises(FlipLabError, match="dump is 12 bytes but the manifest describes .* 8"):
        read_image(dump, manifest)
    with pytest.raises(FlipLabError, match="is a manifest"):
        read_image(manifest)
    with pytest.raises(FlipLabError, match="does not exist"):
        read_image(tmp_path / "missing.bin")
    with pytest.raises(FlipLabError, match="neither a FlipLab image nor a payload dump"):
        read_like(dump, image)


def test_payload_length_is_checked_by_with_payload():
    with pytest.raises(FlipLabError, match="payload is 4 bytes"):
        example_image().with_payload(np.zeros(4, np.uint8))


def test_doc_states_the_crc_check_value():
    assert zlib.crc32(b"123456789") == 0xCBF43926
    assert re.search(r"0xCBF43926", DOC.read_text())
