"""Tests of host.report on tiny synthetic run folders (no model runs).

The synthetic run's accuracies are chosen so that its R(x) values are known by hand; the
report must print those and the same values as host.metrics.r_at on the same rows.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from host.errors import FlipLabError
from host.metrics import r_at
from host.report import (
    SUMMARY_COLUMNS,
    format_rber,
    read_run,
    summary_records,
    summary_table,
    write_report,
)

A = 0.95        # reference accuracy; 0.99·A = 0.9405, 0.95·A = 0.9025
N = 100         # samples per trial
RATES = [1e-3, 1e-2, 1e-1]
# accuracy of each trial; the clean row (rate 0) is one trial
#   fixed8:  means 0.95 | 0.94 | 0.75 | 0.10 -> R(0.99) = 0 (1e-3 fails 0.9405), R(0.95) = 1e-3
#   parity8: means 0.95 | 0.95 | 0.94 | 0.50 -> R(0.99) = 1e-3,              R(0.95) = 1e-2
#   float16: means 0.96 | 0.96 | 0.96 | 0.95 -> R(0.99) = R(0.95) = 0.1, above the grid
TRIALS = {
    "fixed8": {0.0: [0.95], 1e-3: [0.95, 0.94, 0.93], 1e-2: [0.80, 0.70, 0.75],
               1e-1: [0.10, 0.10, 0.10]},
    "parity8": {0.0: [0.95], 1e-3: [0.95, 0.95, 0.95], 1e-2: [0.94, 0.95, 0.93],
                1e-1: [0.50, 0.60, 0.40]},
    "float16": {0.0: [0.96], 1e-3: [0.96, 0.96, 0.96], 1e-2: [0.96, 0.95, 0.97],
                1e-1: [0.95, 0.95, 0.95]},
}
BITS = {"fixed8": 8.0, "parity8": 8.0, "float16": 16.0}
LAYERS = {"conv1": 2000, "fc1": 50000}  # stored bits per layer, for the flip counts


def result_rows(layers: bool = False) -> list[dict]:
    rows = []
    scopes = ["model"] + ([f"layer:{name}" for name in LAYERS] if layers else [])
    for codec, curve in TRIALS.items():
        for scope in scopes:
            layer_bits = LAYERS.get(scope.removeprefix("layer:"), 60000)
            for rate, accs in curve.items():
                for trial, acc in enumerate(accs):
                    correct = round(acc * N)
                    rows.append({
                        "model": "tiny", "model_sha256": "0" * 64, "codec": codec,
                        "bits_per_weight": BITS[codec], "channel": "bsc", "rate": rate,
                        "trial": trial, "scope": scope, "seed": 11, "samples": N,
                        "correct": correct, "accuracy": correct / N,
                        "failures": max(0, round(A * N) - correct),
                        "flips": round(rate * layer_bits), "nulled": 0, "corrected": 0,
                        "elapsed_s": 0.01,
                    })
    return rows


def make_run(path: Path, rows: list[dict] | None = None, *, layers: bool = False,
             trials: int = 3, campaign: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rows = result_rows(layers) if rows is None else rows
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # as host sweep writes it: the grid nested under "grid"
    definition = {
        "model": "tiny", "model_sha256": "0" * 64,
        "reference": {"accuracy": A, "correct": round(A * N), "samples": N},
        "grid": {"codecs": list(TRIALS), "channel": "bsc", "rates": RATES, "trials": trials,
                 "scopes": ["model"] + ([f"layer:{n}" for n in LAYERS] if layers else [])},
        "seed": 11, "data": "synthetic",
    }
    (path / "campaign.json").write_text(json.dumps(definition if campaign is None else campaign))
    return path


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


def test_a_planned_rate_without_any_trial_is_reported(tmp_path):
    # a flat campaign.json (grid keys at the top level) planning a fourth rate never run
    rows = [r for r in result_rows() if r["codec"] != "float16"]
    flat = {"model": "tiny", "reference": {"accuracy": A, "correct": 95, "samples": N},
            "codecs": ["fixed8", "parity8"], "rates": RATES + [0.3], "trials": 3,
            "scopes": ["model"], "channel": "bsc"}
    run = make_run(tmp_path / "run", rows, campaign=flat)
    notes = " ".join(read_run(run).notes)
    assert "fixed8 / model at p = 0.3: 0 of 3 trials" in notes
    assert "parity8 / model at p = 0.3: 0 of 3 trials" in notes
    assert not summary_table(run)["complete"].any()


def test_truncated_last_line_is_ignored_and_noted(tmp_path):
    run = make_run(tmp_path / "run")
    with open(run / "results.jsonl", "a") as f:
        f.write('{"codec": "fixed8", "rate": 0.')
    loaded = read_run(run)
    assert len(loaded.results) == len(result_rows())
    assert any("incomplete" in note for note in loaded.notes)


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


# --------------------------------------------------------------------------- bad input

def test_missing_empty_or_broken_results_are_one_line_errors(tmp_path):
    with pytest.raises(FlipLabError, match="does not exist"):
        write_report(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FlipLabError, match="results.jsonl is missing"):
        write_report(tmp_path / "empty")
    (tmp_path / "empty" / "results.jsonl").write_text("\n")
    with pytest.raises(FlipLabError, match="holds no trials"):
        summary_table(tmp_path / "empty")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "results.jsonl").write_text("not json\n[1, 2]\n")
    with pytest.raises(FlipLabError, match=r"holds no trials .*line 1: invalid JSON"):
        read_run(tmp_path / "garbage")
    few = make_run(tmp_path / "few", [{"codec": "fixed8", "rate": 0.0}])
    with pytest.raises(FlipLabError, match="lack the column"):
        read_run(few)
    for exc_dir in ("nowhere", "empty", "garbage", "few"):
        assert not (tmp_path / exc_dir / "report.md").exists()


def test_error_messages_are_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FlipLabError) as info:
        write_report(tmp_path / "run")
    assert "\n" not in str(info.value)


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


# --------------------------------------------------------------------------- damaged lines

def test_damaged_lines_are_skipped_counted_and_noted(tmp_path):
    run = make_run(tmp_path / "run")
    lines = (run / "results.jsonl").read_text().splitlines()
    lacking = json.dumps({k: v for k, v in json.loads(lines[3]).items() if k != "accuracy"})
    damaged = [lines[0], "not json", *lines[1:3], lacking, *lines[4:]]
    (run / "results.jsonl").write_text("\n".join(damaged) + "\n" + lines[0][:20])
    loaded = read_run(run)
    # the row without accuracy is skipped, not read as NaN; the others are all there
    assert len(loaded.results) == len(result_rows()) - 1
    assert not loaded.results["accuracy"].isna().any()
    assert [(d.line, d.reason) for d in loaded.damaged] == [
        (2, "invalid JSON"), (5, "not a campaign row"), (len(damaged) + 1, "torn last line")]
    notes = " ".join(loaded.notes)
    assert "2 damaged line(s) of results.jsonl were skipped: line 2: invalid JSON, line 5: " \
           "not a campaign row (lacks accuracy)" in notes
    assert "incomplete" in notes
    assert "were skipped" in write_report(loaded).read_text()


def test_host_report_prints_the_damaged_lines_and_json_counts_them(tmp_path, capsys):
    from host.cli import main

    run = make_run(tmp_path / "run")
    with open(run / "results.jsonl", "a") as f:
        f.write('{"codec": "fixed8", "rate": 0.')
    assert main(["report", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    last = len(result_rows()) + 1
    assert captured.err == (f"host: warning: results.jsonl: 1 damaged line skipped "
                            f"(line {last}: torn last line)\n")
    out = json.loads(captured.out)
    assert out["damaged_lines"] == 1
    assert out["damaged"] == [{"line": last, "reason": "torn last line", "missing": []}]
    make_run(tmp_path / "clean")
    assert main(["report", str(tmp_path / "clean"), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["damaged_lines"] == 0


# --------------------------------------------------------------------------- the package split

def test_summary_and_reading_do_not_import_matplotlib():
    """host sweep prints the summary; only the plots (host report) need matplotlib."""
    code = ("import sys, host.report, host.report.summary, host.report.read; "
            "assert 'matplotlib' not in sys.modules, 'imported too early'; "
            "from host.report import write_report, plot_boxes; "
            "assert 'matplotlib' in sys.modules; print('ok')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_the_package_names_are_the_modules_names():
    import host.report as report
    from host.report import plots, read, summary, write

    assert report.read_run is read.read_run and report.summary_table is summary.summary_table
    assert report.write_report is write.write_report and report.plot_layers is plots.plot_layers
    with pytest.raises(AttributeError):
        report.no_such_name  # noqa: B018
