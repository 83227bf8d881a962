"""Tests of host.report.summary: R(0.99), R(0.95) and the summary table against hand-worked values."""

from __future__ import annotations

import json
import math

import pytest

from host.errors import FlipLabError
from host.report import SUMMARY_COLUMNS, format_rber, read_run, summary_records, summary_table, write_report

from .helpers import make_run

# --------------------------------------------------------------------------- the summary

def test_summary_table_keys_and_json(tmp_path):
    run = make_run(tmp_path / "run")
    table = summary_table(run)
    assert tuple(table.columns) == SUMMARY_COLUMNS
    records = summary_records(table)
    text = json.dumps(records, allow_nan=False)  # NaN became null: valid JSON
    back = {r["codec"]: r for r in json.loads(text)}
    assert back["parity8"]["r95"] == 1e-2 and back["parity8"]["r95_status"] == "bracketed"
    assert back["fixed8"]["r99_status"] == "below_grid"
    assert back["fixed8"]["r99_interpolated"] is None
    assert back["parity8"]["improvement_r95"] == pytest.approx(10.0)
    assert back["fixed8"]["baseline"] == "fixed8" and back["fixed8"]["complete"] is True
    # parity8, x = 0.95, between (1e-2, 0.94) and (1e-1, 0.50), threshold 0.9025:
    # t = 0.0375 / 0.44 = 0.0852273, p = 1e-2 * 10 ** 0.0852273 = 1e-2 * e^0.196243 = 1.21682e-2
    assert back["parity8"]["r95_interpolated"] == pytest.approx(1.21682e-2, rel=1e-5)
    assert back["parity8"]["r95_ci_low"] <= back["parity8"]["r95_interpolated"]
    assert back["parity8"]["r95_interpolated"] <= back["parity8"]["r95_ci_high"]
    # AUC, seed 003 on p/p_max = 0, 0.01, 0.1, 1 for fixed8 (means 0.95, 0.94, 0.75, 0.10):
    # 0.01 * 0.945 + 0.09 * 0.845 + 0.9 * 0.425 = 0.00945 + 0.07605 + 0.3825 = 0.468
    assert back["fixed8"]["auc"] == pytest.approx(0.468)


def test_summary_baseline_and_clean_reference(tmp_path):
    run = make_run(tmp_path / "run")
    table = summary_table(run, baseline="parity8").set_index("codec")
    assert table.loc["fixed8", "improvement_r95"] == pytest.approx(0.1)
    # with A = float16's own clean accuracy 0.96: 0.99 * 0.96 = 0.9504 > 0.95 at p = 0.1
    own = summary_table(run, relative_to="clean").set_index("codec")
    assert own.loc["float16", "r99"] == 1e-2 and own.loc["float16", "r99_status"] == "bracketed"
    with pytest.raises(FlipLabError, match="baseline codec"):
        summary_table(run, baseline="int4")


def test_format_rber_says_what_the_status_means():
    assert format_rber(0.003, "bracketed") == "0.003"
    assert format_rber(0.1, "above_grid") == "≥0.1"
    assert format_rber(0.0, "below_grid", 1e-4) == "0 (<0.0001)"
    assert format_rber(math.nan, "clean_fails") == "clean fails"


def test_without_campaign_json_r_needs_the_clean_reference(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "campaign.json").unlink()
    loaded = read_run(run)
    assert any("campaign.json is missing" in note for note in loaded.notes)
    table = summary_table(loaded).set_index("codec")
    assert table.loc["parity8", "r99_status"] == "no_data"
    assert math.isnan(table.loc["parity8", "r99"])
    # each codec's own clean accuracy still defines R: parity8 0.99 * 0.95 = 0.9405 -> 1e-3
    assert summary_table(loaded, relative_to="clean").loc[1, "r99"] == 1e-3
    assert "campaign.json is missing" in write_report(run).read_text()
