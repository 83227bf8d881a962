"""Helpers shared by the host.campaign tests."""

from __future__ import annotations

import pandas as pd

from host.campaign import SweepSettings, make_spec, read_rows
from host.data import DataSpec

SAMPLES = 120
KEY = ["codec", "scope", "rate", "trial"]


def table(out) -> pd.DataFrame:
    """The results of a folder without the timing column, in a canonical order."""
    df = pd.DataFrame(read_rows(out)).drop(columns="elapsed_s")
    return df.sort_values(KEY).reset_index(drop=True)


def small_spec(model="digits_mlp", samples=SAMPLES, **kw):
    args = dict(codecs="fixed8,parity8", rates="3e-3:5e-2:3", trials=2, seed=11)
    args.update(kw)
    return make_spec(model, SweepSettings(data=DataSpec(samples=samples), **args))
