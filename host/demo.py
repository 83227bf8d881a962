"""``host demo`` / ``make demo``: a small robustness campaign on the embedded default.

Sweeps the bundled digits MLP stored in three codecs (8-bit fixed point, the same with weight
nulling, IEEE half) over eight raw bit error rates of a binary symmetric channel, ten trials
each, on the embedded digits test split (``host sweep``), writes the report with its plots
(``host report``), and prints the R(x) table. It also writes each codec's clean image so that
``host inspect`` / ``host inject`` / ``host eval`` can be tried on them. Re-running resumes the
finished campaign (nothing is recomputed).
"""

from __future__ import annotations

import json
from pathlib import Path

from host.campaign import SweepSettings, make_spec, read_rows, run_sweep
from host.export import CodecPlan, build_image, file_sha256
from host.image import write_image_with_manifest
from host.model import load_model
from host.models import resolve_model
from host.report import format_summary, summary_records, write_report

DEMO_MODEL = "digits_mlp"
DEMO_CODECS = ("fixed8", "parity8", "float16")
#: the clean point and eight log-spaced raw bit error rates from 1e-5 to 1e-1
DEMO_SWEEP = "1e-5:1e-1:8"
DEMO_TRIALS = 10
DEMO_SEED = 2026


def _demo_rates() -> tuple[float, ...]:
    from host.campaign import parse_rates
    return (0.0, *parse_rates(DEMO_SWEEP))


DEMO_RATES = _demo_rates()


def run_demo(out_dir: Path, *, json_out: bool = False, workers: int = 1) -> dict:
    """Run (or resume) the demo campaign into ``out_dir``, write its report, print the table.

    Returns the JSON summary: mean accuracy per codec and rate (``"clean"`` for rate 0), the
    summary records (R(0.99), R(0.95), AUC ... per codec), and the paths written.
    """
    out_dir = Path(out_dir)
    spec = make_spec(DEMO_MODEL, SweepSettings(codecs=list(DEMO_CODECS), rates=DEMO_SWEEP,
                                               trials=DEMO_TRIALS, seed=DEMO_SEED))
    result = run_sweep(spec, out_dir, workers=workers, progress=not json_out)
    report = write_report(out_dir)
    plots = sorted(str(p) for p in (report.parent / "plots").glob("*.png"))
    model_path = resolve_model(DEMO_MODEL)
    ws = load_model(model_path)
    for codec in DEMO_CODECS:
        image, _ = build_image(ws, CodecPlan(codec), source=model_path.name,
                               source_sha256=file_sha256(model_path))
        path = out_dir / f"{DEMO_MODEL}.{codec}.bin"
        write_image_with_manifest(image, path)
    means: dict[str, dict[str, float]] = {}
    sums: dict[tuple[str, float], list[float]] = {}
    for row in read_rows(out_dir):
        if row["scope"] == "model":
            sums.setdefault((row["codec"], row["rate"]), []).append(row["accuracy"])
    for codec in DEMO_CODECS:
        means[codec] = {("clean" if r == 0.0 else f"{r:g}"): sum(sums[(codec, r)]) /
                        len(sums[(codec, r)]) for r in DEMO_RATES}
    summary = {"model": DEMO_MODEL, "trials": DEMO_TRIALS, "seed": DEMO_SEED,
               "reference": result.reference, "mean_accuracy": means,
               "summary": summary_records(result.summary), "results": str(result.results),
               "report": str(report), "plots": plots}
    if json_out:
        print(json.dumps(summary, indent=2))
    else:
        print(f"\nRobustness of {DEMO_MODEL} on the embedded digits test split "
              f"({result.reference['samples']} images; original model accuracy A = "
              f"{result.reference['accuracy']:.4f}), BSC(p) on the stored bits, "
              f"{DEMO_TRIALS} trials per rate; R(x) = largest tested p with mean accuracy "
              f">= x*A:\n")
        print(format_summary(result.summary))
        print(f"\nresults: {result.results}\nreport:  {report}\nplots:   "
              + ", ".join(plots))
        first = out_dir / f"{DEMO_MODEL}.{DEMO_CODECS[1]}.bin"
        print(f"Try: host inspect {first}; host inject {first} --channel bsc:1e-2 --seed "
              f"{DEMO_SEED} -o noisy.bin; host eval --image noisy.bin --data digits")
    return summary
