"""`host sweep`, `host report`, `host robustness` as a user runs them: real processes, Ctrl-C
and resume, one-line errors, and rows that equal `host export` + `host inject` + `host eval`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from host.campaign import RESULTS, SweepSettings, make_spec, read_rows, run_sweep
from host.data import DataSpec

SWEEP = ["sweep", "digits_mlp", "--codecs", "fixed8,parity8", "--rates", "1e-4:1e-1:8",
         "--trials", "120", "--samples", "200", "--seed", "3"]
KEY = ["codec", "scope", "rate", "trial"]


def host(*args, cwd, timeout=300):
    p = subprocess.run([sys.executable, "-m", "host", *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def table(out: Path) -> pd.DataFrame:
    df = pd.DataFrame(read_rows(out)).drop(columns="elapsed_s")
    return df.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The campaign of SWEEP run once, without interruption, in this process."""
    out = tmp_path_factory.mktemp("ref") / "run"
    spec = make_spec("digits_mlp", SweepSettings(codecs="fixed8,parity8", rates="1e-4:1e-1:8",
                                                 trials=120, data=DataSpec(samples=200), seed=3))
    run_sweep(spec, out, progress=False, summary=False)
    return table(out)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_loses_nothing_and_resume_gives_the_uninterrupted_table(uninterrupted, tmp_path,
                                                                        workers):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "host", *SWEEP, "--out", out,
                             "--workers", workers], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # interrupt as soon as the first unit is on disk: the whole sweep takes seconds, and on a
    # loaded machine a later threshold can be passed by the sweep finishing first
    while _lines(out / RESULTS) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert "interrupted" in last and "resume" in last
    assert "Traceback" not in err
    partial = table(out)
    assert 0 < len(partial) < len(uninterrupted)  # it really was cut short
    # every row already written is final: it equals the uninterrupted run's row
    merged = partial.merge(uninterrupted, on=KEY, suffixes=("", "_ref"))
    assert len(merged) == len(partial)
    for column in ("correct", "flips", "nulled", "failures"):
        assert (merged[column] == merged[f"{column}_ref"]).all()

    code, _, err = host(*SWEEP, "--out", out, "--workers", workers, "--json", cwd=tmp_path)
    assert code == 0, err
    assert table(out).equals(uninterrupted)


def test_rows_equal_export_inject_eval_subprocesses(tmp_path):
    code, out, err = host("sweep", "digits_cnn", "--codecs", "parity8", "--rates", "2e-2",
                          "--trials", "2", "--samples", "150", "--seed", "9", "--scope", "model",
                          "--scope", "layer:conv2", "--out", "run", "--json", cwd=tmp_path)
    assert code == 0, err
    result = json.loads(out)
    assert Path(tmp_path / result["results"]).exists()
    assert {r["scope"] for r in result["summary"]} == {"model", "layer:conv2"}
    assert host("export", "digits_cnn", "--codec", "parity8", "-o", "w.bin",
                cwd=tmp_path)[0] == 0
    for row in read_rows(tmp_path / "run"):
        if row["rate"] == 0.0:
            continue
        extra = ["--tensors", "conv2"] if row["scope"] == "layer:conv2" else []
        code, out, err = host("inject", "w.bin", "--channel", f"bsc:{row['rate']}", "--seed", "9",
                              "--trial", row["trial"], *extra, "-o", "n.bin", "--json",
                              cwd=tmp_path)
        assert code == 0, err
        assert json.loads(out)["flips"] == row["flips"]
        code, out, err = host("eval", "--image", "n.bin", "--data", "digits", "--samples", "150",
                              "--json", cwd=tmp_path)
        assert code == 0, err
        ev = json.loads(out)
        assert (ev["correct"], ev["nulled"]) == (row["correct"], row["nulled"]), row


def test_report_and_robustness_commands(tmp_path):
    code, _, err = host("sweep", "digits_mlp", "--codecs", "fixed8,parity8", "--rates",
                        "1e-3:1e-1:4", "--trials", "3", "--samples", "100", "--out", "r",
                        cwd=tmp_path)
    assert code == 0, err
    code, out, err = host("report", "r", "--json", cwd=tmp_path)
    assert code == 0, err
    paths = json.loads(out)
    assert Path(tmp_path / paths["report"]).read_text().startswith("#")
    assert paths["plots"] and all((tmp_path / p).stat().st_size > 0 for p in paths["plots"])

    code, out, err = host("robustness", "digits_mlp", "--codec", "parity8", "--x", "0.95",
                          "--ci", "0.02", "--samples", "100", "--max-trials", "6", "--lo", "1e-4",
                          "--hi", "0.3", "--resolution", "0.5", "--json", cwd=tmp_path)
    assert code == 0, err
    r = json.loads(out)
    assert {"r", "ci_low", "ci_high", "inferences"} <= set(r)
    assert r["ci_low"] <= r["r"] <= r["ci_high"] and r["inferences"] > 0


@pytest.mark.parametrize("change, message", [
    (["--codecs", "fixed8,bogus"], "unknown codec"),
    (["--channel", "gauss"], "unknown channel"),
    (["--rates", "1e-1:1e-3:4"], "inverted"),
    (["--rates", "1e-3:1e-1:0"], "empty"),
    (["--rates", ""], "empty"),
    (["--trials", "0"], "at least 1"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, change, message):
    args = ["sweep", "digits_mlp", "--codecs", "fixed8", "--channel", "bsc", "--rates",
            "1e-3:1e-1:3", "--trials", "2", "--out", "bad"]
    flag = change[0]
    i = args.index(flag)
    args[i:i + 2] = change
    code, out, err = host(*args, cwd=tmp_path)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("host: error:") and message in err, err
    assert not (tmp_path / "bad").exists()


def test_different_campaign_in_out_folder_is_refused(tmp_path):
    base = ["sweep", "digits_mlp", "--codecs", "fixed8", "--rates", "1e-2", "--trials", "2",
            "--samples", "50", "--out", "o"]
    assert host(*base, cwd=tmp_path)[0] == 0
    before = (tmp_path / "o" / RESULTS).read_bytes()
    code, _, err = host(*base[:-2], "--seed", "1", "--out", "o", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "different campaign" in err, err
    code, _, err = host(*[a if a != "digits_mlp" else "digits_cnn" for a in base], cwd=tmp_path)
    assert code == 2 and "different campaign" in err and "model" in err, err
    assert (tmp_path / "o" / RESULTS).read_bytes() == before


def test_sweep_resume_prints_the_torn_line_it_dropped(tmp_path, capsys):
    from host.cli import main

    args = ["sweep", "digits_mlp", "--codecs", "fixed8", "--rates", "1e-2", "--trials", "1",
            "--samples", "50", "--seed", "4", "--out", str(tmp_path / "run"), "--json"]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "warning" not in first.err and json.loads(first.out)["damaged_lines"] == 0
    results = tmp_path / "run" / RESULTS
    whole = results.read_text()
    results.write_text(whole + whole.splitlines()[0][:30])  # a crash inside a write
    assert main(args) == 0
    again = capsys.readouterr()
    line = len(whole.splitlines()) + 1
    assert again.err == (f"host: warning: results.jsonl: 1 damaged line skipped "
                         f"(line {line}: torn last line)\n")
    out = json.loads(again.out)
    assert out["damaged_lines"] == 1 and out["units_run"] == 0
    assert results.read_text() == whole
