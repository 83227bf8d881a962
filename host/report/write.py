"""``host report``: ``report.md`` and its PNG plots for a campaign run folder.

:func:`write_report` reads the folder (:mod:`host.report.read`), summarises it
(:mod:`host.report.summary`), draws the plots (:mod:`host.report.plots`) and writes the markdown
report; the report file is written in one place, at the end of :func:`write_report`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import pandas as pd
from tabulate import tabulate

from host.fileio import write_atomic
from host.metrics import accuracy_vs_bit_errors, summarise
from host.report.plots import plot_accuracy_curves, plot_boxes, plot_layers, slug
from host.report.read import Run, grid_value, read_run
from host.report.summary import format_percent, format_summary, summary_table

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def _markdown(rows: list[list[str]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def write_report(run_dir: str | Path | Run, *, baseline: str | None = None,
                 relative_to: Literal["reference", "clean"] = "reference") -> Path:
    """Write ``<run>/report.md`` and its PNG plots in ``<run>/plots/``; return the report path.

    ``run_dir`` is a run folder or a :class:`Run` already read (:func:`read_run`).

    Plots: ``accuracy_vs_rber.png`` (seed 000 Fig. 3), ``boxplots.png`` (seed 001 Fig. 3),
    and when the run has layer scopes ``layers_<codec>.png`` (seed 000 Fig. 4). Every file is
    written to a temporary file and renamed.
    """
    run = run_dir if isinstance(run_dir, Run) else read_run(run_dir)
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


def _target_line(campaign: dict) -> str:
    """What the errors hit: the stored weights, or the layer outputs (docs/activation-faults.md)."""
    target = grid_value(campaign, "target") or "weights"
    if target == "weights":
        return "- target: stored weights"
    bits = grid_value(campaign, "act_bits") or 8
    kind = "signed" if grid_value(campaign, "act_signed") in (None, True) else "unsigned"
    layers = grid_value(campaign, "act_layers") or "all"
    what = "activations" if target == "activations" else "stored weights and activations"
    return (f"- target: {what} (layer outputs: {layers}; {bits}-bit {kind} dynamic fixed "
            f"point; `act_flips` counts the activation bits flipped)")


def _quantised_line(run: Run) -> list[str]:
    """Activation faults: the fault-free quantised network, the failures' reference."""
    if not run.quantised_reference:
        return []
    parts = [f"`{c}` {format_percent(a)}" + ("" if math.isnan(n) else f" ({int(n)} correct)")
             for c, (a, n) in run.quantised_reference.items()]
    return ["- fault-free quantised network (activations in their fixed-point format, no "
            "flip; a *failure* is one of its right answers turned wrong, seed 002): "
            + "; ".join(parts)]


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
           _target_line(c),
           f"- codecs: {', '.join(f'`{x}`' for x in run.codecs())}",
           f"- scopes: {', '.join(f'`{x}`' for x in run.scopes())}",
           f"- trials per point: {grid_value(c, 'trials') or 'not recorded'}; campaign seed: "
           f"{c.get('seed', 'not recorded')}; data: {c.get('data', 'not recorded')}"
           + (f", {samples} samples" if samples is not None else ""),
           f"- reference accuracy A (undistorted model, same samples): {format_percent(a)}",
           *_quantised_line(run),
           "- R(x) compares the mean accuracy with x·A where A is "
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
    names = run.layer_names()
    renamed = [[short, f"`{layer}`"] for layer, short in names.items() if short != layer]
    if renamed:
        out += ["Layers by their short names (as `host inspect` shows them; `--scope "
                "layer:NAME` takes the layer):", "", _markdown(renamed, ["short name", "layer"]),
                ""]
    errors = accuracy_vs_bit_errors(df) if "flips" in df.columns else None
    if errors is not None:
        errors = errors.assign(layer=[names.get(x, x) for x in errors["layer"]])
    for codec in run.codecs():
        pts = points[(points["codec"] == codec) & points["scope"].str.startswith("layer:")]
        if pts.empty:
            continue
        pts = pts.assign(scope=[run.display_scope(x) for x in pts["scope"]])
        err = (errors[errors["codec"] == codec] if errors is not None
               else pd.DataFrame(columns=["layer", "rate", "flips_mean", "accuracy_mean"]))
        name = plot_layers(pts, err, a, plots / f"layers_{slug(codec)}.png",
                           title=f"{model}, {channel}, {codec}").name
        out += [f"![per layer, {codec}]({PLOTS_DIR}/{name})", ""]
        if errors is not None and not err.empty:
            rows = [[r.layer, f"{r.rate:.3g}", f"{r.n}", f"{r.flips_mean:.1f}",
                     format_percent(r.accuracy_mean),
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
            format_percent(getattr(r, k)) for k in ("mean", "std", "median", "q1", "q3", "min", "max")]
        if has["failure_rate"]:
            row.append(format_percent(r.failure_rate))
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
