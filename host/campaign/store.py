"""A campaign's folder: ``campaign.json`` (what it is) and ``results.jsonl`` (what it found).

``results.jsonl`` holds one JSON object per line, one per (codec, scope, rate, trial), with
exactly the keys of :data:`ROW_KEYS`. A unit's rows are appended with one ``write`` followed by
``flush`` and ``fsync``, so after a crash at most the last unit is incomplete or its last line
torn. :func:`open_run` checks that a folder holds the same campaign (refusing anything else,
never mixing), keeps the complete units, drops an incomplete unit and a torn last line (by an
atomic rewrite of the file) and returns what is already done (docs/decisions.md#7).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from host.campaign.grid import CampaignSpec, Unit
from host.errors import FlipLabError
from host.fileio import write_atomic

RESULTS = "results.jsonl"
CAMPAIGN = "campaign.json"
LOCK = ".sweep.lock"
ROW_KEYS = ("model", "model_sha256", "codec", "bits_per_weight", "channel", "rate", "trial",
            "scope", "seed", "samples", "correct", "accuracy", "failures", "flips", "nulled",
            "corrected", "elapsed_s", "target", "act_flips")
#: the rows written before activation faults (issue 12): read as target "weights", 0 act_flips
LEGACY_ROW_KEYS = ROW_KEYS[:-2]
#: the parts of campaign.json that must match for a folder to be resumed
IDENTITY = ("model_sha256", "grid", "data", "seed")
#: grid keys added after the first release, and their value in folders written before them
GRID_DEFAULTS = {"backend": "onnxruntime", "target": "weights", "act_bits": 8,
                 "act_signed": True, "act_layers": "all"}

# why a line of results.jsonl is not a row
TORN = "torn last line"          # the last line is not complete JSON: an interrupted write
EMPTY = "empty line"
INVALID = "invalid JSON"
NOT_OBJECT = "not a JSON object"
NOT_ROW = "not a campaign row"   # a JSON object without the campaign's keys
#: damage that an interrupted append can leave on the last line; anything else was not written
#: by :class:`ResultWriter` (or the file was damaged later)
DROPPABLE = (TORN, EMPTY)


@dataclass(frozen=True)
class DamagedLine:
    """A line of ``results.jsonl`` that is not a row: its number (from 1), why, and for
    :data:`NOT_ROW` the required keys it lacks (empty when its keys are merely not exactly
    the campaign's)."""

    line: int
    reason: str
    missing: tuple[str, ...] = ()

    def describe(self) -> str:
        """``line 7: invalid JSON``."""
        lacks = f" (lacks {', '.join(self.missing)})" if self.missing else ""
        return f"line {self.line}: {self.reason}{lacks}"


@dataclass
class ResultsFile:
    """``results.jsonl``, read: the rows, their text, and the lines that are not rows.

    Attributes:
        path: the file.
        rows: the rows in file order (JSON objects with the required keys).
        texts: each row's line as written (for rewriting the file unchanged).
        damaged: the lines skipped, in file order.
        last_line: the number of the file's last line (0 for an empty file).
        unterminated: the file does not end with a newline (its last row, if complete,
            is still a row; an append must not continue that line).
    """

    path: Path
    rows: list[dict] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    damaged: list[DamagedLine] = field(default_factory=list)
    last_line: int = 0
    unterminated: bool = False

    def warning(self) -> str | None:
        """One line for the user when lines were skipped, else None, e.g.
        ``results.jsonl: 2 damaged lines skipped (line 7: invalid JSON, line 12: torn last
        line)``."""
        return damage_warning(self.path.name, self.damaged)


def damage_warning(name: str, damaged: list[DamagedLine], *, shown: int = 8) -> str | None:
    """The one-line warning for the lines of ``name`` that were skipped; None if none were."""
    if not damaged:
        return None
    n = len(damaged)
    listed = ", ".join(d.describe() for d in damaged[:shown])
    more = f", … and {n - shown} more" if n > shown else ""
    return f"{name}: {n} damaged line{'s' if n != 1 else ''} skipped ({listed}{more})"


def damage_records(damaged: list[DamagedLine]) -> list[dict]:
    """The skipped lines as JSON-ready records ``{"line", "reason", "missing"}``."""
    return [{"line": d.line, "reason": d.reason, "missing": list(d.missing)} for d in damaged]


def read_results(path: Path, *, required: Sequence[str] = ROW_KEYS,
                 exact: bool = False) -> ResultsFile:
    """Read ``results.jsonl``: every line that is a JSON object with the ``required`` keys is
    a row; every other line is counted in ``damaged`` with its number and reason, never
    raised. The one reader of the format: ``host report``, ``host sweep`` and the resume
    logic (:func:`open_run`) all call it and decide what damage they accept.

    Args:
        path: the file.
        required: keys every row must have.
        exact: the row's keys must be exactly ``required``, in that order (what
            :class:`ResultWriter` writes).

    Raises:
        FlipLabError: the file cannot be read (missing, a folder, no permission).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FlipLabError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = data.decode("utf-8", errors="replace").split("\n")
    tail = lines.pop()  # text after the last newline: "" when the file ends with one
    found = ResultsFile(path, unterminated=bool(tail))
    if tail:
        lines.append(tail)
    found.last_line = len(lines)
    required = tuple(required)
    for number, text in enumerate(lines, 1):
        last = number == len(lines)
        if not text.strip():
            found.damaged.append(DamagedLine(number, EMPTY))
            continue
        try:
            row = json.loads(text)
        except ValueError:
            found.damaged.append(DamagedLine(number, TORN if last else INVALID))
            continue
        missing = () if not isinstance(row, dict) else tuple(k for k in required if k not in row)
        if isinstance(row, dict) and missing and required == ROW_KEYS \
                and tuple(row) == LEGACY_ROW_KEYS:
            row = {**row, "target": "weights", "act_flips": 0}
            missing = ()
        if not isinstance(row, dict) or missing or (exact and tuple(row) != required):
            if last and tail:  # an unterminated last line that is not a row: torn
                found.damaged.append(DamagedLine(number, TORN))
            elif not isinstance(row, dict):
                found.damaged.append(DamagedLine(number, NOT_OBJECT))
            else:
                found.damaged.append(DamagedLine(number, NOT_ROW, missing))
            continue
        found.rows.append(row)
        found.texts.append(text)
    return found


@dataclass
class Resumed:
    """What :func:`open_run` found in a campaign folder.

    Attributes:
        done: the keys (codec, scope, trial) of the units already finished.
        damaged: the damaged lines dropped (at most a torn last line: any other damage is
            refused).
        rows_dropped: rows of units left incomplete by an interruption (they are run again).
    """

    done: set[tuple[str, str, int]]
    damaged: list[DamagedLine]
    rows_dropped: int


def campaign_document(spec: CampaignSpec, reference: dict) -> dict:
    """The content of ``campaign.json``."""
    return {"model": spec.model, "model_sha256": spec.model_sha256, "reference": reference,
            "grid": spec.grid(), "data": spec.data, "seed": spec.seed}


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in IDENTITY:
        if key == "grid" and isinstance(old.get("grid"), dict):
            out += [f"grid.{k}" for k in sorted(set(old["grid"]) | set(new["grid"]))
                    if old["grid"].get(k, GRID_DEFAULTS.get(k)) != new["grid"].get(k)]
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

    def __enter__(self) -> RunLock:
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


def open_run(out: Path, spec: CampaignSpec, reference: dict) -> Resumed:
    """Prepare ``out`` for ``spec``; returns the units already finished there and what was
    dropped (a torn last line, the rows of units left incomplete).

    Raises:
        FlipLabError: ``out`` is a file, holds a different campaign, holds results without a
            ``campaign.json``, a results line other than the last is not valid JSON, or a
            line is JSON but not a row with exactly :data:`ROW_KEYS`.
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
        return Resumed(set(), [], 0)
    return _keep_complete(results, spec)


def _keep_complete(results: Path, spec: CampaignSpec) -> Resumed:
    found = read_results(results, exact=True)
    last = found.last_line
    for bad in found.damaged:
        if bad.line == last and bad.reason in DROPPABLE:
            continue  # an interrupted write: the torn last line is dropped below
        what = ("is not valid JSON" if bad.reason in (TORN, EMPTY, INVALID)
                else "is not a campaign row")
        raise FlipLabError(f"{results} line {bad.line} {what}; choose another --out")
    rows = found.rows
    units = {u.key: u for u in spec.units()}
    counts = Counter((r["codec"], r["scope"], r["trial"]) for r in rows)
    for key in counts:
        if key not in units:
            raise FlipLabError(f"{results} holds rows of unit {key} outside this campaign's grid; "
                               f"choose another --out")
    done = {k for k, n in counts.items() if n == spec.rows_of(units[k])}
    kept = [text for text, r in zip(found.texts, rows)
            if (r["codec"], r["scope"], r["trial"]) in done]
    if found.damaged or found.unterminated or len(kept) != len(rows):
        write_atomic(results, "".join(line + "\n" for line in kept).encode())
    return Resumed(done, found.damaged, len(rows) - len(kept))


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

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(out: Path) -> list[dict]:
    """The campaign rows of a campaign folder, skipping damaged lines (see :func:`read_results`)."""
    return read_results(Path(out) / RESULTS).rows


def unit_of(row: dict) -> Unit:
    return Unit(row["codec"], row["scope"], int(row["trial"]))
