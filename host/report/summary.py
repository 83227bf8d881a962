"""The summary of a campaign run: one row per (codec, scope) with R(0.99), R(0.95), AUC, gain.

:func:`summary_table` is the table ``host sweep`` prints and emits with ``--json``
(:func:`summary_records`; keys in :data:`SUMMARY_COLUMNS`, documented in ``docs/metrics.md``);
:func:`format_summary` and the ``format_*`` helpers render its cells as text. Nothing here
imports matplotlib (the plots are in :mod:`host.report.plots`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tabulate import tabulate

from host.codecs import get_codec
from host.errors import FlipLabError
from host.metrics import auc, improvement_factor, r_interpolated
from host.report.read import Run, read_run

CRITERIA = (("r99", 0.99), ("r95", 0.95))
"""The R(x) criteria of the summary (seed 000): key prefix and x."""

SUMMARY_COLUMNS = (
    "codec", "scope", "bits_per_weight", "overhead", "clean_accuracy", "reference_accuracy",
    "r99", "r99_status", "r99_monotone", "r99_interpolated", "r99_ci_low", "r99_ci_high",
    "r95", "r95_status", "r95_monotone", "r95_interpolated", "r95_ci_low", "r95_ci_high",
    "auc", "auc_log", "baseline", "improvement_r99", "improvement_r95", "trials_min", "complete",
)
"""The summary table's columns, in order; also the keys of each ``--json`` record."""

BOOTSTRAP_RESAMPLES = 2000


def summary_table(run_dir: str | Path | Run, *, baseline: str | None = None,
                  relative_to: Literal["reference", "clean"] = "reference") -> pd.DataFrame:
    """One row per (codec, scope): bits/weight, clean accuracy, R(0.99), R(0.95), AUC, gain.

    Args:
        run_dir: a run folder (or a :class:`Run` already read).
        baseline: the codec the improvement factors divide by (seed 000 table III: R with
            nulling / R without); default the campaign's first codec.
        relative_to: A for R(x): ``"reference"`` (the undistorted model's accuracy, as in the
            paper) or ``"clean"`` (each codec's own error-free accuracy).

    Returns:
        A DataFrame with the columns :data:`SUMMARY_COLUMNS` (meanings in docs/metrics.md).
    """
    run = run_dir if isinstance(run_dir, Run) else read_run(run_dir)
    if relative_to not in ("reference", "clean"):
        raise FlipLabError(f"relative_to must be 'reference' or 'clean', got {relative_to!r}")
    df = run.results
    codecs = run.codecs()
    if baseline is None:
        baseline = codecs[0]
    elif baseline not in codecs:
        raise FlipLabError(f"baseline codec {baseline!r} is not in this run "
                           f"({', '.join(codecs)})")
    seed = run.campaign.get("seed")
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0
    rows = []
    for scope in run.scopes():
        for codec in codecs:
            sub = df[(df["codec"] == codec) & (df["scope"] == scope)]
            if sub.empty:
                continue
            rows.append(_summary_row(run, sub, codec, scope, relative_to, seed))
    table = pd.DataFrame(rows)
    for _scope, group in table.groupby("scope", sort=False):
        base = group[group["codec"] == baseline]
        for prefix, _ in CRITERIA:
            r_base = float(base[prefix].iloc[0]) if not base.empty else math.nan
            table.loc[group.index, f"improvement_{prefix}"] = [
                improvement_factor(float(r), r_base) for r in group[prefix]]
    table["baseline"] = baseline
    return table[list(SUMMARY_COLUMNS)]


def _summary_row(run: Run, sub: pd.DataFrame, codec: str, scope: str, relative_to: str,
                 seed: int) -> dict:
    clean = sub[sub["rate"] == 0.0]["accuracy"]
    clean_accuracy = float(clean.mean()) if not clean.empty else math.nan
    a = run.reference_accuracy if relative_to == "reference" else clean_accuracy
    bits = float(sub["bits_per_weight"].iloc[0])
    positive = sub[sub["rate"] > 0]
    row: dict = {
        "codec": codec, "scope": scope, "bits_per_weight": bits,
        "overhead": get_codec(codec).overhead(),  # check bits per data bit (parity8: 1/7)
        "clean_accuracy": clean_accuracy, "reference_accuracy": run.reference_accuracy,
    }
    for prefix, x in CRITERIA:
        if math.isnan(a) or a <= 0:
            row.update({prefix: math.nan, f"{prefix}_status": "no_data",
                        f"{prefix}_monotone": True, f"{prefix}_interpolated": math.nan,
                        f"{prefix}_ci_low": math.nan, f"{prefix}_ci_high": math.nan})
            continue
        est = r_interpolated(sub, x, a, n_boot=BOOTSTRAP_RESAMPLES, seed=seed)
        row.update({prefix: est.grid.rber, f"{prefix}_status": est.grid.status,
                    f"{prefix}_monotone": est.grid.monotone,
                    f"{prefix}_interpolated": est.rber_interpolated,
                    f"{prefix}_ci_low": est.ci_low, f"{prefix}_ci_high": est.ci_high})
    has_clean = not clean.empty
    n_positive = positive["rate"].nunique()
    row["auc"] = auc(sub) if has_clean and n_positive >= 1 else math.nan
    row["auc_log"] = auc(sub, scale="log") if n_positive >= 2 else math.nan
    row["trials_min"] = int(positive.groupby("rate").size().min()) if n_positive else 0
    row["complete"] = (codec, scope) not in run.incomplete
    return row


def summary_records(table: pd.DataFrame) -> list[dict]:
    """The summary as JSON-ready records: plain Python values, NaN as None."""
    records = []
    for row in table.to_dict(orient="records"):
        clean: dict[str, object] = {}
        for key, value in row.items():
            if isinstance(value, (np.bool_, bool)):
                clean[key] = bool(value)
            elif isinstance(value, (np.integer,)):
                clean[key] = int(value)
            elif isinstance(value, (float, np.floating)):
                clean[key] = None if math.isnan(value) else float(value)
            else:
                clean[key] = value
        records.append(clean)
    return records


def format_rber(value: float, status: str, next_rate: float | None = None) -> str:
    """A grid R(x) for a table cell: the number, with what its status means."""
    if status == "above_grid":
        return f"≥{value:.3g}"
    if status == "below_grid":
        return "0" if next_rate is None or math.isnan(next_rate) else f"0 (<{next_rate:.3g})"
    if math.isnan(value):
        return "clean fails" if status == "clean_fails" else "—"
    return f"{value:.3g}"


def _interp_cell(row: pd.Series, prefix: str) -> str:
    value = row[f"{prefix}_interpolated"]
    if math.isnan(value):
        return "—"
    return f"{value:.3g} [{row[f'{prefix}_ci_low']:.3g}, {row[f'{prefix}_ci_high']:.3g}]"


def format_percent(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.2f} %"


def format_factor(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}x"


def _next_rate(run: Run, codec: str, scope: str, r: float) -> float:
    rates = np.sort(run.results[(run.results["codec"] == codec)
                                & (run.results["scope"] == scope)]["rate"].unique())
    above = rates[rates > r]
    return float(above[0]) if above.size else math.nan


def format_summary(table: pd.DataFrame, run: Run | None = None, *,
                   tablefmt: str = "simple") -> str:
    """The summary as a text table (``tablefmt`` as tabulate's, e.g. "simple", "github")."""
    headers = ["codec", "scope", "bits/weight", "overhead", "clean acc.",
               "R(0.99) grid", "R(0.99) interp. [95 % CI]", "R(0.95) grid",
               "R(0.95) interp. [95 % CI]", "AUC", "AUC (log p)",
               f"R(0.99) gain vs {table['baseline'].iloc[0] if len(table) else '—'}",
               "R(0.95) gain", "trials"]
    body = []
    for _, row in table.iterrows():
        scope = run.display_scope(row["scope"]) if run is not None else row["scope"]
        cells = [row["codec"], scope, f"{row['bits_per_weight']:g}",
                 f"{100 * row['overhead']:.1f} %", format_percent(row["clean_accuracy"])]
        for prefix, _ in CRITERIA:
            nxt = (_next_rate(run, row["codec"], row["scope"], row[prefix])
                   if run is not None and row[f"{prefix}_status"] == "below_grid" else None)
            mark = "" if row[f"{prefix}_monotone"] else " *"
            cells += [format_rber(row[prefix], row[f"{prefix}_status"], nxt) + mark,
                      _interp_cell(row, prefix)]
        cells += ["—" if math.isnan(row["auc"]) else f"{row['auc']:.3f}",
                  "—" if math.isnan(row["auc_log"]) else f"{row['auc_log']:.3f}",
                  format_factor(row["improvement_r99"]), format_factor(row["improvement_r95"]),
                  f"{row['trials_min']}" + ("" if row["complete"] else " (partial)")]
        body.append(cells)
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)
