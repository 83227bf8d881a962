"""Error profiles of real memories: fit one from dumps of a golden image, read and write it.

A *profile* says what a memory does to the stored bits, in the terms a channel can replay
(:mod:`host.channels.profile`):

* ``transient``: per-read error rates of the cells that are not permanently wrong, per stored
  value (``p01``: a stored 0 reads 1; ``p10``: a stored 1 reads 0), overall and per bit position
  in the stored field (MSB first, one list per field width);
* ``permanent``: the fraction of cells wrong in *every* dump, per stored value, with their
  spatial clustering: a negative-binomial ``k`` over blocks of ``block_bytes`` bytes and a
  weight per bit column of the 32-bit memory word (mean 1);
* a report part that is not replayed: the same rates per tensor, the spatial statistics of all
  faulty cells (index of dispersion with its chi-square test, multi-bit fields against i.i.d.).

Every rate carries a 95 % Clopper-Pearson interval (``scipy.stats.binomtest``). The file is
TOML, schema ``fliplab-profile`` version 1 (docs/error-models.md#profiles), written atomically.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.errors import FlipLabError
from host.image import WORD_BITS, Image, write_atomic

SCHEMA = "fliplab-profile"
VERSION = 1
CONFIDENCE = 0.95
DEFAULT_BLOCK_BYTES = 4096


# ---------------------------------------------------------------------------------------------
# the replayed model


@dataclass(frozen=True)
class Profile:
    """The replayable part of an error profile (rates at scale 1).

    Attributes:
        transient_p01, transient_p10: per-read rates of non-permanent cells, by stored value.
        positions: field width q -> (p01 list, p10 list), MSB first (index 0 = bit q - 1).
        permanent_p01, permanent_p10: fraction of cells permanently wrong, by stored value.
        block_bytes: block size of the permanent map's clustering (bytes, >= 1).
        block_k: negative-binomial shape of faults per block (``inf``: no clustering).
        columns: weight of each of the 32 bit columns of a memory word (mean 1), or None for
            uniform columns.
        source: where the numbers come from (a file, a paper).
    """

    transient_p01: float = 0.0
    transient_p10: float = 0.0
    positions: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)
    permanent_p01: float = 0.0
    permanent_p10: float = 0.0
    block_bytes: int = DEFAULT_BLOCK_BYTES
    block_k: float = math.inf
    columns: tuple[float, ...] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("transient_p01", "transient_p10", "permanent_p01", "permanent_p10"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                raise FlipLabError(f"profile: {name} = {v!r} is not a rate in [0, 1]")
        for q, (a, b) in self.positions.items():
            if len(a) != q or len(b) != q:
                raise FlipLabError(f"profile: per-position rates of {q}-bit fields need {q} "
                                   f"values each, got {len(a)} and {len(b)}")
            if any(not 0.0 <= v <= 1.0 for v in (*a, *b)):
                raise FlipLabError(f"profile: a per-position rate of {q}-bit fields is outside "
                                   f"[0, 1]")
        if not isinstance(self.block_bytes, int) or self.block_bytes < 1:
            raise FlipLabError(f"profile: block_bytes must be an integer >= 1, "
                               f"got {self.block_bytes!r}")
        if not self.block_k > 0.0:
            raise FlipLabError(f"profile: block_k must be > 0 (inf: no clustering), "
                               f"got {self.block_k!r}")
        if self.columns is not None:
            c = self.columns
            if len(c) != WORD_BITS or any(v < 0.0 or not math.isfinite(v) for v in c) \
                    or sum(c) <= 0.0:
                raise FlipLabError(f"profile: columns must be {WORD_BITS} non-negative weights "
                                   f"with a positive sum")

    @property
    def reference_rate(self) -> float:
        """Mean raw bit error rate at scale 1 on data with as many 0s as 1s:
        ``(p01 + p10) / 2`` of the transient and the permanent parts together. A profile
        channel at sweep rate ``r`` replays the profile at scale ``r / reference_rate``."""
        return 0.5 * (self.transient_p01 + self.transient_p10
                      + self.permanent_p01 + self.permanent_p10)

    def column_weights(self) -> np.ndarray:
        """The 32 column weights normalised to mean 1 (all ones when uniform)."""
        if self.columns is None:
            return np.ones(WORD_BITS)
        c = np.asarray(self.columns, dtype=np.float64)
        return c * (WORD_BITS / c.sum())

    def position_rates(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        """Transient (p01, p10) per bit position j = 0 (LSB) .. q - 1 of a q-bit field; the
        overall transient rates where the profile has no per-position rates for q."""
        if q in self.positions:
            a, b = self.positions[q]
            return np.asarray(a[::-1], dtype=np.float64), np.asarray(b[::-1], dtype=np.float64)
        return np.full(q, self.transient_p01), np.full(q, self.transient_p10)


# ---------------------------------------------------------------------------------------------
# statistics


def rate_with_interval(errors: int, trials: int) -> dict:
    """``{"rate", "low", "high", "errors", "bits"}``: the proportion with its 95 % Clopper-Pearson
    interval (``scipy.stats.binomtest(...).proportion_ci(method="exact")``); rate 0 and
    interval [0, 0] when there are no trials."""
    from scipy import stats  # the fit needs scipy, the replay does not

    errors, trials = int(errors), int(trials)
    if trials == 0:
        return {"rate": 0.0, "low": 0.0, "high": 0.0, "errors": 0, "bits": 0}
    ci = stats.binomtest(errors, trials).proportion_ci(CONFIDENCE, method="exact")
    return {"rate": errors / trials, "low": float(ci.low), "high": float(ci.high),
            "errors": errors, "bits": trials}


def dispersion(counts: np.ndarray, exposure: np.ndarray) -> dict:
    """How unevenly ``counts`` (faults per unit) spread over units of ``exposure`` bits each,
    against i.i.d. faults (counts ~ Binomial/Poisson proportional to exposure).

    Returns ``index`` (chi-square over degrees of freedom; 1 for i.i.d.), ``p_value`` of the
    chi-square heterogeneity test (small: not i.i.d.), and ``k``, the negative-binomial shape
    by the method of moments with exposures (``Var c_i = E_i + E_i^2 / k``; ``inf`` when the
    counts are not over-dispersed). Units with no exposure are left out.
    """
    from scipy import stats

    keep = exposure > 0
    c, n = counts[keep].astype(np.float64), exposure[keep].astype(np.float64)
    total = c.sum()
    if c.size < 2 or total == 0:
        return {"units": int(c.size), "faults": int(total), "index": None, "p_value": None,
                "k": math.inf}
    e = n * (total / n.sum())
    chi2 = float(np.sum((c - e) ** 2 / e))
    df = c.size - 1
    inv_k = float(np.sum((c - e) ** 2 - c) / np.sum(e ** 2))
    return {"units": int(c.size), "faults": int(total), "index": chi2 / df,
            "p_value": float(stats.chi2.sf(chi2, df)),
            "k": 1.0 / inv_k if inv_k > 0 else math.inf}


# ---------------------------------------------------------------------------------------------
# the fit


@dataclass(frozen=True)
class _Cells:
    """The eligible cells of an image: absolute payload bit, tensor index, field width and
    position in the field (0 = LSB), field number (global), stored bit."""

    bit: np.ndarray
    tensor: np.ndarray
    width: np.ndarray
    position: np.ndarray
    field: np.ndarray
    stored: np.ndarray


def _cells(golden: Image) -> _Cells:
    bits, tens, width, pos, fld = [], [], [], [], []
    first_field = 0
    for i, region in enumerate(golden.regions()):
        n = region.n_fields * region.field_bits
        local = np.arange(n, dtype=np.int64)
        bits.append(region.start_bit + local)
        tens.append(np.full(n, i, dtype=np.int32))
        width.append(np.full(n, region.field_bits, dtype=np.int32))
        pos.append((local % region.field_bits).astype(np.int32))
        fld.append(first_field + local // region.field_bits)
        first_field += region.n_fields
    def cat(xs: list, dt: type) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0, dtype=dt)

    bit = cat(bits, np.int64)
    g = np.unpackbits(golden.payload, bitorder="little")
    return _Cells(bit, cat(tens, np.int32), cat(width, np.int32), cat(pos, np.int32),
                  cat(fld, np.int64), g[bit] if bit.size else np.zeros(0, dtype=np.uint8))


def _split_rates(wrong: np.ndarray, stored: np.ndarray, reads: int) -> dict:
    """p01 / p10 with intervals: ``wrong`` is the number of wrong reads per cell."""
    zero = stored == 0
    return {"p01": rate_with_interval(wrong[zero].sum(), reads * zero.sum()),
            "p10": rate_with_interval(wrong[~zero].sum(), reads * (~zero).sum())}


def _per_position(cells: _Cells, wrong: np.ndarray, reads: int, mask: np.ndarray) -> dict:
    out = {}
    for q in sorted(set(cells.width.tolist())):
        rows: dict[str, list] = {"p01": [], "p10": []}
        for j in range(q - 1, -1, -1):  # MSB first
            sel = mask & (cells.width == q) & (cells.position == j)
            r = _split_rates(wrong[sel], cells.stored[sel], reads)
            rows["p01"].append(r["p01"])
            rows["p10"].append(r["p10"])
        out[str(q)] = rows
    return out


def _spatial(cells: _Cells, faulty: np.ndarray, block_bytes: int) -> dict:
    """Dispersion of the ``faulty`` cells over blocks and bit columns, and multi-bit fields."""
    from scipy import stats

    block_bits = block_bytes * 8
    block = cells.bit // block_bits
    nb = int(block.max()) + 1 if block.size else 0
    col = cells.bit % WORD_BITS
    per_block = dispersion(np.bincount(block[faulty], minlength=nb),
                           np.bincount(block, minlength=nb))
    col_counts = np.bincount(col[faulty], minlength=WORD_BITS)
    col_exposure = np.bincount(col, minlength=WORD_BITS)
    per_column = dispersion(col_counts, col_exposure)
    total = int(col_counts.sum())
    rate_c = np.where(col_exposure > 0, col_counts / np.maximum(col_exposure, 1), 0.0)
    mean = total / col_exposure.sum() if col_exposure.sum() else 0.0
    per_column["counts"] = col_counts.tolist()
    per_column["weights"] = (rate_c / mean).tolist() if mean > 0 else [1.0] * WORD_BITS
    per_column["top_share"] = float(col_counts.max() / total) if total else 0.0
    # fields with >= 2 faulty cells, against independent cells at the same rate
    n_fields = int(cells.field.max()) + 1 if cells.field.size else 0
    per_field = np.bincount(cells.field[faulty], minlength=n_fields)
    field_width = np.zeros(n_fields, dtype=np.int64)
    field_width[cells.field] = cells.width
    p = faulty.mean() if faulty.size else 0.0
    expected = float(np.sum(stats.binom.sf(1, field_width[field_width > 0], p)))
    per_block["block_bytes"] = block_bytes
    return {"faulty_cells": int(faulty.sum()), "blocks": per_block, "columns": per_column,
            "fields": {"multi_bit": int(np.count_nonzero(per_field >= 2)),
                       "expected_iid": expected}}


def characterize(golden: Image, dumps: Sequence[Image], *,
                 block_bytes: int = DEFAULT_BLOCK_BYTES, source: str = "") -> dict:
    """Fit an error profile from dumps of ``golden`` (each an Image of the same layout).

    Only the tensors' stored bits count (padding is not memory a model uses). With one dump,
    permanent and transient cells cannot be told apart: every error is counted as transient
    and the permanent part is 0 (``permanent.known = false``).

    Returns:
        the profile document (a dict, see docs/error-models.md#profiles); ``profile_of`` turns
        it into the replayable :class:`Profile`.
    """
    if not dumps:
        raise FlipLabError("characterize needs at least one dump of the golden image")
    if isinstance(block_bytes, bool) or not isinstance(block_bytes, int) or block_bytes < 1:
        raise FlipLabError(f"block size must be a positive number of bytes, got {block_bytes!r}")
    cells = _cells(golden)
    reads = len(dumps)
    wrong = np.zeros(cells.bit.size, dtype=np.int32)
    for d in dumps:
        if d.payload.size != golden.payload.size:
            raise FlipLabError(f"a dump has {d.payload.size} payload bytes, the golden image "
                               f"{golden.payload.size}")
        wrong += np.unpackbits(d.payload, bitorder="little")[cells.bit] != cells.stored
    everywhere = np.ones(cells.bit.size, dtype=bool)
    known = reads >= 2
    permanent = (wrong == reads) if known else np.zeros(cells.bit.size, dtype=bool)
    transient_reads = np.where(permanent, 0, wrong)
    live = ~permanent
    tensors = []
    for i, t in enumerate(golden.tensors):
        sel = cells.tensor == i
        tensors.append({"name": t.name, "codec": t.codec,
                        **_split_rates(wrong[sel], cells.stored[sel], reads)})
    zero = cells.stored == 0
    return {
        "schema": SCHEMA, "version": VERSION, "source": source, "dumps": reads,
        "cells": int(cells.bit.size), "confidence": CONFIDENCE,
        "overall": _split_rates(wrong, cells.stored, reads),
        "per_position": _per_position(cells, wrong, reads, everywhere),
        "transient": {**_split_rates(transient_reads[live], cells.stored[live], reads),
                      "per_position": _per_position(cells, transient_reads, reads, live),
                      "cells": int(np.count_nonzero(live & (wrong > 0)))},
        "permanent": {"known": known,
                      "p01": rate_with_interval(permanent[zero].sum(), zero.sum()),
                      "p10": rate_with_interval(permanent[~zero].sum(), (~zero).sum()),
                      "cells": int(permanent.sum()),
                      "spatial": _spatial(cells, permanent, block_bytes)},
        "spatial": _spatial(cells, wrong > 0, block_bytes),
        "tensors": tensors,
    }


def profile_of(doc: dict, *, source: str = "") -> Profile:
    """The replayable :class:`Profile` of a profile document (as :func:`characterize` makes
    and :func:`read_profile` reads)."""
    try:
        tr, pm = doc["transient"], doc["permanent"]
        positions = {int(q): (tuple(r["rate"] for r in rows["p01"]),
                              tuple(r["rate"] for r in rows["p10"]))
                     for q, rows in tr.get("per_position", {}).items()}
        spatial = pm.get("spatial", {})
        k = spatial.get("blocks", {}).get("k", math.inf)
        weights = spatial.get("columns", {}).get("weights")
        has_perm = pm["p01"]["rate"] > 0 or pm["p10"]["rate"] > 0
        return Profile(
            transient_p01=float(tr["p01"]["rate"]), transient_p10=float(tr["p10"]["rate"]),
            positions=positions,
            permanent_p01=float(pm["p01"]["rate"]), permanent_p10=float(pm["p10"]["rate"]),
            block_bytes=int(spatial.get("blocks", {}).get("block_bytes", DEFAULT_BLOCK_BYTES)),
            block_k=math.inf if k is None else float(k),
            columns=tuple(float(w) for w in weights) if has_perm and weights else None,
            source=source or str(doc.get("source", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FlipLabError(f"profile {source or ''} is malformed: missing or mistyped {exc}"
                           .replace("  ", " ")) from None


# ---------------------------------------------------------------------------------------------
# TOML


def _toml_value(v: object) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return repr(v)
    if v is None:
        return '"none"'
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def to_toml(doc: dict, _prefix: str = "") -> str:
    """``doc`` (nested dicts of numbers, strings, lists) as TOML; tables of scalars first.
    ``None`` is written as the string ``"none"`` (TOML has no null)."""
    lines, tables, arrays = [], [], []
    for k, v in doc.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{_prefix}.{_toml_key(k)}" if _prefix else _toml_key(k)
        out += f"\n[{name}]\n" + to_toml(v, name)
    for k, v in arrays:
        name = f"{_prefix}.{_toml_key(k)}" if _prefix else _toml_key(k)
        for item in v:
            out += f"\n[[{name}]]\n" + to_toml(item, name)
    return out


def _nulls(x: object) -> object:
    if isinstance(x, dict):
        return {k: _nulls(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nulls(v) for v in x]
    return None if x == "none" else x


def write_profile(doc: dict, path: str | os.PathLike) -> None:
    """Write a profile document as TOML, atomically."""
    write_atomic(path, to_toml(doc).encode())


def read_profile(path: str | os.PathLike) -> dict:
    """Read a profile document, checking its schema and version."""
    try:
        doc = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlipLabError(f"profile {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlipLabError(f"cannot read profile {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FlipLabError(f"profile {path} is not valid TOML: {exc}") from None
    if doc.get("schema") != SCHEMA:
        raise FlipLabError(f"{path} is not a FlipLab error profile (schema {doc.get('schema')!r})")
    if doc.get("version") != VERSION:
        raise FlipLabError(f"profile {path} has version {doc.get('version')!r}; this FlipLab "
                           f"reads version {VERSION}")
    return dict(_nulls(doc))  # type: ignore[call-overload]  # a dict in, a dict out


def load_profile(path: str | os.PathLike) -> Profile:
    """The replayable profile in a profile file."""
    return profile_of(read_profile(path), source=str(path))
