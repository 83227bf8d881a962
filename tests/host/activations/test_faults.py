"""host.activations.faults: the masks, against Binomial counts, nesting and hand decoding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from host.activations.faults import ActivationErrors, single_flip_masks
from host.activations.quantize import ActivationFormat, FixedPoint
from host.errors import FlipLabError

FORMATS = (ActivationFormat("a", "ta", (3, 4), 1.0, FixedPoint(8, 4)),
           ActivationFormat("b", "tb", (5,), 1.0, FixedPoint(6, 2, signed=False)))
BITS_PER_SAMPLE = 12 * 8 + 5 * 6


def test_single_flip_mask_hits_one_neuron():
    masks = single_flip_masks(FORMATS, "a", 7, "msb")
    assert masks["a/act_mask"].shape == (1, 3, 4) and masks["b/act_mask"].shape == (1, 5)
    assert masks["a/act_mask"].view(np.uint8).reshape(-1).tolist() == [0] * 7 + [0x80] + [0] * 4
    assert not masks["b/act_mask"].any()
    with pytest.raises(FlipLabError, match="neuron 12 is outside layer 'a'"):
        single_flip_masks(FORMATS, "a", 12)
    with pytest.raises(FlipLabError, match="bit 6 is outside the 6-bit code"):
        single_flip_masks(FORMATS, "b", 0, 6)


def test_zero_rate_flips_nothing():
    masks, flips = ActivationErrors(FORMATS, seed=1, trial=0, rate_max=0.1).masks(0, 300, 0.0)
    assert flips == 0 and not any(m.any() for m in masks.values())


@pytest.mark.parametrize("seed,rate", [(0, 1e-3), (1, 1e-2), (2, 0.2)])
def test_flip_counts_are_binomial(seed, rate):
    samples = 700
    errors = ActivationErrors(FORMATS, seed=seed, trial=3, rate_max=rate)
    masks, flips = errors.masks(0, samples, rate)
    n = samples * BITS_PER_SAMPLE
    assert binomtest(flips, n, rate).pvalue > 1e-3
    ones = sum(int(np.unpackbits(m.view(np.uint8)).sum()) for m in masks.values())
    # one set mask bit per flip (layer b is unsigned: no sign-extended MSB masks)
    assert ones == flips


def test_nested_reproducible_and_batch_independent():
    a = ActivationErrors(FORMATS, seed=5, trial=2, rate_max=0.05)
    lo, _ = a.masks(0, 600, 0.01)
    hi, _ = a.masks(0, 600, 0.05)
    for name in lo:  # every bit wrong at the lower rate is wrong at the higher one
        lo_bits = np.unpackbits(lo[name].view(np.uint8))
        assert np.all(np.unpackbits(hi[name].view(np.uint8))[lo_bits == 1] == 1)
    b = ActivationErrors(FORMATS, seed=5, trial=2, rate_max=0.2)  # other rate_max, other cuts
    parts = [b.masks(s, e, 0.01)[0] for s, e in ((0, 100), (100, 357), (357, 600))]
    for name in lo:
        assert np.array_equal(np.concatenate([p[name] for p in parts]), lo[name])
    other, _ = ActivationErrors(FORMATS, seed=5, trial=3, rate_max=0.05).masks(0, 600, 0.05)
    assert any(not np.array_equal(other[n], hi[n]) for n in hi)


def test_positions_decode_to_the_right_neuron_and_bit():
    errors = ActivationErrors(FORMATS, seed=9, trial=0, rate_max=0.02)
    samples, bits = errors.positions(0, 300, 0.02)
    masks, _ = errors.masks(0, 300, 0.02)
    s, b = samples[0], bits[0]
    if b < 96:  # layer a: neuron b // 8, bit b % 8 (8 bits: the MSB mask is one bit)
        value = masks["a/act_mask"].reshape(300, -1).view(np.uint8)[s, b // 8]
        assert value >> (b % 8) & 1
    else:
        value = masks["b/act_mask"].view(np.uint8)[s, (b - 96) // 6]
        assert value >> ((b - 96) % 6) & 1
