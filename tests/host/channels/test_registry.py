"""Tests of host.channels.registry: spec strings, the family list, the none channel, pattern rates."""

from __future__ import annotations

import numpy as np
import pytest

from host.channels import FlipReport, NestedPattern, list_channels, parse_channel
from host.errors import FlipLabError
from host.regions import whole_payload

from .helpers import random_payload

# --------------------------------------------------------------------------- specs and API

@pytest.mark.parametrize(
    "spec, canonical",
    [
        ("bsc:1e-3", "bsc:0.001"),
        (" BSC : 0.5 ", "bsc:0.5"),
        ("bsc:1", "bsc:1"),
        ("asym:0.01,1e-4", "asym:0.01,0.0001"),
        ("stuck:0.001,0.5", "stuck:0.001,0.5,seed=0"),
        ("stuck:0.001, 0.5, seed=9", "stuck:0.001,0.5,seed=9"),
        ("none", "none"),
    ],
)
def test_spec_round_trip(spec, canonical):
    channel = parse_channel(spec)
    assert channel.spec == canonical
    assert parse_channel(canonical) == channel


@pytest.mark.parametrize(
    "spec, word",
    [
        ("", "non-empty"),
        (None, "non-empty"),
        (0.1, "non-empty"),
        ("gauss:0.1", "unknown channel 'gauss'"),
        ("bsc", "takes 1 number, got 0"),
        ("bsc:", "takes 1 number, got 0"),
        ("bsc:0.1,0.2", "takes 1 number, got 2"),
        ("bsc:0.1,", "empty parameter"),
        ("bsc:abc", "not a number"),
        ("bsc:1.5", "outside"),
        ("bsc:-0.1", "outside"),
        ("bsc:nan", "outside"),
        ("bsc:inf", "outside"),
        ("bsc:1e-3\nbsc:2", "one line"),
        ("asym:0.1", "takes 2 numbers, got 1"),
        ("asym:0.1,0.2,0.3", "takes 2 numbers, got 3"),
        ("asym:0.1,2", "P10"),
        ("stuck:0.1", "takes 2 numbers"),
        ("stuck:0.1,0.5,seed=-1", "non-negative integer"),
        ("stuck:0.1,0.5,seed=x", "non-negative integer"),
        ("stuck:0.1,0.5,seed=1,seed=2", "twice"),
        ("stuck:0.1,0.5,dev=1", "unknown keyword 'dev'"),
        ("stuck:seed=1,0.1,0.5", "must follow"),
        ("bsc:0.1,seed=1", "unknown keyword 'seed'"),
        ("none:0.1", "takes 0 numbers"),
    ],
)
def test_bad_spec(spec, word):
    with pytest.raises(FlipLabError) as err:
        parse_channel(spec)
    message = str(err.value)
    assert "\n" not in message
    assert word in message


def test_list_channels_names_every_family():
    assert list_channels() == ["asym:P01,P10", "bram-undervolt[@S][,seed=D]", "bsc:P", "none",
                               "profile:FILE[@S][,seed=D]", "rram-ulp[@S][,seed=D]",
                               "rram-ulp-1t1r[@S][,seed=D]", "stuck:F,S[,seed=D]"]


def test_none_channel_changes_nothing():
    clean = random_payload(100, 1)
    noisy, report = parse_channel("none").apply(clean, [whole_payload(100)], seed=0, trial=0)
    np.testing.assert_array_equal(noisy, clean)
    assert noisy is not clean
    assert report == FlipReport(0, 0, 0, 800)


def test_pattern_rates_are_checked():
    clean = np.zeros(10, np.uint8)
    pattern = parse_channel("bsc:0.1").pattern(clean, [whole_payload(10)], seed=0, trial=0)
    assert isinstance(pattern, NestedPattern) and pattern.rate_max == 0.1
    with pytest.raises(FlipLabError, match="above the pattern's rate_max"):
        pattern.at(0.2)
    with pytest.raises(FlipLabError, match="outside"):
        pattern.at(-0.1)
    with pytest.raises(FlipLabError, match="rate_lo"):
        pattern.between(0.05, 0.01)
    with pytest.raises(FlipLabError, match="rate_max"):
        parse_channel("bsc:0.1").pattern(clean, [whole_payload(10)], seed=0, rate_max=1.5)
    with pytest.raises(FlipLabError, match="payload"):
        parse_channel("bsc:0.1").pattern(clean.astype(np.int8), [whole_payload(10)], seed=0)
