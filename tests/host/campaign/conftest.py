"""Campaign runs shared by the host.campaign tests: each is swept once for the whole folder."""

from __future__ import annotations

import pytest

from host.campaign import run_sweep

from .helpers import small_spec


@pytest.fixture(scope="package")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp") / "run"
    spec = small_spec()
    run_sweep(spec, out, progress=False)
    return spec, out


@pytest.fixture(scope="package")
def cnn_layers_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn") / "run"
    spec = small_spec("digits_cnn", codecs="parity8", scopes=["layers", "bits:msb"],
                      rates="1e-2,6e-2")
    run_sweep(spec, out, progress=False)
    return spec, out
