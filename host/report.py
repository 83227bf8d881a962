"""``host report``: the summary table, plots and ``report.md`` of a campaign run folder.

A run folder holds ``results.jsonl`` (one JSON object per trial, the columns listed in
``docs/metrics.md``) and ``campaign.json`` (the campaign definition with the reference, i.e.
undistorted, model's accuracy). :func:`write_report` writes ``report.md`` and PNG plots into
``plots/``; :func:`summary_table` is the table ``host sweep`` prints and emits with ``--json``
(:func:`summary_records`; keys in :data:`SUMMARY_COLUMNS`, documented in ``docs/metrics.md``).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from tabulate import tabulate

from host.codecs import get_codec
from host.errors import FlipLabError
from host.fileio import write_atomic
from host.metrics import (
    accuracy_vs_bit_errors,
    auc,
    improvement_factor,
    r_interpolated,
    summarise,
)

RESULTS_FILE = "results.jsonl"
CAMPAIGN_FILE = "campaign.json"
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"

REQUIRED_COLUMNS = ("codec", "bits_per_weight", "rate", "trial", "scope", "accuracy")
"""Columns a results row must have; the others of the schema are used when present."""

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


@dataclass
class Run:
    """A campaign run folder, read.

    Attributes:
        path: the run folder.
        results: one row per trial (duplicates of a (codec, scope, rate, trial) dropped, the
            last written kept).
        campaign: the parsed ``campaign.json`` ({} when absent).
        notes: what the report must say about the data (partial run, ignored lines, …).
        incomplete: (codec, scope) pairs whose grid is not complete.
    """

    path: Path
    results: pd.DataFrame
    campaign: dict
    notes: list[str] = field(default_factory=list)
    incomplete: set[tuple[str, str]] = field(default_factory=set)

    @property
    def reference_accuracy(self) -> float:
        """A: the undistorted model's accuracy (fraction), NaN when the campaign lacks it."""
        return _number(self.campaign.get("reference", {}), "accuracy")

    @property
    def reference_correct(self) -> int | None:
        """Samples the undistorted model classifies correctly, None when unknown."""
        value = _number(self.campaign.get("reference", {}), "correct")
        return None if math.isnan(value) else int(value)

    def codecs(self) -> list[str]:
        """Codecs in the campaign's order, then any others in the order they appear."""
        return _ordered(grid_value(self.campaign, "codecs"), self.results["codec"])

    def scopes(self) -> list[str]:
        """Scopes, "model" first, then the campaign's order, then the order they appear."""
        found = _ordered(grid_value(self.campaign, "scopes"), self.results["scope"])
        return sorted(found, key=lambda s: s != "model")


def grid_value(campaign: dict, key: str) -> object:
    """A grid entry of ``campaign.json`` (``codecs``, ``channel``, ``rates``, ``trials``,
    ``scopes``): under ``"grid"`` as ``host sweep`` writes it, else at the top level."""
    grid = campaign.get("grid")
    if isinstance(grid, dict) and key in grid:
        return grid[key]
    return campaign.get(key)


def _number(obj: object, key: str) -> float:
    if not isinstance(obj, dict):
        return math.nan
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _ordered(declared: object, observed: pd.Series) -> list[str]:
    seen = list(dict.fromkeys(observed.astype(str)))
    first = [str(c) for c in declared if str(c) in seen] if isinstance(declared, list) else []
    return first + [c for c in seen if c not in first]


# --------------------------------------------------------------------------- reading

def read_run(run_dir: str | Path) -> Run:
    """Read a run folder's ``results.jsonl`` and ``campaign.json``.

    An interrupted write may leave the last line of ``results.jsonl`` incomplete: it is
    ignored and noted. Any other unreadable line, a missing or empty results file, or rows
    without the required columns raise a one-line :class:`FlipLabError`.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FlipLabError(f"run folder {path} does not exist")
    results_path = path / RESULTS_FILE
    if not results_path.is_file():
        raise FlipLabError(f"no results in {path}: {RESULTS_FILE} is missing")
    notes: list[str] = []
    rows = _read_jsonl(results_path, notes)
    if not rows:
        raise FlipLabError(f"{results_path} holds no trials")
    df = pd.DataFrame.from_records(rows)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise FlipLabError(f"{results_path}: rows lack the column(s) {', '.join(missing)}")
    try:
        df["rate"] = df["rate"].astype(float)
        df["accuracy"] = df["accuracy"].astype(float)
        df["bits_per_weight"] = df["bits_per_weight"].astype(float)
        df["trial"] = df["trial"].astype(int)
    except (TypeError, ValueError):
        raise FlipLabError(f"{results_path}: rate, accuracy, bits_per_weight and trial must "
                           "be numbers") from None
    df["codec"] = df["codec"].astype(str)
    df["scope"] = df["scope"].astype(str)
    key = ["codec", "scope", "rate", "trial"]
    duplicated = int(df.duplicated(key, keep="last").sum())
    if duplicated:
        df = df.drop_duplicates(key, keep="last").reset_index(drop=True)
        notes.append(f"{duplicated} repeated trial row(s) in {RESULTS_FILE}; the last written "
                     "of each was kept.")
    campaign = _read_campaign(path / CAMPAIGN_FILE, notes)
    run = Run(path, df, campaign, notes)
    _check_completeness(run)
    return run


def _read_jsonl(path: Path, notes: list[str]) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlipLabError(f"cannot read {path}: {exc}") from None
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    rows: list[dict] = []
    for k, (lineno, line) in enumerate(numbered):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            if k == len(numbered) - 1:
                notes.append(f"the last line of {RESULTS_FILE} (line {lineno}) is incomplete, "
                             "probably an interrupted write; it was ignored.")
                continue
            raise FlipLabError(f"{path}:{lineno}: not a JSON object")
        rows.append(row)
    return rows


def _read_campaign(path: Path, notes: list[str]) -> dict:
    if not path.is_file():
        notes.append(f"{CAMPAIGN_FILE} is missing: no reference accuracy, no grid to check "
                     "completeness against.")
        return {}
    try:
        campaign = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FlipLabError(f"cannot read {path}: {exc}") from None
    if not isinstance(campaign, dict):
        raise FlipLabError(f"{path} is not a JSON object")
    return campaign


def _check_completeness(run: Run) -> None:
    """Note the points of the campaign grid that have fewer trials than planned, or none."""
    df, campaign = run.results, run.campaign
    trials = grid_value(campaign, "trials")
    trials = trials if isinstance(trials, int) and not isinstance(trials, bool) else None
    rates = grid_value(campaign, "rates")
    planned_rates = ([float(r) for r in rates if float(r) > 0]
                     if isinstance(rates, list) and all(isinstance(r, (int, float)) for r in rates)
                     else None)
    counts = df[df["rate"] > 0].groupby(["codec", "scope", "rate"]).size().to_dict()
    has_clean = set(zip(df.loc[df["rate"] == 0, "codec"], df.loc[df["rate"] == 0, "scope"]))
    short: list[str] = []
    for codec in run.codecs():
        for scope in run.scopes():
            observed = {r: n for (c, s, r), n in counts.items() if c == codec and s == scope}
            grid = planned_rates if planned_rates is not None else sorted(observed)
            for rate in grid:
                n = sum(int(k) for r, k in observed.items() if math.isclose(r, rate, rel_tol=1e-6))
                if n == 0 or (trials is not None and n < trials):
                    run.incomplete.add((codec, scope))
                    planned = f" of {trials}" if trials is not None else ""
                    short.append(f"{codec} / {scope} at p = {rate:g}: {n}{planned} trials")
            if (codec, scope) not in has_clean:
                run.incomplete.add((codec, scope))
                short.append(f"{codec} / {scope}: no clean row (rate 0)")
    if short:
        shown = "; ".join(short[:12]) + (f"; … and {len(short) - 12} more" if len(short) > 12
                                          else "")
        run.notes.append(f"Partial run: {len(short)} grid point(s) are incomplete ({shown}). "
                         "Statistics use the trials that exist.")


# --------------------------------------------------------------------------- summary

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
    for scope, group in table.groupby("scope", sort=False):
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
        clean = {}
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


def _percent(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.2f} %"


def _factor(value: float) -> str:
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
        cells = [row["codec"], row["scope"], f"{row['bits_per_weight']:g}",
                 f"{100 * row['overhead']:.1f} %", _percent(row["clean_accuracy"])]
        for prefix, _ in CRITERIA:
            nxt = (_next_rate(run, row["codec"], row["scope"], row[prefix])
                   if run is not None and row[f"{prefix}_status"] == "below_grid" else None)
            mark = "" if row[f"{prefix}_monotone"] else " *"
            cells += [format_rber(row[prefix], row[f"{prefix}_status"], nxt) + mark,
                      _interp_cell(row, prefix)]
        cells += ["—" if math.isnan(row["auc"]) else f"{row['auc']:.3f}",
                  "—" if math.isnan(row["auc_log"]) else f"{row['auc_log']:.3f}",
                  _factor(row["improvement_r99"]), _factor(row["improvement_r95"]),
                  f"{row['trials_min']}" + ("" if row["complete"] else " (partial)")]
        body.append(cells)
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


# --------------------------------------------------------------------------- plots

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
    return path


def _threshold_lines(ax, a: float) -> None:
    if math.isnan(a):
        return
    ax.axhline(0.99 * a, color="0.25", linestyle="--", linewidth=1.0,
               label=f"0.99·A = {99 * a:.2f} %")
    ax.axhline(0.95 * a, color="0.55", linestyle="--", linewidth=1.0,
               label=f"0.95·A = {95 * a:.2f} %")


def plot_accuracy_curves(points: pd.DataFrame, a: float, path: Path, *, title: str) -> Path:
    """Seed 000 Fig. 3: mean ± std of the accuracy vs p per codec, dashed 0.99·A / 0.95·A.

    The lower panel repeats the curves zoomed on [0.9·A, A] where R(0.99) and R(0.95) are read.
    """
    zoom = not math.isnan(a)
    fig = Figure(figsize=(7.5, 7.6 if zoom else 4.8), layout="constrained")
    axes = fig.subplots(2, 1, height_ratios=[3, 2]) if zoom else [fig.subplots()]
    for ax in axes:
        for codec, group in points.groupby("codec", sort=False):
            clean = group[group["rate"] == 0.0]["mean"]
            label = str(codec) + (f" (clean {100 * clean.iloc[0]:.1f} %)" if not clean.empty
                                  else "")
            g = group[group["rate"] > 0]
            ax.errorbar(g["rate"], g["mean"], yerr=g["std"].fillna(0.0), marker="o",
                        markersize=4, capsize=3, linewidth=1.4, label=label)
        _threshold_lines(ax, a)
        ax.set_xscale("log")
        ax.set_xlabel("raw bit error rate p (RBER, per stored bit)")
        ax.set_ylabel("validation accuracy\n(mean ± std over trials)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_title(title)
    axes[0].legend(loc="lower left", fontsize=8)
    if zoom:
        top = max(a, float(points["mean"].max()))
        axes[1].set_ylim(0.9 * a, top + 0.1 * (top - 0.9 * a))
        axes[1].set_title("zoom on [0.9·A, A], where R(0.99) and R(0.95) are read", fontsize=10)
    return _save(fig, path)


def plot_boxes(df: pd.DataFrame, codecs: Sequence[str], a: float, path: Path, *,
               title: str) -> Path:
    """Seed 001 Fig. 3: box plots of the trial accuracies at each p, one panel per codec.

    Boxes span the 25th to 75th percentile with the median line; whiskers reach the last
    trial within 1.5 interquartile ranges; trials beyond are drawn as outliers.
    """
    rates = sorted(df.loc[df["rate"] > 0, "rate"].unique())
    slot = {r: i + 1 for i, r in enumerate(rates)}
    fig = Figure(figsize=(8.0, 2.3 * len(codecs) + 1.0), layout="constrained")
    axes = fig.subplots(len(codecs), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, codec in zip(axes, codecs):
        sub = df[(df["codec"] == codec) & (df["rate"] > 0)]
        present = [r for r in rates if (sub["rate"] == r).any()]
        data = [sub[sub["rate"] == r]["accuracy"].to_numpy() for r in present]
        if data:
            ax.boxplot(data, positions=[slot[r] for r in present], whis=1.5,
                       flierprops={"markersize": 3}, medianprops={"color": "C1"})
        _threshold_lines(ax, a)
        ax.set_title(f"{codec}", fontsize=10, loc="left")
        ax.set_ylabel("accuracy")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(True, axis="y", alpha=0.3)
    axes[-1].set_xticks(range(1, len(rates) + 1), [f"{r:.2g}" for r in rates])
    axes[-1].tick_params(axis="x", labelsize=8)
    if not math.isnan(a):
        axes[0].legend(loc="lower left", fontsize=8)
    axes[-1].set_xlabel("raw bit error rate p (RBER, per stored bit; one box per tested p)")
    fig.suptitle(title)
    return _save(fig, path)


def plot_layers(points: pd.DataFrame, errors: pd.DataFrame, a: float, path: Path, *,
                title: str) -> Path:
    """Seed 000 Fig. 4: one layer corrupted at a time; top accuracy vs p, bottom accuracy vs
    the mean number of bit errors in that layer."""
    fig = Figure(figsize=(7.5, 8.0), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    for scope, group in points.groupby("scope", sort=False):
        g = group[group["rate"] > 0]
        top.plot(g["rate"], g["mean"], marker="o", markersize=4, label=str(scope)[6:])
    for layer, group in errors.groupby("layer", sort=False):
        g = group[(group["rate"] > 0) & (group["flips_mean"] > 0)]
        bottom.plot(g["flips_mean"], g["accuracy_mean"], marker="o", markersize=4, label=layer)
    for ax in (top, bottom):
        _threshold_lines(ax, a)
        ax.set_xscale("log")
        ax.set_ylabel("validation accuracy (mean)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    top.set_xlabel("raw bit error rate p (RBER) in the corrupted layer")
    bottom.set_xlabel("bit errors in the corrupted layer (mean number per trial)")
    top.set_title("accuracy vs RBER, one layer corrupted at a time", fontsize=10)
    bottom.set_title("accuracy vs number of bit errors in that layer", fontsize=10)
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- report

def _markdown(rows: list[list[str]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def write_report(run_dir: str | Path, *, baseline: str | None = None,
                 relative_to: Literal["reference", "clean"] = "reference") -> Path:
    """Write ``<run>/report.md`` and its PNG plots in ``<run>/plots/``; return the report path.

    Plots: ``accuracy_vs_rber.png`` (seed 000 Fig. 3), ``boxplots.png`` (seed 001 Fig. 3),
    and when the run has layer scopes ``layers_<codec>.png`` (seed 000 Fig. 4). Every file is
    written to a temporary file and renamed.
    """
    run = read_run(run_dir)
    table = summary_table(run, baseline=baseline, relative_to=relative_to)
    df = run.results
    a = run.reference_accuracy
    a_plot = a if relative_to == "reference" else math.nan
    codecs = run.codecs()
    plots = run.path / PLOTS_DIR
    plots.mkdir(exist_ok=True)
    model = Path(str(run.campaign.get("model", df["model"].iloc[0] if "model" in df
                                      else "model"))).name
    channel = grid_value(run.campaign, "channel")
    if channel is None:
        channel = df["channel"].iloc[0] if "channel" in df else "channel not recorded"
    channel = str(channel)
    points = summarise(df, reference_correct=run.reference_correct)
    points["codec"] = pd.Categorical(points["codec"], categories=codecs, ordered=True)
    points = points.sort_values(["codec", "scope", "rate"])
    points["codec"] = points["codec"].astype(str)

    lines = [f"# Robustness report: {model}", ""]
    lines += _header(run, df, model, channel, relative_to)
    if run.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in run.notes] + [""]

    written: list[str] = []
    model_points = points[points["scope"] == "model"]
    if not model_points.empty:
        written.append(plot_accuracy_curves(
            model_points, a_plot, plots / "accuracy_vs_rber.png",
            title=f"{model}, {channel}: accuracy vs RBER (whole model)").name)
        written.append(plot_boxes(
            df[df["scope"] == "model"], [c for c in codecs if c in set(model_points["codec"])],
            a_plot, plots / "boxplots.png",
            title=f"{model}, {channel}: accuracy over trials per RBER").name)

    lines += ["## Summary", ""] + _summary_section(table, run) + [""]
    if written:
        lines += ["## Plots", ""]
        lines += ["Mean ± standard deviation over trials per codec, with the 0.99·A and 0.95·A "
                  "lines (seed 000 Fig. 3):", "", f"![accuracy vs RBER]({PLOTS_DIR}/{written[0]})",
                  "", "Box plots of the trials at each RBER (seed 001 Fig. 3): box = 25th to "
                  "75th percentile, line = median, whiskers = 1.5 IQR, dots = outliers:", "",
                  f"![box plots]({PLOTS_DIR}/{written[1]})", ""]
    lines += _layer_section(run, table, points, a_plot, plots, model, channel)
    lines += _points_section(points, run)
    path = run.path / REPORT_FILE
    write_atomic(path, ("\n".join(lines).rstrip() + "\n").encode("utf-8"))
    return path


def _header(run: Run, df: pd.DataFrame, model: str, channel: str, relative_to: str) -> list[str]:
    c = run.campaign
    a = run.reference_accuracy
    reference = c.get("reference")
    samples = reference.get("samples") if isinstance(reference, dict) else None
    rates = sorted(r for r in df["rate"].unique() if r > 0)
    out = [f"- model: `{c.get('model', model)}`" + (f" (sha256 `{c['model_sha256'][:16]}…`)"
                                    if isinstance(c.get("model_sha256"), str) else ""),
           f"- channel: `{channel}`; {len(rates)} rates from {rates[0]:.3g} to {rates[-1]:.3g}"
           if rates else f"- channel: `{channel}`; no rate above 0",
           f"- codecs: {', '.join(f'`{x}`' for x in run.codecs())}",
           f"- scopes: {', '.join(f'`{x}`' for x in run.scopes())}",
           f"- trials per point: {grid_value(c, 'trials') or 'not recorded'}; campaign seed: "
           f"{c.get('seed', 'not recorded')}; data: {c.get('data', 'not recorded')}"
           + (f", {samples} samples" if samples is not None else ""),
           f"- reference accuracy A (undistorted model, same samples): {_percent(a)}",
           f"- R(x) compares the mean accuracy with x·A where A is "
           + ("the reference accuracy (seed 000)." if relative_to == "reference"
              else "each codec's own clean accuracy (not the paper's A)."), ""]
    return out


def _summary_section(table: pd.DataFrame, run: Run) -> list[str]:
    out = [format_summary(table[table["scope"] == "model"], run, tablefmt="github")
           if (table["scope"] == "model").any() else "(no whole-model scope in this run)", ""]
    out += [
        "- **R(x) grid**: seed 000's R(x) on the tested rates: the largest tested p whose mean "
        "accuracy is ≥ x·A. `≥p`: even the largest tested p passes (a lower bound); "
        "`0 (<p)`: only the clean point passes; `*`: the curve crosses x·A more than once "
        "(the value is still the largest passing p).",
        "- **R(x) interp.**: an *interpolated* estimate (ours, not the paper's): the p where "
        "the straight line through (log p, mean accuracy) of the last passing and first failing "
        "tested rates crosses x·A, with a percentile bootstrap 95 % interval over trials.",
        "- **AUC**: seed 003, mean accuracy vs p/p_max over [0, p_max], trapezoid rule (ideal 1); "
        "**AUC (log p)**: the same over log p normalised to [0, 1] on the positive rates.",
        "- **overhead**: the codec's redundancy, stored bits / data bits − 1 (parity8: 8/7 − 1; "
        "secded: 72/64 − 1 on top of its inner code); "
        "**gain**: R(x) / R(x) of the baseline codec (seed 000 table III).",
    ]
    return out


def _layer_section(run: Run, table: pd.DataFrame, points: pd.DataFrame, a: float, plots: Path,
                   model: str, channel: str) -> list[str]:
    df = run.results
    if not df["scope"].str.startswith("layer:").any():
        return []
    out = ["## Per layer (seed 000 Fig. 4)", "",
           "Each layer corrupted alone; R(x) per layer and accuracy vs the number of bit "
           "errors in that layer.", ""]
    layer_rows = table[table["scope"].str.startswith("layer:")]
    out += [format_summary(layer_rows, run, tablefmt="github"), ""]
    errors = accuracy_vs_bit_errors(df) if "flips" in df.columns else None
    for codec in run.codecs():
        pts = points[(points["codec"] == codec) & points["scope"].str.startswith("layer:")]
        if pts.empty:
            continue
        err = (errors[errors["codec"] == codec] if errors is not None
               else pd.DataFrame(columns=["layer", "rate", "flips_mean", "accuracy_mean"]))
        name = plot_layers(pts, err, a, plots / f"layers_{_slug(codec)}.png",
                           title=f"{model}, {channel}, {codec}").name
        out += [f"![per layer, {codec}]({PLOTS_DIR}/{name})", ""]
        if errors is not None and not err.empty:
            rows = [[r.layer, f"{r.rate:.3g}", f"{r.n}", f"{r.flips_mean:.1f}",
                     _percent(r.accuracy_mean),
                     "—" if math.isnan(r.accuracy_std) else f"{100 * r.accuracy_std:.2f}"]
                    for r in err.itertuples()]
            out += [f"Accuracy vs bit errors in the layer, `{codec}`:", "",
                    _markdown(rows, ["layer", "p", "trials", "bit errors (mean)",
                                     "accuracy (mean)", "std (points of %)"]), ""]
    return out


def _points_section(points: pd.DataFrame, run: Run) -> list[str]:
    out = ["## Per point statistics (whole model)", ""]
    model_points = points[points["scope"] == "model"]
    if model_points.empty:
        return []
    has = {c: c in model_points.columns for c in ("failure_rate", "flips_mean", "nulled_mean")}
    headers = ["codec", "p", "trials", "mean", "std", "median", "q1", "q3", "min", "max"]
    headers += [h for c, h in (("failure_rate", "failure rate"), ("flips_mean", "bit errors"),
                               ("nulled_mean", "nulled weights")) if has[c]]
    rows = []
    for r in model_points.itertuples():
        row = [r.codec, f"{r.rate:.3g}", f"{r.n}"] + [
            _percent(getattr(r, k)) for k in ("mean", "std", "median", "q1", "q3", "min", "max")]
        if has["failure_rate"]:
            row.append(_percent(r.failure_rate))
        if has["flips_mean"]:
            row.append(f"{r.flips_mean:.1f}")
        if has["nulled_mean"]:
            row.append(f"{r.nulled_mean:.1f}")
        rows.append(row)
    out += [_markdown(rows, headers), "",
            "Accuracies over trials; std with ddof = 1; failure rate (seed 002) = failures / "
            "samples the undistorted model classifies correctly, mean over trials; bit errors "
            "and nulled weights are means per trial.", ""]
    return out


__all__ = [
    "Run", "read_run", "grid_value", "summary_table", "summary_records", "format_summary",
    "format_rber", "write_report", "plot_accuracy_curves", "plot_boxes", "plot_layers",
    "SUMMARY_COLUMNS",
]
