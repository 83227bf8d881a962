"""Tests of host.report.read: partial runs, bad input, damaged and truncated result lines."""

from __future__ import annotations

import json

import pytest

from host.errors import FlipLabError
from host.report import read_run, summary_table, write_report

from .helpers import RATES, A, N, make_run, result_rows


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
