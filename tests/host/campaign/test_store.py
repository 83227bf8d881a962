"""host.campaign.store: the one reader of results.jsonl (rows, and every line that is not one
with its number and reason) and the resume logic built on it (open_run).

The files are written by hand here, so which line is damaged, and why, is known in advance.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.campaign.grid import CampaignSpec
from host.campaign.store import (
    CAMPAIGN,
    EMPTY,
    INVALID,
    NOT_OBJECT,
    NOT_ROW,
    RESULTS,
    ROW_KEYS,
    TORN,
    DamagedLine,
    ResultWriter,
    campaign_document,
    damage_records,
    open_run,
    read_results,
    read_rows,
)
from host.errors import FlipLabError

SPEC = CampaignSpec(model="tiny.onnx", model_sha256="0" * 64, codecs=("fixed8",), channel="bsc",
                    rates=(1e-3, 1e-2), trials=2, scopes=("model",), seed=5)
REFERENCE = {"accuracy": 0.9, "correct": 90, "samples": 100}


def row(codec="fixed8", scope="model", rate=1e-3, trial=0, accuracy=0.5) -> dict:
    values = {"model": "tiny.onnx", "model_sha256": "0" * 64, "codec": codec,
              "bits_per_weight": 8.0, "channel": "bsc", "rate": rate, "trial": trial,
              "scope": scope, "seed": 5, "samples": 100, "correct": round(100 * accuracy),
              "accuracy": accuracy, "failures": 0, "flips": 3, "nulled": 0, "corrected": 0,
              "elapsed_s": 0.01, "target": "weights", "act_flips": 0}
    return {k: values[k] for k in ROW_KEYS}


def unit_rows(trial: int) -> list[dict]:
    """The rows a finished unit of SPEC writes: the clean row for trial 0, then each rate."""
    rates = ([0.0] if trial == 0 else []) + list(SPEC.rates)
    return [row(rate=r, trial=trial) for r in rates]


def line(r: dict) -> str:
    return json.dumps(r, allow_nan=False)


# --------------------------------------------------------------------------- read_results

def test_a_valid_file_gives_its_rows_and_no_damage(tmp_path):
    rows = unit_rows(0) + unit_rows(1)
    path = tmp_path / RESULTS
    with ResultWriter(tmp_path) as writer:
        writer.append(rows)
    found = read_results(path, exact=True)
    assert found.rows == rows and found.damaged == []
    assert found.texts == path.read_text().splitlines()
    assert found.last_line == len(rows) and not found.unterminated
    assert found.warning() is None
    assert read_rows(tmp_path) == rows


def test_each_kind_of_damage_is_counted_with_its_line_and_reason(tmp_path):
    good = [row(rate=r) for r in (0.0, 1e-3, 1e-2)]
    extra = dict(row(rate=1e-2), note="hand-added")
    lacking = {k: v for k, v in row().items() if k not in ("accuracy", "rate")}
    lines = [line(good[0]),          # 1 row
             "not json",             # 2 invalid JSON
             line(good[1]),          # 3 row
             "[1, 2]",               # 4 not an object
             "",                     # 5 empty
             line(lacking),          # 6 lacks accuracy and rate
             line(extra),            # 7 a row, unless exact
             line(good[2])]          # 8 row
    path = tmp_path / RESULTS
    path.write_text("\n".join(lines) + "\n" + line(good[0])[:30])  # 9: torn, no newline
    found = read_results(path)
    assert found.rows == [good[0], good[1], extra, good[2]]
    assert found.damaged == [DamagedLine(2, INVALID), DamagedLine(4, NOT_OBJECT),
                             DamagedLine(5, EMPTY), DamagedLine(6, NOT_ROW, ("rate", "accuracy")),
                             DamagedLine(9, TORN)]
    assert found.last_line == 9 and found.unterminated
    exact = read_results(path, exact=True)
    assert DamagedLine(7, NOT_ROW) in exact.damaged and extra not in exact.rows
    assert found.warning() == (
        "results.jsonl: 5 damaged lines skipped (line 2: invalid JSON, line 4: not a JSON "
        "object, line 5: empty line, line 6: not a campaign row (lacks rate, accuracy), "
        "line 9: torn last line)")
    assert damage_records(found.damaged)[3] == {"line": 6, "reason": NOT_ROW,
                                                "missing": ["rate", "accuracy"]}


def test_a_torn_last_line_with_or_without_its_newline(tmp_path):
    path = tmp_path / RESULTS
    whole = line(row())
    path.write_text(whole + "\n" + whole[:40] + "\n")  # a terminated but incomplete last line
    found = read_results(path)
    assert found.rows == [row()] and found.damaged == [DamagedLine(2, TORN)]
    assert found.warning() == "results.jsonl: 1 damaged line skipped (line 2: torn last line)"
    path.write_text(whole + "\n" + "{")
    assert read_results(path).damaged == [DamagedLine(2, TORN)]
    # complete JSON that only lost its newline is still a row (a prefix of an object never
    # parses), but the file is marked so that an append does not continue that line
    path.write_text(whole + "\n" + whole)
    found = read_results(path)
    assert found.rows == [row(), row()] and found.damaged == [] and found.unterminated


def test_a_long_list_of_damage_is_shortened_in_the_warning(tmp_path):
    path = tmp_path / RESULTS
    path.write_text("".join(f"bad {i}\n" for i in range(20)) + line(row()) + "\n")
    message = read_results(path).warning()
    assert message.startswith("results.jsonl: 20 damaged lines skipped (line 1: invalid JSON,")
    assert message.endswith("line 8: invalid JSON, … and 12 more)") and "\n" not in message


def test_an_unreadable_file_is_a_one_line_error(tmp_path):
    with pytest.raises(FlipLabError, match="cannot read"):
        read_results(tmp_path / "missing.jsonl")
    with pytest.raises(FlipLabError, match="cannot read"):
        read_results(tmp_path)  # a folder


def test_bytes_that_are_not_utf8_are_a_damaged_line(tmp_path):
    path = tmp_path / RESULTS
    path.write_bytes(line(row()).encode() + b"\n\xff\xfe garbage\n" + line(row()).encode() + b"\n")
    found = read_results(path)
    assert len(found.rows) == 2 and found.damaged == [DamagedLine(2, INVALID)]


@settings(max_examples=60, deadline=None)
@given(accuracies=st.lists(st.floats(0, 1), min_size=1, max_size=12),
       broken=st.sets(st.integers(0, 11)), cut=st.integers(1, 200))
def test_property_the_reader_returns_exactly_the_undamaged_rows(tmp_path_factory, accuracies,
                                                                broken, cut):
    """Replace some lines by a proper prefix of a row (what a torn write leaves): the reader
    returns the other rows in order and names exactly the replaced lines."""
    rows = [row(trial=i, accuracy=a) for i, a in enumerate(accuracies)]
    broken = {i for i in broken if i < len(rows)}
    texts = [line(r)[:min(cut, len(line(r)) - 1)] if i in broken else line(r)
             for i, r in enumerate(rows)]
    path = tmp_path_factory.mktemp("prop") / RESULTS
    path.write_text("".join(t + "\n" for t in texts))
    found = read_results(path, exact=True)
    assert found.rows == [r for i, r in enumerate(rows) if i not in broken]
    assert [d.line for d in found.damaged] == sorted(i + 1 for i in broken)
    last = len(rows) - 1
    assert all(d.reason == (TORN if d.line == last + 1 else INVALID) for d in found.damaged)


# --------------------------------------------------------------------------- open_run (resume)

def start(tmp_path, text: str):
    out = tmp_path / "run"
    out.mkdir()
    (out / CAMPAIGN).write_text(json.dumps(campaign_document(SPEC, REFERENCE)))
    (out / RESULTS).write_text(text)
    return out


def test_resume_drops_a_torn_last_line_and_says_so(tmp_path):
    finished = "".join(line(r) + "\n" for r in unit_rows(0))
    half = unit_rows(1)
    out = start(tmp_path, finished + line(half[0]) + "\n" + line(half[1])[:20])
    resumed = open_run(out, SPEC, REFERENCE)
    assert resumed.done == {("fixed8", "model", 0)}
    assert resumed.damaged == [DamagedLine(5, TORN)]
    assert resumed.rows_dropped == 1  # the complete row of the unfinished unit 1
    assert (out / RESULTS).read_text() == finished


def test_resume_keeps_a_complete_last_row_that_lost_its_newline(tmp_path):
    text = "".join(line(r) + "\n" for r in unit_rows(0) + unit_rows(1))
    out = start(tmp_path, text[:-1])
    resumed = open_run(out, SPEC, REFERENCE)
    assert resumed.done == {("fixed8", "model", 0), ("fixed8", "model", 1)}
    assert resumed.damaged == [] and (out / RESULTS).read_text() == text


@pytest.mark.parametrize("bad, message", [
    ("not json", "line 2 is not valid JSON"),
    ("", "line 2 is not valid JSON"),
    ('{"codec": "fixed8"}', "line 2 is not a campaign row"),
    ("[1]", "line 2 is not a campaign row"),
])
def test_resume_refuses_damage_before_the_last_line(tmp_path, bad, message):
    rows = unit_rows(0)
    text = line(rows[0]) + "\n" + bad + "\n" + "".join(line(r) + "\n" for r in rows[1:])
    out = start(tmp_path, text)
    with pytest.raises(FlipLabError, match=message):
        open_run(out, SPEC, REFERENCE)
    assert (out / RESULTS).read_text() == text  # nothing rewritten


def test_resume_refuses_a_last_line_that_is_json_but_not_a_row(tmp_path):
    text = "".join(line(r) + "\n" for r in unit_rows(0)) + '{"codec": "fixed8"}\n'
    out = start(tmp_path, text)
    with pytest.raises(FlipLabError, match="line 4 is not a campaign row"):
        open_run(out, SPEC, REFERENCE)
    assert (out / RESULTS).read_text() == text
