"""Tests of host.campaign.grid: rates, scopes and the campaigns it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from host.campaign import parse_rates
from host.errors import FlipLabError

from .helpers import small_spec

# ---------------------------------------------------------------------------------------------
# the grid

def test_rates_log_spaced_inclusive():
    assert parse_rates("1e-5:1e-1:5") == (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    r = parse_rates("1e-5:1e-1:13")
    assert len(r) == 13 and r[0] == 1e-5 and r[-1] == 1e-1
    assert np.allclose(np.diff(np.log(r)), math.log(1e4) / 12, rtol=1e-5)
    assert parse_rates("0.1, 1e-3,0.01") == (1e-3, 1e-2, 0.1)
    assert parse_rates("0.02:0.02:1") == (0.02,)


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("1e-1:1e-5:5", "inverted"), ("1e-5:1e-1:0", "empty"),
    ("0:1e-1:3", "outside"), ("1e-3,2", "outside"), ("1e-3,1e-3", "twice"),
    ("1e-3:abc:3", "not a number"), ("1e-3:1e-2", "lo:hi:n"), ("1e-3:1e-3:4", "repeats"),
])
def test_bad_rates_are_one_line_errors(text, words):
    with pytest.raises(FlipLabError, match=words) as info:
        parse_rates(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kw, words", [
    ({"codecs": "fixed8,nonsense9"}, "unknown codec"),
    ({"channel": "gauss:0.1"}, "unknown channel"),
    ({"channel": "none"}, "no rate to sweep"),
    ({"trials": 0}, "trials"),
    ({"rates": "1e-1:1e-3:3"}, "inverted"),
    ({"scopes": ["layer:nope"]}, "no layer"),
    ({"scopes": ["everything"]}, "unknown scope"),
])
def test_bad_campaign_is_refused(kw, words):
    with pytest.raises(FlipLabError, match=words):
        small_spec(**kw)


def test_layers_scope_expands_in_graph_order():
    spec = small_spec("digits_cnn", scopes=["model", "layers"])
    assert spec.scopes == ("model", "layer:conv1", "layer:conv2", "layer:fc")
