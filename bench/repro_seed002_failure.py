"""Seed 002 (Schorn et al.) on MNIST, the failure rates: Fig. 3 (per-neuron failure rate of one
MSB flip) and Fig. 7 (failure rate vs BER) of the three Table I networks that
bench/repro_seed002.py trained (original, architecture-optimised, feature-optimised).

    nice -n 10 .venv/bin/python bench/repro_seed002_failure.py --data /work/shared/data/mnist.npz \\
        --crit-samples 100 --ber-samples 1000 --trials 10

Two loops over FlipLab's own paths, nothing re-implemented:

- ``host criticality`` (host.activations.criticality.run_criticality) on each network, every
  neuron of every layer output, the first --crit-samples test images, into
  bench/models_seed002/criticality/<model>/ (resumed per layer); then fig3.png (histograms as
  the paper's Fig. 3: (a) original vs architecture-optimised, (b) architecture-optimised vs
  feature-optimised) and the worst-case failure rate per model with its relative reduction;
- ``host sweep --target activations --act-bits 8 --channel bsc`` (host.campaign.run_sweep) on
  each network, the first --ber-samples test images, --trials runs per BER, into
  bench/models_seed002/ber/<model>/ (resumed per unit); then fig7.png and the mean relative
  failure-rate reduction over the BERs.

Failure rate in the BER study (the paper's, Sec. V-D): a row's ``failures`` counts the samples
the fault-free *quantised* network (8-bit activations, no flip; the clean row, rate 0) gets right
and the faulted one gets wrong (host sweep does this for activation targets), divided by that
network's correct count (``reference.quantised.fixed8.correct`` of campaign.json).

Everything lands in failure_results.json beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from host.activations.criticality import CriticalitySettings, run_criticality
from host.campaign import SweepSettings, make_spec, read_rows, run_sweep
from host.data import DataSpec
from host.fileio import write_atomic

OUT = Path(__file__).resolve().parent / "models_seed002"
MODELS = ("original", "architecture", "feature")
LABELS = {"original": "original", "architecture": "architecture-optimised",
          "feature": "feature-optimised (arch. + Algorithm 1)"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data/mnist.npz", help="MNIST .npz")
    p.add_argument("--crit-samples", type=int, default=1000, dest="crit_samples",
                   help="test images of the single-MSB-flip study (paper: the 10,000)")
    p.add_argument("--ber-samples", type=int, default=1000, dest="ber_samples",
                   help="test images of the BER study")
    p.add_argument("--crit-layers", default="all", dest="crit_layers",
                   help="layer outputs of the single-flip study (all, or a comma list)")
    p.add_argument("--rates", default="1e-6:1e-2:5", help="BERs (host sweep --rates)")
    p.add_argument("--trials", type=int, default=100, help="runs per BER (paper: 1000)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    p.add_argument("--skip", choices=("crit", "ber"), action="append", default=[],
                   help="leave a study out (repeatable)")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma list of the networks to run (one process per network can run "
                        "them side by side; the figures need all three)")
    p.add_argument("--no-run", action="store_true", dest="no_run",
                   help="only read what the study folders hold: the finished layers, and "
                        "the trials every network finished of the BER campaigns")
    args = p.parse_args()
    results_path = OUT / "failure_results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    models = args.models.split(",")
    if "crit" not in args.skip:
        if not args.no_run:
            for name in models:
                _criticality(name, args)
        if set(models) == set(MODELS):
            results["criticality"] = criticality_study(args)
            write_atomic(results_path, json.dumps(results, indent=2).encode())
    if "ber" not in args.skip:
        if not args.no_run:
            for name in models:
                _sweep(name, args)
        if set(models) == set(MODELS):
            results["ber"] = ber_study(args)
            write_atomic(results_path, json.dumps(results, indent=2).encode())
    if set(models) != set(MODELS):
        return  # one process per network: the tables need all three (--no-run then)
    write_atomic(OUT / "failure_results.md", markdown(results).encode())
    print(markdown(results))


def markdown(results: dict) -> str:
    """The tables of docs/reproductions.md from failure_results.json."""
    lines = []
    c = results.get("criticality")
    if c:
        lines += [f"Single MSB flip, first {c['samples']} test images, layer outputs "
                  f"{', '.join(c['layers_compared'])} (logits left out of 'worst hidden'):", "",
                  "| model | correct | worst hidden neuron | worst failure rate (hidden) | "
                  "mean (hidden) | neurons > 10 % | worst incl. logits |",
                  "|---|---|---|---|---|---|---|"]
        for name in MODELS:
            m = c[name]
            layer, pos, shape = m["worst_hidden_neuron"]
            lines.append(f"| {LABELS[name]} | {m['correct_samples']} | {layer} ({shape}) "
                         f"at {pos} | {100 * m['worst_hidden']:.2f} % | "
                         f"{100 * m['mean_hidden']:.3f} % | {m['neurons_over_10pct_hidden']} | "
                         f"{100 * m['worst_all']:.2f} % |")
        lines += ["", "| change of the worst-case failure rate (negative: lower) | hidden | "
                  "incl. logits |",
                  "|---|---|---|"]
        for pair in ("architecture vs original", "feature vs architecture",
                     "feature vs original"):
            h, a = (c["reduction"][f"{k}: {pair}"] for k in ("worst_hidden", "worst_all"))
            lines.append(f"| {pair} | {-100 * h:+.1f} % | {-100 * a:+.1f} % |")
        lines += ["", "| layer | shape | original max | architecture max | feature max |",
                  "|---|---|---|---|---|"]
        for layer in c["original"]["layers"]:
            cells = [f"{100 * c[n]['layers'][layer]['max']:.2f} %"
                     if layer in c[n]["layers"] else "not run" for n in MODELS]
            shapes = "/".join(dict.fromkeys(c[n]["layers"][layer]["shape"] for n in MODELS
                                            if layer in c[n]["layers"]))
            lines.append(f"| {layer} | {shapes} | {' | '.join(cells)} |")
        lines.append("")
    b = results.get("ber")
    if b:
        lines += [f"BER study: first {b['samples']} test images, {b['runs_per_ber']} runs per "
                  "BER (each run: every stored activation bit of every sample flips with the "
                  "BER); failure rate in % of the fault-free quantised network's right "
                  "answers (± standard error):", "",
                  "| BER | " + " | ".join(LABELS[n] for n in MODELS) + " |",
                  "|---|---|---|---|"]
        lines.append("| 0: quantised accuracy (correct of " + str(b["samples"]) + ") | "
                     + " | ".join(f"{100 * b[n]['quantised_accuracy']:.2f} % "
                                  f"({b[n]['quantised_correct']})" for n in MODELS) + " |")
        for r in b["original"]["per_rate"]:
            lines.append(f"| {r} | " + " | ".join(
                f"{100 * b[n]['per_rate'][r]['failure_rate']:.3f} ± "
                f"{100 * b[n]['per_rate'][r]['sem']:.3f}" for n in MODELS) + " |")
        lines += ["", "| relative change of the failure rate (negative: lower) | " + " | ".join(
            b["original"]["per_rate"]) + " | mean over the BERs | mean over the resolved "
            "BERs (> 3 SE in both) |",
            "|---|" + "---|" * (len(b["original"]["per_rate"]) + 2)]
        for key, v in b["reduction"].items():
            cells = ["—" if x is None else f"{-100 * x:+.1f} %" for x in v["per_rate"].values()]
            mean = v["mean_over_rates"]
            res = v["mean_over_resolved_rates"]
            lines.append(f"| {key} | " + " | ".join(cells) +
                         f" | {'—' if mean is None else f'{-100 * mean:+.1f} %'} | "
                         f"{'—' if res is None else f'{-100 * res:+.1f} %'} "
                         f"({', '.join(v['resolved_rates'])}) |")
        lines.append("")
    return "\n".join(lines)


def _model(name: str) -> str:
    """The model path as the study folders record it (relative to the repository root)."""
    return os.path.relpath(OUT / f"table1_{name}.onnx")


def _criticality(name: str, args) -> dict:
    return run_criticality(_model(name), OUT / "criticality" / name, CriticalitySettings(
        DataSpec(args.data, "unit", args.crit_samples), layers=args.crit_layers, threads=args.threads),
        progress=True)


def _sweep(name: str, args):
    spec = make_spec(_model(name), SweepSettings(
        codecs="fixed8", rates=args.rates, trials=args.trials, channel="bsc",
        granularity="channel", data=DataSpec(args.data, "unit", args.ber_samples),
        target="activations", act_bits=8))
    return run_sweep(spec, OUT / "ber" / name, progress=True, summary=False)


def criticality_study(args) -> dict:
    """Per-neuron MSB failure rates of the three networks (from the finished per-layer files of
    the study folders), Fig. 3, worst cases. Compared over the layer outputs studied in all
    three (--crit-layers, or the layers whose files exist)."""
    tables, summary, studied = {}, {}, {}
    for name in MODELS:
        folder = OUT / "criticality" / name
        meta = json.loads((folder / "criticality.json").read_text())
        t = pd.concat([pd.read_csv(f, dtype={"position": str})
                       for f in sorted((folder / "layers").glob("*.csv"))], ignore_index=True)
        t = t.drop_duplicates(["layer", "neuron"])
        # the last layer output in graph order is the logits (pool_after_pointwise keeps the
        # tensor names, so the architecture-optimised model's logits are a tensor "conv3")
        t["output_layer"] = t.layer == meta["formats"][-1]["layer"]
        t["shape"] = t.layer.map({f["layer"]: "x".join(map(str, f["shape"]))
                                  for f in meta["formats"]})
        tables[name], studied[name] = t, set(t.layer)
    common = set.intersection(*studied.values())
    if args.crit_layers != "all":
        common &= set(args.crit_layers.split(","))
    for name, t in tables.items():
        correct = int(t["correct"].iloc[0])
        summary[name] = {
            "correct_samples": correct, "layers_studied": sorted(studied[name]),
            "layers": {layer: {"shape": g["shape"].iloc[0], "neurons": int(len(g)),
                               "mean": float(g.failure_rate.mean()),
                               "max": float(g.failure_rate.max()),
                               "method": str(g["method"].iloc[0])}
                       for layer, g in t.groupby("layer", sort=False)}}
        tables[name] = t = t[t.layer.isin(common)]
        hidden = t[~t.output_layer]
        worst = hidden.sort_values("failure_rate").iloc[-1]
        summary[name].update({
            "worst_hidden": float(worst.failure_rate),
            "worst_hidden_neuron": [worst.layer, worst.position, worst["shape"]],
            "worst_all": float(t.failure_rate.max()),
            "mean_hidden": float(hidden.failure_rate.mean()),
            "neurons_hidden": int(len(hidden)),
            "neurons_over_10pct_hidden": int((hidden.failure_rate > 0.10).sum())})
    for key in ("worst_hidden", "worst_all"):
        for a, b in (("original", "architecture"), ("original", "feature"),
                     ("architecture", "feature")):
            summary.setdefault("reduction", {})[f"{key}: {b} vs {a}"] = (
                1 - summary[b][key] / summary[a][key] if summary[a][key] else None)
    summary["samples"] = args.crit_samples
    summary["layers_compared"] = sorted(common)
    _plot_fig3(tables, sorted(common), args.crit_samples)
    return summary


def _plot_fig3(tables: dict, layers: list[str], samples: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, pair, title in zip(axes, (("original", "architecture"),
                                      ("architecture", "feature")),
                               ("(a) original vs architecture-optimised",
                                "(b) architecture-optimised before / after feature opt.")):
        top = max(float(tables[n][~tables[n].output_layer].failure_rate.max()) for n in pair)
        bins = np.linspace(0, max(top, 0.01) * 1.02, 41)
        for name in pair:
            t = tables[name]
            ax.hist(100 * t[~t.output_layer].failure_rate, bins=100 * bins, histtype="step",
                    lw=1.5, label=LABELS[name])
        ax.set_yscale("log")
        ax.set_xlabel("failure rate after one MSB flip (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("neurons")
    axes[1].yaxis.set_tick_params(labelleft=True)
    fig.suptitle(f"Seed 002 Fig. 3 on MNIST (FlipLab): every neuron of the layer outputs "
                 f"{', '.join(layers)} except the logits; first {samples} test images",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(OUT / "fig3.png", dpi=110)


def ber_study(args) -> dict:
    """Failure rate vs BER of the three networks (Fig. 7), mean relative reductions."""
    rows_of = {name: pd.DataFrame(read_rows(OUT / "ber" / name)) for name in MODELS}
    # the trials every network finished (a unit is one trial walking every rate)
    done = set.intersection(*(set(r.trial[r.rate > 0]) for r in rows_of.values()))
    curves = {}
    for name in MODELS:
        reference = json.loads((OUT / "ber" / name / "campaign.json").read_text())["reference"]
        ref = reference["quantised"]["fixed8"]["correct"]
        rows = rows_of[name][rows_of[name].trial.isin(done)]
        clean = rows[rows.rate == 0]
        g = rows[rows.rate > 0].groupby("rate")
        curves[name] = pd.DataFrame({
            "runs": g.size(), "failure_rate": g.failures.mean() / ref,
            "sem": g.failures.std(ddof=1) / np.sqrt(g.size()) / ref,
            "act_flips_per_sample": g.act_flips.mean() / args.ber_samples})
        curves[name].attrs.update(
            quantised_correct=ref, float_correct=reference["correct"],
            quantised_accuracy=float(clean.accuracy.iloc[0]),
            clean_failures=int(clean.failures.iloc[0]))
    out = {"samples": args.ber_samples, "rates": args.rates, "trials_started": args.trials,
           "runs_per_ber": len(done)}
    for name, c in curves.items():
        out[name] = {**c.attrs,
                     "per_rate": {f"{r:g}": {k: float(v) for k, v in row.items()}
                                  for r, row in c.iterrows()}}
    for a, b in (("original", "feature"), ("architecture", "feature"),
                 ("original", "architecture")):
        rel = 1 - curves[b].failure_rate / curves[a].failure_rate.replace(0, np.nan)
        # BERs where both curves lie more than 3 standard errors above 0
        resolved = ((curves[a].failure_rate > 3 * curves[a]["sem"]) &
                    (curves[b].failure_rate > 3 * curves[b]["sem"]))
        out.setdefault("reduction", {})[f"{b} vs {a}"] = {
            "per_rate": {f"{r:g}": (None if np.isnan(v) else float(v)) for r, v in rel.items()},
            "mean_over_rates": (float(rel.mean()) if rel.notna().any() else None),
            "resolved_rates": [f"{r:g}" for r in rel.index[resolved]],
            "mean_over_resolved_rates": (float(rel[resolved].mean()) if resolved.any()
                                         else None)}
    _plot_fig7(curves)
    return out


def _plot_fig7(curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        ax.errorbar(c.index, 100 * c.failure_rate.clip(lower=1e-4), yerr=100 * c["sem"],
                    marker="o", capsize=2, label=LABELS[name])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("BER (every stored activation bit)")
    ax.set_ylabel("failure rate (%)")
    ax.set_title("Seed 002 Fig. 7 on MNIST (FlipLab): 8-bit activations, BSC;\n"
                 "failures of the fault-free quantised network's right answers", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "fig7.png", dpi=110)


if __name__ == "__main__":
    main()
