"""Tests of host.regions and host.channels.layout: which payload bits a channel may touch."""

from __future__ import annotations

import numpy as np
import pytest

from host.channels import RegionLayout, parse_channel
from host.errors import FlipLabError
from host.regions import Region

from .helpers import changed_bits, random_payload

# --------------------------------------------------------------------------- regions

def test_region_maps_eligible_bits_by_hand():
    # 7-bit fields from bit 3, positions 0 and 6 eligible: fields at 3, 10, 17
    layout = RegionLayout([Region(3, 3, 7, positions=(6, 0))], payload_bits=24)
    assert layout.n_eligible == 6
    assert layout.all_bits().tolist() == [3, 9, 10, 16, 17, 23]


def test_regions_are_taken_in_address_order():
    a = Region(0, 4, 8, positions=(7,), tensor="a")
    b = Region(40, 2, 4, tensor="b")
    layout = RegionLayout([b, a], payload_bits=64)
    assert layout.all_bits().tolist() == [7, 15, 23, 31, 40, 41, 42, 43, 44, 45, 46, 47]
    pl = random_payload(8, 1)
    ch = parse_channel("bsc:0.4")
    np.testing.assert_array_equal(
        ch.pattern(pl, [a, b], seed=2, trial=3).positions,
        ch.pattern(pl, [b, a], seed=2, trial=3).positions,
    )


def test_bsc_at_rate_one_flips_exactly_the_eligible_bits():
    regions = [
        Region(5, 10, 7, positions=(6,), tensor="msb7"),   # 7-bit fields straddle bytes
        Region(80, 6, 8, positions=(0, 7), tensor="ends"),
        Region(200, 3, 16, tensor="all16"),
    ]
    expected = set()
    for r in regions:
        for k in range(r.n_fields):
            for j in r.positions if r.positions is not None else range(r.field_bits):
                expected.add(r.start_bit + k * r.field_bits + j)
    clean = random_payload(40, 7)
    noisy, report = parse_channel("bsc:1").apply(clean, regions, seed=0, trial=0)
    assert set(changed_bits(clean, noisy).tolist()) == expected
    assert report.flips == len(expected) == report.eligible_bits


def test_msb_only_of_8bit_fields():
    clean = random_payload(2000, 3)
    region = Region(8 * 100, 1500, 8, positions=(7,))
    noisy, report = parse_channel("bsc:0.3").apply(clean, [region], seed=5, trial=1)
    flipped = changed_bits(clean, noisy)
    assert report.flips == flipped.size > 0
    assert np.all(flipped % 8 == 7)
    assert flipped.min() >= 800 and flipped.max() < 800 + 1500 * 8
    np.testing.assert_array_equal(clean[:100], noisy[:100])
    np.testing.assert_array_equal(clean[1600:], noisy[1600:])


def test_msb_of_7bit_fields_straddling_bytes():
    n_fields = 800
    clean = np.zeros(n_fields * 7 // 8 + 2, dtype=np.uint8)
    region = Region(3, n_fields, 7, positions=(6,))
    noisy, _ = parse_channel("bsc:0.5").apply(clean, [region], seed=11, trial=0)
    bits = np.unpackbits(noisy, bitorder="little")
    assert bits[:3].sum() == 0 and bits[3 + 7 * n_fields:].sum() == 0
    fields = bits[3: 3 + 7 * n_fields].reshape(n_fields, 7)
    assert fields[:, :6].sum() == 0
    assert 0 < fields[:, 6].sum() < n_fields


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: Region(-1, 1, 8), "start_bit"),
        (lambda: Region(0, -2, 8), "n_fields"),
        (lambda: Region(0, 1, 0), "field_bits"),
        (lambda: Region(0, 1, 8, positions=(8,)), "outside"),
        (lambda: Region(0, 1, 8, positions=(1, 1)), "repeat"),
        (lambda: Region(0, 1, 8, positions="7"), "positions"),
        (lambda: Region(0.5, 1, 8), "integer"),
        (lambda: Region(True, 1, 8), "integer"),
    ],
)
def test_bad_region(make, word):
    with pytest.raises(FlipLabError, match=word):
        make()


@pytest.mark.parametrize(
    "regions, word",
    [
        ([Region(0, 4, 8), Region(24, 2, 8)], "overlap"),
        ([Region(0, 9, 8)], "only 64 bits"),
        ([(0, 1, 8, None)], "Region"),
    ],
)
def test_bad_region_list(regions, word):
    with pytest.raises(FlipLabError, match=word):
        parse_channel("bsc:0.1").pattern(np.zeros(8, np.uint8), regions, seed=0)
