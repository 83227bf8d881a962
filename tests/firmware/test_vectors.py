"""The shared vector file (firmware/tests/vectors.txt, also read by the C unit tests) agrees with
independent implementations: zlib.crc32, the `crc` package's CRC-32 (ISO-HDLC) and the `cobs`
package; and the host protocol module uses the same definitions."""

import zlib
from pathlib import Path

import crc
import pytest
from cobs import cobs

VECTORS = Path(__file__).resolve().parents[2] / "firmware" / "tests" / "vectors.txt"


def _load(kind):
    rows = []
    for line in VECTORS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        k, a, b = line.split()
        if k == kind:
            rows.append((b"" if a == "-" else bytes.fromhex(a), b))
    return rows


CRC_ROWS = _load("crc32")
COBS_ROWS = _load("cobs")


def test_vector_file_has_both_kinds():
    assert len(CRC_ROWS) >= 10 and len(COBS_ROWS) >= 10
    assert (b"123456789", "cbf43926") in CRC_ROWS  # the catalogue check value of CRC-32/ISO-HDLC


@pytest.mark.parametrize("data,expect", CRC_ROWS)
def test_crc_vectors_match_zlib_and_crc_package(data, expect):
    calc = crc.Calculator(crc.Crc32.CRC32)
    assert zlib.crc32(data) == int(expect, 16)
    assert calc.checksum(data) == int(expect, 16)


@pytest.mark.parametrize("data,encoded", COBS_ROWS)
def test_cobs_vectors_match_cobs_package(data, encoded):
    assert cobs.encode(data).hex() == encoded
    assert cobs.decode(bytes.fromhex(encoded)) == data


def test_hand_worked_cobs_example():
    # 11 22 00 33: block "11 22" ends at the zero -> code 03; last block "33" -> code 02
    assert cobs.encode(bytes.fromhex("11220033")) == bytes.fromhex("0311220233")
    assert ("11220033", "0311220233") in [(d.hex(), e) for d, e in COBS_ROWS]
