"""The fuzz harness (fuzz/fuzz_parsers.py): its mutator reaches the schema, its oracle can fail,
and a short coverage-guided run over real exports finds nothing. ``make fuzz`` runs it longer."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

HARNESS = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_parsers.py"
FUZZ_SECONDS = 25


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("fuzz_parsers", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, harness):
    folder = tmp_path_factory.mktemp("fuzz") / "corpus"
    harness.make_seeds(folder)
    return folder


def test_seeds_are_accepted(harness, corpus):
    """The real exports parse and decode: the run starts from valid inputs."""
    seeds = sorted(corpus.iterdir())
    assert len(seeds) >= 30
    for path in seeds:
        data = path.read_bytes()
        if data[0] % 4 in (harness.IMAGE, harness.MANIFEST):
            (harness._image if data[0] % 4 == harness.IMAGE else harness._manifest)(data[1:])


def test_table_mutations_pass_the_crcs_and_reach_the_schema(harness, corpus):
    from host.errors import FlipLabError

    rng = random.Random(0)
    images = [p.read_bytes() for p in sorted(corpus.iterdir()) if p.read_bytes()[0] % 4 == 0]
    messages = set()
    for i in range(400):
        data = images[i % len(images)]
        mutated = harness.mutate_table(data[1:], rng)
        assert mutated is not None
        try:
            harness._image(mutated)
        except FlipLabError as exc:
            assert "CRC" not in str(exc)
            messages.add(str(exc).split(":")[1])
    assert len(messages) > 10  # many different fields were reached


def test_the_oracle_fails_on_other_exceptions_and_limits(harness, monkeypatch):
    harness.run_one(bytes([harness.CODEC]) + b"fixed99")  # a FlipLabError: fine
    monkeypatch.setattr(harness, "get_codec", lambda spec: {}[spec])
    with pytest.raises(KeyError):
        harness.run_one(bytes([harness.CODEC]) + b"fixed8")
    peaks = iter([100.0, 700.0])  # peak RSS before and after the parse, MB
    monkeypatch.setattr(harness, "_peak_mb", lambda: next(peaks))
    monkeypatch.setattr(harness, "get_codec", lambda spec: None)
    with pytest.raises(harness.Failure, match="grew peak memory by 600 MB"):
        harness.run_one(bytes([harness.CODEC]) + b"fixed8")
    monkeypatch.undo()
    monkeypatch.setattr(harness, "get_codec", lambda spec: bytearray(1 << 20))
    harness.run_one(bytes([harness.CODEC]) + b"fixed8")  # 1 MB is within the limits
    monkeypatch.setattr(harness, "MAX_SECONDS", 0.0)
    monkeypatch.setattr(harness, "get_codec", lambda spec: None)  # any time at all is too long
    with pytest.raises(harness.Failure, match="took"):
        harness.run_one(bytes([harness.CODEC]) + b"fixed8")


def test_short_fuzz_run_finds_nothing(corpus, tmp_path):
    p = subprocess.run(
        [sys.executable, str(HARNESS), str(corpus), f"-max_total_time={FUZZ_SECONDS}",
         "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", "-seed=1"],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 120, stdin=subprocess.DEVNULL)
    found = sorted(p.name for p in tmp_path.iterdir())
    assert p.returncode == 0 and not found, (found, p.stderr[-4000:])
    assert "Done" in p.stderr
