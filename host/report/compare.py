"""``host report RUN RUN ... --out DIR``: several campaigns side by side (seed 003 Fig. 7).

Each campaign folder holds one model (e.g. the unprotected model, its ACT_max-clipped and its
tuned version, each swept with ``host sweep`` on the same rates, trials, seed and data); the
comparison reads each through :func:`host.report.read_run` and labels its curves
``model (codec)``, the first folder being the baseline. Written to ``DIR/compare.md``:

- accuracy vs rate, mean ± std over trials (``plots/compare_accuracy.png``) and box plots of
  the trials at each rate (``plots/compare_boxes.png``), one panel per variant;
- the AUC table (seed 003's AUC, :func:`host.metrics.auc`: mean accuracy over the
  normalised rate p / p_max, trapezoid rule, clean point included) with the gain as the paper
  states it, ``AUC / AUC_baseline - 1`` (:func:`host.metrics.auc_gain`);
- the mean accuracy at chosen rates and its difference to the baseline in percentage points.

Comparing folders keeps every campaign a one-model campaign (its own identity, resume and
report) and needs no change to the campaign format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from host.errors import FlipLabError
from host.image import write_atomic
from host.metrics import auc, auc_gain, summarise
from host.report.read import Run, read_run

COMPARE_FILE = "compare.md"


def _label(run: Run, codec: str) -> str:
    model = Path(str(run.campaign.get("model", run.results["model"].iloc[0]))).name
    return f"{model} ({codec})"


def comparison_table(runs: Sequence[Run], *, at: Sequence[float] | None = None) -> pd.DataFrame:
    """One row per variant (run x codec, model scope): clean accuracy, AUC, AUC gain over the
    first variant, and the mean accuracy at each rate of ``at`` (default: every swept rate)
    with its difference to the baseline in percentage points (columns ``acc@<rate>``,
    ``pp@<rate>``)."""
    rows = []
    for run in runs:
        df = run.results[run.results["scope"] == "model"]
        for codec in run.codecs():
            sub = df[df["codec"] == codec]
            if sub.empty:
                continue
            curve = sub.groupby("rate")["accuracy"].mean()
            rows.append({"variant": _label(run, codec), "curve": curve,
                         "clean": float(curve.get(0.0, math.nan)),
                         "auc": auc(curve) if 0.0 in curve.index else math.nan})
    if len(rows) < 2:
        raise FlipLabError("a comparison needs at least two campaigns (or codecs) with the "
                           "whole-model scope")
    rates = sorted(r for r in rows[0]["curve"].index if r > 0) if at is None else list(at)
    base = rows[0]
    for row in rows:
        missing = [r for r in rates if r not in row["curve"].index]
        if missing:
            raise FlipLabError(f"{row['variant']} was not swept at rate(s) "
                               f"{', '.join(f'{r:g}' for r in missing)}")
    out = []
    for row in rows:
        entry = {"variant": row["variant"], "clean": row["clean"], "auc": row["auc"],
                 "auc_gain": auc_gain(row["auc"], base["auc"])}
        for r in rates:
            entry[f"acc@{r:g}"] = float(row["curve"][r])
            entry[f"pp@{r:g}"] = 100.0 * (float(row["curve"][r]) - float(base["curve"][r]))
        out.append(entry)
    return pd.DataFrame(out)


def compare_runs(run_dirs: Sequence[str | Path], out: str | Path, *,
                 at: Sequence[float] | None = None) -> tuple[Path, pd.DataFrame]:
    """Write ``out/compare.md`` and its plots; return its path and :func:`comparison_table`."""
    from host.report.plots import plot_accuracy_curves, plot_boxes

    runs = [read_run(d) for d in run_dirs]
    table = comparison_table(runs, at=at)
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    frames = []
    for run in runs:
        df = run.results[run.results["scope"] == "model"].copy()
        df["codec"] = [_label(run, c) for c in df["codec"]]
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    labels = list(table["variant"])
    points = summarise(df)
    points["codec"] = pd.Categorical(points["codec"], categories=labels, ordered=True)
    points = points.sort_values(["codec", "rate"])
    points["codec"] = points["codec"].astype(str)
    plot_accuracy_curves(points, math.nan, out / "plots" / "compare_accuracy.png",
                         title="accuracy vs rate (mean ± std over trials)")
    plot_boxes(df, labels, math.nan, out / "plots" / "compare_boxes.png",
               title="accuracy over trials per rate")
    write_atomic(out / COMPARE_FILE, format_comparison(table, run_dirs).encode("utf-8"))
    return out / COMPARE_FILE, table


def format_comparison(table: pd.DataFrame, run_dirs: Sequence[str | Path] = ()) -> str:
    """``compare.md``: the AUC table and the accuracy at the chosen rates, in markdown."""
    from tabulate import tabulate

    rates = [c[len("acc@"):] for c in table.columns if c.startswith("acc@")]
    head = ["variant", "clean", "AUC", "AUC gain"]
    rows = [[r["variant"], f"{100 * r['clean']:.2f} %", f"{r['auc']:.4f}",
             "baseline" if i == 0 else f"{100 * r['auc_gain']:+.2f} %"]
            for i, r in table.iterrows()]
    acc_rows = [[r["variant"]] + [f"{100 * r[f'acc@{p}']:.2f} % ({r[f'pp@{p}']:+.2f} pp)"
                                  for p in rates] for _, r in table.iterrows()]
    lines = ["# Comparison (seed 003)", "",
             "Campaigns: " + ", ".join(f"`{d}`" for d in run_dirs), "",
             "AUC: mean accuracy over the normalised rate p / p_max (trapezoid rule, clean "
             "point included; ideal = 1). Gain as seed 003 states it: AUC / AUC_baseline − 1, "
             "the baseline being the first variant.", "",
             tabulate(rows, headers=head, tablefmt="github", disable_numparse=True), "",
             "Mean accuracy at each rate, and its difference to the baseline in percentage "
             "points:", "",
             tabulate(acc_rows, headers=["variant"] + [f"p = {p}" for p in rates],
                      tablefmt="github", disable_numparse=True), "",
             "![accuracy vs rate](plots/compare_accuracy.png)", "",
             "![box plots](plots/compare_boxes.png)", ""]
    return "\n".join(lines)
