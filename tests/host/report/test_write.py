"""Tests of host.report.write (and the plots it writes): report.md, its tables and PNG files."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from host.metrics import r_at
from host.report import summary_table, write_report

from .helpers import TRIALS, A, make_run, result_rows


def markdown_table(text: str, heading: str) -> list[dict[str, str]]:
    """The first markdown table after ``heading``, as a list of {header: cell}."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    headers, body = table[0], table[2:]
    return [dict(zip(headers, row)) for row in body]


def leading_number(cell: str) -> float:
    match = re.search(r"[0-9.]+(?:e-?[0-9]+)?", cell)
    assert match, cell
    return float(match.group())


# --------------------------------------------------------------------------- the report

def test_report_files_rows_and_r_values(tmp_path):
    run = make_run(tmp_path / "run")
    path = write_report(run)
    assert path == run / "report.md"
    for name in ("accuracy_vs_rber.png", "boxplots.png"):
        assert (run / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{name}" in path.read_text()
    assert not list(run.glob(".*.tmp")) and not list((run / "plots").glob(".*.tmp"))

    rows = markdown_table(path.read_text(), "## Summary")
    assert [r["codec"] for r in rows] == ["fixed8", "parity8", "float16"]
    df = pd.DataFrame(result_rows())
    hand = {"fixed8": (0.0, 1e-3), "parity8": (1e-3, 1e-2), "float16": (0.1, 0.1)}
    for row in rows:
        curve = df[(df["codec"] == row["codec"]) & (df["scope"] == "model")]
        for column, x, expected in (("R(0.99) grid", 0.99, hand[row["codec"]][0]),
                                    ("R(0.95) grid", 0.95, hand[row["codec"]][1])):
            value = leading_number(row[column])
            assert value == pytest.approx(r_at(curve, x, A).rber)
            assert value == pytest.approx(expected)
    by_codec = {r["codec"]: r for r in rows}
    assert by_codec["float16"]["R(0.99) grid"] == "≥0.1"           # above the grid
    assert by_codec["fixed8"]["R(0.99) grid"] == "0 (<0.001)"      # below the grid
    assert by_codec["float16"]["overhead"] == "0.0 %"              # no check bits
    assert by_codec["parity8"]["overhead"] == "14.3 %"             # 1 check bit per 7 data bits
    # gain vs the first codec (fixed8): R(0.95) 1e-2 / 1e-3 = 10; R(0.99) against 0: undefined
    assert by_codec["parity8"]["R(0.95) gain"] == "10x"
    assert by_codec["parity8"]["R(0.99) gain vs fixed8"] == "—"


def test_report_per_layer_section_and_plots(tmp_path):
    run = make_run(tmp_path / "run", layers=True)
    text = write_report(run).read_text()
    for codec in TRIALS:
        assert (run / "plots" / f"layers_{codec}.png").is_file()
    assert "## Per layer" in text
    rows = markdown_table(text, "Accuracy vs bit errors in the layer, `fixed8`")
    # fc1 at p = 1e-2: 0.01 * 50000 = 500 bit errors, mean accuracy 0.75
    fc1 = next(r for r in rows if r["layer"] == "fc1" and r["p"] == "0.01")
    assert fc1["bit errors (mean)"] == "500.0" and fc1["accuracy (mean)"] == "75.00 %"


def test_report_says_a_run_is_partial(tmp_path):
    rows = [r for r in result_rows()
            if not (r["codec"] == "parity8" and r["rate"] == 1e-1 and r["trial"] == 2)]
    run = make_run(tmp_path / "run", rows)
    text = write_report(run).read_text()
    assert "Partial run" in text and "parity8 / model at p = 0.1: 2 of 3 trials" in text
    table = summary_table(run).set_index("codec")
    assert not table.loc["parity8", "complete"] and table.loc["fixed8", "complete"]
    assert table.loc["parity8", "trials_min"] == 2
