"""The report's plots (PNG): accuracy curves, box plots and the per-layer figure.

The only module of FlipLab's report that imports matplotlib; every plot is rendered to memory
and written by :func:`_save` in one place.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from host.fileio import write_atomic


def slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters than [A-Za-z0-9_.-] become "_"."""
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
