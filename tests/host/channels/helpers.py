"""Helpers shared by the channel tests.

Statistical tests are seeded, so each outcome is fixed; ALPHA is the probability that a
correct implementation fails one of them for a randomly chosen seed (two-sided tests).
With about 30 such tests, a correct implementation passes them all for about 97 % of seeds.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from scipy import stats

ALPHA = 1e-3
N_BYTES = 25_000  # 200 000 eligible bits per trial in the statistical tests
SETTINGS = settings(max_examples=40, deadline=None)


def changed_bits(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Payload bit positions where two payloads differ (independent of host.channels)."""
    diff = np.unpackbits(np.bitwise_xor(clean, noisy), bitorder="little")
    return np.flatnonzero(diff)


def assert_binomial(k: int, n: int, p: float) -> None:
    result = stats.binomtest(k, n, p)
    assert result.pvalue > ALPHA, f"{k} successes in {n} trials at p={p}: p {result.pvalue:.2e}"


def random_payload(n_bytes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8)


rates = st.floats(0.0, 1.0, allow_nan=False)
