"""A campaign's folder: ``campaign.json`` (what it is) and ``results.jsonl`` (what it found).

``results.jsonl`` holds one JSON object per line, one per (codec, scope, rate, trial), with
exactly the keys of :data:`ROW_KEYS`. A unit's rows are appended with one ``write`` followed by
``flush`` and ``fsync``, so after a crash at most the last unit is incomplete or its last line
torn. :func:`open_run` checks that a folder holds the same campaign (refusing anything else,
never mixing), keeps the complete units, drops an incomplete unit and a torn last line (by an
atomic rewrite of the file) and returns what is already done.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from pathlib import Path

from host.campaign.grid import CampaignSpec, Unit
from host.errors import FlipLabError
from host.fileio import write_atomic

RESULTS = "results.jsonl"
CAMPAIGN = "campaign.json"
LOCK = ".sweep.lock"
ROW_KEYS = ("model", "model_sha256", "codec", "bits_per_weight", "channel", "rate", "trial",
            "scope", "seed", "samples", "correct", "accuracy", "failures", "flips", "nulled",
            "corrected", "elapsed_s")
#: the parts of campaign.json that must match for a folder to be resumed
IDENTITY = ("model_sha256", "grid", "data", "seed")


def campaign_document(spec: CampaignSpec, reference: dict) -> dict:
    """The content of ``campaign.json``."""
    return {"model": spec.model, "model_sha256": spec.model_sha256, "reference": reference,
            "grid": spec.grid(), "data": spec.data, "seed": spec.seed}


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in IDENTITY:
        if key == "grid" and isinstance(old.get("grid"), dict):
            out += [f"grid.{k}" for k in sorted(set(old["grid"]) | set(new["grid"]))
                    if old["grid"].get(k) != new["grid"].get(k)]
        elif old.get(key) != new.get(key):
            out.append("model" if key == "model_sha256" else key)
    return out


class RunLock:
    """An exclusive lock on a campaign folder (``.sweep.lock``, ``flock``): two sweeps never
    write one folder at the same time. Released when the process ends, whatever the cause."""

    def __init__(self, out: Path) -> None:
        self._file = open(Path(out) / LOCK, "a")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise FlipLabError(f"another sweep is writing to {out}; wait for it or choose "
                               f"another --out") from None

    def release(self) -> None:
        self._file.close()

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def prepare_folder(out: Path) -> None:
    """Create the campaign folder (refusing a file in its place)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FlipLabError(f"output folder {out} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlipLabError(f"cannot create output folder {out}: {exc.strerror}") from None


def open_run(out: Path, spec: CampaignSpec, reference: dict) -> set[tuple[str, str, int]]:
    """Prepare ``out`` for ``spec``; returns the keys of the units already finished there.

    Raises:
        FlipLabError: ``out`` is a file, holds a different campaign, holds results without a
            ``campaign.json``, or a results line other than the last is not valid JSON.
    """
    out = Path(out)
    prepare_folder(out)
    doc = campaign_document(spec, reference)
    camp, results = out / CAMPAIGN, out / RESULTS
    if camp.exists():
        try:
            old = json.loads(camp.read_text())
        except (OSError, ValueError):
            raise FlipLabError(f"{camp} is not readable JSON; choose another --out") from None
        diff = _differences(old if isinstance(old, dict) else {}, doc)
        if diff:
            raise FlipLabError(f"{out} holds a different campaign ({', '.join(diff)} differ); "
                               f"choose another --out")
    elif results.exists() and results.stat().st_size > 0:
        raise FlipLabError(f"{out} holds {RESULTS} but no {CAMPAIGN}; choose another --out")
    else:
        write_atomic(camp, (json.dumps(doc, indent=2) + "\n").encode())
    if not results.exists():
        return set()
    return _keep_complete(results, spec)


def _keep_complete(results: Path, spec: CampaignSpec) -> set[tuple[str, str, int]]:
    text = results.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    torn = lines.pop() if lines else ""  # text after the last newline: a torn write, or ""
    rows: list[tuple[str, dict]] = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except ValueError:
            if number == len(lines) and not torn:
                torn = line  # the last line is the torn one
                continue
            raise FlipLabError(f"{results} line {number} is not valid JSON; choose another --out")
        if not isinstance(row, dict) or tuple(row) != ROW_KEYS:
            raise FlipLabError(f"{results} line {number} is not a campaign row; choose another --out")
        rows.append((line, row))
    units = {u.key: u for u in spec.units()}
    counts = Counter((r["codec"], r["scope"], r["trial"]) for _, r in rows)
    for key in counts:
        if key not in units:
            raise FlipLabError(f"{results} holds rows of unit {key} outside this campaign's grid; "
                               f"choose another --out")
    done = {k for k, n in counts.items() if n == spec.rows_of(units[k])}
    kept = [line for line, r in rows if (r["codec"], r["scope"], r["trial"]) in done]
    if torn or len(kept) != len(rows):
        write_atomic(results, "".join(line + "\n" for line in kept).encode())
    return done


class ResultWriter:
    """Appends the rows of finished units to ``results.jsonl``, durably (flush + fsync)."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / RESULTS
        self._file = open(self.path, "a", encoding="utf-8")

    def append(self, rows: list[dict]) -> None:
        """Write one unit's rows in one write, then flush and fsync."""
        for row in rows:
            if tuple(row) != ROW_KEYS:
                raise ValueError(f"row keys {tuple(row)} are not the campaign's {ROW_KEYS}")
        self._file.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(out: Path) -> list[dict]:
    """The complete rows of a campaign folder (ignores a torn last line)."""
    path = Path(out) / RESULTS
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def unit_of(row: dict) -> Unit:
    return Unit(row["codec"], row["scope"], int(row["trial"]))
