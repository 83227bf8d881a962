"""The ``host`` command: argument parsing only; every command calls one library function.

Errors a user can cause come out as one line, ``host: error: ...``, with exit status 2.
The program is installed twice, as ``host`` and as ``fliplab`` (``host`` is also the DNS lookup
tool on most Linux systems); messages use the name it was invoked by.

Only the standard library is imported here: each command imports what it uses when it runs, so
``host --help`` and argument errors need neither numpy nor onnx (tests/e2e/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

from host.errors import FlipLabError

PROGRAMS = ("host", "fliplab")  # the console scripts (pyproject.toml); both run main()


def program_name() -> str:
    """``fliplab`` when invoked as ``fliplab``, else ``host`` (also for ``python -m host``)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name in PROGRAMS else "host"


def tabulate(*args, **kwargs) -> str:
    """:func:`tabulate.tabulate`, imported when a command prints a table."""
    from tabulate import tabulate as _tabulate

    return _tabulate(*args, **kwargs)


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("fliplab")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from host import __version__ as text
        print(f"{parser.prog} {text}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like every other error
        raise FlipLabError(f"{message} (see '{self.prog} --help')")


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed {value} is negative")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _bit_positions(text: str) -> list[int | str]:
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "msb":
            out.append("msb")
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bit position {part!r} is neither an integer "
                                             f"nor 'msb'") from None
    return out


def _add_backend(p: argparse.ArgumentParser, *, board: bool = False) -> None:
    if board:
        p.add_argument("--backend", default="onnxruntime",
                       choices=("onnxruntime", "reference", "rtl", "board"),
                       help="executor: onnxruntime (default; the ONNX graph), reference (the "
                            "accelerator's integer reference, host/hw), rtl (the Verilog "
                            "accelerator under cocotb + Icarus) or board (the accelerator on the "
                            "FPGA board at --board PORT, protocol v2); reference, rtl and board "
                            "need an image with a layer program (host export --lower accel)")
        return
    p.add_argument("--backend", default="onnxruntime",
                   choices=("onnxruntime", "reference", "rtl"),
                   help="executor: onnxruntime (default; the ONNX graph), reference (the "
                        "accelerator's integer reference, host/hw) or rtl (the Verilog "
                        "accelerator under cocotb + Icarus); reference and rtl need an image "
                        "with a layer program (host export --lower accel)")


def _refuse_swept_rate(command: str, channel: str | None) -> None:
    """``--channel bsc:0.1`` of sweep/robustness: the 0.1 would be ignored, so it is refused."""
    name, sep, rest = (channel or "").strip().partition(":")
    if name.strip().lower() == "bsc" and sep:
        what = "swept over --rates" if command == "sweep" else "searched between --lo and --hi"
        raise FlipLabError(f"--channel {channel!r}: host {command} takes no rate in the channel, "
                           f"the rate is {what}; give --channel bsc")


def _emit(args: argparse.Namespace, result: dict, table: str) -> None:
    print(json.dumps(result, indent=2) if args.json else table)


def _warn_damaged(damaged: list) -> None:
    """``host: warning: results.jsonl: 2 damaged lines skipped (line 7: …)`` on stderr."""
    from host.campaign.store import RESULTS, damage_warning

    message = damage_warning(RESULTS, damaged)
    if message:
        print(f"host: warning: {message}", file=sys.stderr)


def _damage_fields(damaged: list) -> dict:
    """The ``--json`` keys of the skipped lines: how many, and which with why."""
    from host.campaign.store import damage_records

    return {"damaged_lines": len(damaged), "damaged": damage_records(damaged)}


# ---------------------------------------------------------------------------------------------
# commands

def cmd_export(args: argparse.Namespace) -> None:
    from host.export import CodecPlan, build_image, file_sha256
    from host.fileio import check_outputs, check_target
    from host.image import manifest_path_for, write_image_with_manifest
    from host.model import load_model
    from host.models import resolve_model

    model_path = resolve_model(args.model)
    manifest = manifest_path_for(args.output)
    if manifest.resolve() == args.output.resolve():
        raise FlipLabError(f"image {args.output} would be its own sidecar manifest (the manifest "
                           f"is written to <name>.manifest); give the image another suffix, "
                           f"e.g. {args.output.with_suffix('.bin')}")
    check_outputs([args.output, manifest], [model_path])
    check_target(args.output)
    check_target(manifest)
    plan = CodecPlan(args.codec, tuple(CodecPlan.parse_override(o) for o in args.override),
                     args.range)
    ws = load_model(model_path, binarize=args.binarize)
    from host.data.recorded import recorded_normalize

    _warn_normalize(str(model_path), args.normalize)
    normalize = args.normalize or recorded_normalize(model_path)  # the image records it
    build = build_image
    if args.lower == "accel":  # the accelerator's layer program too (docs/datapath.md)
        from host.export import build_accel_image as build
    image, report = build(ws, plan, source=Path(model_path).name,
                          source_sha256=file_sha256(model_path), normalize=normalize)
    warnings = report.warnings(args.range)
    check = None
    if args.data is not None:  # a quick clean-accuracy check before writing anything
        from host.data import DataSpec
        from host.export import clean_check
        check, more = clean_check(ws, plan, image, DataSpec(args.data, None, args.samples))
        warnings += more
    write_image_with_manifest(image, args.output)
    result = {"image": str(args.output), "manifest": str(manifest), "tensors": report.tensors,
              "weights": report.weights, "payload_bytes": report.payload_bytes,
              "bits_per_weight": report.payload_bytes * 8 / max(report.weights, 1),
              "codecs": report.codecs,
              "quantisation_error": [
                  {"tensor": e.tensor, "layer": e.layer, "codec": e.codec,
                   "sqnr_db": _finite(e.sqnr_db), "sign_lost": e.sign_lost,
                   "channel_sqnr_db": _finite(e.channel_sqnr_db)} for e in report.errors],
              "warnings": warnings}
    if check is not None:
        result["clean_check"] = check
    for line in warnings:
        print(f"host: warning: {line}", file=sys.stderr)
    rows = [(spec, n) for spec, n in report.codecs.items()]
    _emit(args, result, f"wrote {args.output} ({report.tensors} tensors, {report.weights} weights, "
                        f"{report.payload_bytes} payload bytes) and {manifest}\n"
                        + tabulate(rows, headers=["codec", "weights"]))


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: an exact (lossless) tensor's SQNR is reported as null."""
    return None if value is None or not math.isfinite(value) else value


def cmd_inject(args: argparse.Namespace) -> None:
    from host.channels import parse_channel
    from host.fileio import check_outputs, check_target
    from host.image import read_image, write_image
    from host.inject import inject

    check_outputs([args.output], [args.image, args.manifest])
    check_target(args.output)
    channel = parse_channel(args.channel)
    image = read_image(args.image, args.manifest)
    noisy, report = inject(image, channel, seed=args.seed, trial=args.trial,
                           tensors=args.tensors, bit_positions=args.bits)
    write_image(noisy, args.output)
    result = {"image": str(args.output), "channel": args.channel, "seed": args.seed,
              "trial": args.trial, "flips": report.flips, "zero_to_one": report.zero_to_one,
              "one_to_zero": report.one_to_zero, "payload_bits": image.payload_bits}
    _emit(args, result, f"wrote {args.output}: {report.flips} bit flips "
                        f"({report.zero_to_one} 0->1, {report.one_to_zero} 1->0) in "
                        f"{image.payload_bits} payload bits")


def cmd_eval(args: argparse.Namespace) -> None:
    from host.data import DataSpec
    from host.evaluate import EvalSettings, evaluate, near_chance_warning
    from host.image import read_image

    if args.channel is None and (args.seed is not None or args.trial is not None):
        raise FlipLabError("--seed and --trial choose the errors of --channel; without --channel "
                           "they would be ignored")
    settings = EvalSettings(
        image=args.image, manifest=args.manifest,
        data=DataSpec(args.data, args.normalize, args.samples), channel=args.channel,
        seed=args.seed or 0, trial=args.trial or 0, tensors=args.tensors, board=args.board,
        backend=args.backend,
        options={"strategy": args.strategy}, progress=not args.json)
    result = evaluate(settings)
    warning = near_chance_warning(result, settings, read_image(args.image, args.manifest).model)
    if warning:
        print(f"host: warning: {warning}", file=sys.stderr)
    out = result.to_json()
    summary = (f"accuracy {out['accuracy']:.4f} ({out['correct']}/{out['samples']}), "
               f"nulled weights {out['nulled']}, corrected bits {out['corrected']}"
               + (f", bit flips {out['flips']}" if out["flips"] is not None else "")
               + (f", {args.backend}: detected errors {out['detected']}"
                  if args.backend != "onnxruntime" else "")
               + (f", {out['cycles_per_inference']:.0f} cycles/inference"
                  if "cycles_per_inference" in out else ""))
    _emit(args, out, summary)


def cmd_inspect(args: argparse.Namespace) -> None:
    from host.image import describe, graph_of, read_image
    from host.mitigation.clip import describe_clip

    if args.image.suffix.lower() == ".onnx":
        info = describe_clip(args.image)
        clip_rows = [(r["layer"], r["relu"], r["act_max"], r["t"]) for r in info["relu_layers"]]
        _emit(args, info, f"ONNX model {args.image}: clipped ReLUs (seed 003)\n" + tabulate(
            clip_rows, headers=["layer", "relu", "ACT_max", "T"], missingval="-"))
        return
    image = read_image(args.image, args.manifest)
    info = describe(image)
    clip = describe_clip(graph_of(image)) if image.graph else {"relu_layers": []}
    if clip["relu_layers"]:
        info["clip"] = clip
    rows = [(t["name"], t["short"], t["layer"], t["role"], "x".join(map(str, t["shape"])), t["codec"],
             f"{t['bits_per_weight']:.3g}", t["bit_offset"], t["count"]) for t in info["tensors"]]
    m = info["model"]
    head = (f"FlipLab image v{info['format_version']}, {info['word_bits']}-bit words, "
            f"{info['payload_bytes']} payload bytes, {info['weights']} weights, "
            f"model {m.get('source') or '?'} (input {m['input']} {m['input_shape']}, "
            f"output {m['output']})"
            + (f", input normalisation {m['normalize']}" if m.get("normalize") else ""))
    clip_line = ("\nclipped ReLUs: " + ", ".join(
        f"{r['layer']} T={r['t']:.6g}" for r in info["clip"]["relu_layers"] if r["t"] is not None)
        if "clip" in info and any(r["t"] is not None for r in info["clip"]["relu_layers"])
        else "")
    _emit(args, info, head + "\n" + tabulate(
        rows, headers=["tensor", "short name", "layer", "role", "shape", "codec", "bits/w", "bit offset",
                       "weights"]) + clip_line)


def cmd_diff(args: argparse.Namespace) -> None:
    from host.diff import diff_images
    from host.image import read_image, read_like

    golden = read_image(args.golden, args.manifest)
    result = diff_images(golden, read_like(args.other, golden))
    rows = [(t["tensor"], t["short"], t["bits"], t["errors"], t["zero_to_one"], t["one_to_zero"],
             " ".join(str(a + b) for a, b in zip(t["per_position"]["zero_to_one"],
                                                  t["per_position"]["one_to_zero"])))
            for t in result["tensors"]]
    head = (f"{result['errors']} bit errors in {result['payload_bits']} payload bits "
            f"(BER {result['ber']:.3g}; {result['zero_to_one']} 0->1, {result['one_to_zero']} "
            f"1->0; {result['outside_tensors']} outside tensors)")
    _emit(args, result, head + "\n" + tabulate(
        rows, headers=["tensor", "short name", "bits", "errors", "0->1", "1->0",
                       "errors by bit position 0.."]))


def cmd_characterize(args: argparse.Namespace) -> None:
    from host.image import read_image, read_like
    from host.profile import characterize, write_profile

    golden = read_image(args.golden, args.manifest)
    dumps = [read_like(path, golden) for path in args.dumps]
    doc = characterize(golden, dumps, block_bytes=args.block,
                       source=f"{args.golden} + {len(dumps)} dump(s)")
    write_profile(doc, args.output)

    def fmt(r: dict) -> str:
        return f"{r['rate']:.3g} [{r['low']:.3g}, {r['high']:.3g}]"

    rows = [("overall", fmt(doc["overall"]["p01"]), fmt(doc["overall"]["p10"])),
            ("transient", fmt(doc["transient"]["p01"]), fmt(doc["transient"]["p10"])),
            ("permanent" + ("" if doc["permanent"]["known"] else " (1 dump: unknown)"),
             fmt(doc["permanent"]["p01"]), fmt(doc["permanent"]["p10"]))]
    rows += [(t["name"], fmt(t["p01"]), fmt(t["p10"])) for t in doc["tensors"]]
    sp = doc["spatial"]
    blocks, cols = sp["blocks"], sp["columns"]
    tail = (f"blocks of {blocks['block_bytes']} B: dispersion index "
            f"{blocks['index'] if blocks['index'] is None else round(blocks['index'], 3)}, "
            f"negative-binomial k {blocks['k']:.3g}; top bit column holds "
            f"{cols['top_share']:.1%} of the faulty cells; {sp['fields']['multi_bit']} multi-bit "
            f"fields (i.i.d.: {sp['fields']['expected_iid']:.3g})\nprofile: {args.output}")
    _emit(args, {"profile": str(args.output), **doc}, tabulate(
        rows, headers=["cells", "p01 [95% CI]", "p10 [95% CI]"]) + "\n" + tail)


def cmd_plan(args: argparse.Namespace) -> None:
    from host.data import DataSpec
    from host.plan import PlanSettings, make_plan

    res = make_plan(args.model, PlanSettings(
        codecs=args.codecs, target=args.target, channel=args.channel, trials=args.trials,
        data=DataSpec(args.data, args.normalize, args.samples), seed=args.seed),
        args.out, progress=not args.json)
    out = res.to_json()
    if res.plan is None:
        head = (f"no assignment of {args.codecs} (+ reliable) meets {args.target}: "
                f"threshold {res.threshold:.4f}")
    else:
        head = (f"plan for {args.target} (mean accuracy >= {res.threshold:.4f} at rate "
                f"{res.target.rate:g}): {res.plan.bits / res.weights:.3g} bits/weight, "
                f"predicted {res.reference - res.plan.drop:.4f}\n  "
                + " ".join(res.overrides()))
    rows = [(r["name"], r["note"], f"{r['bits_per_weight']:.3g}",
             "" if r["predicted_accuracy"] is None else f"{r['predicted_accuracy']:.4f}",
             f"{r['measured_accuracy']:.4f}", "yes" if r["meets_target"] else "no",
             "" if r["r_x"] is None else f"{r['r_x']:.3g}", r["r_x_status"]) for r in res.rows]
    x = res.threshold / res.reference
    _emit(args, out, head + "\n" + tabulate(rows, headers=[
        "", "choice", "bits/weight", "predicted acc.", "measured acc.", "meets target",
        f"R({x:.3g}) interp.", "R status"]) + f"\nplot: {res.plot}")


def cmd_demo(args: argparse.Namespace) -> None:
    from host.demo import run_demo

    run_demo(out_dir=Path(args.out), json_out=args.json)


def cmd_sweep(args: argparse.Namespace) -> None:
    from host.campaign import CampaignInterrupted, SweepSettings, make_spec, run_sweep
    from host.data import DataSpec
    from host.report import format_summary, summary_records

    _refuse_swept_rate("sweep", args.channel)
    if args.scheduler is not None and args.workers is not None:
        raise FlipLabError("--workers sets local processes; with --scheduler the Dask cluster's "
                           "workers run the units, so give one or the other")
    settings = SweepSettings(
        codecs=args.codecs, rates=args.rates, trials=args.trials, channel=args.channel,
        scopes=(args.scope or []) + ([f"tensors:{','.join(args.tensors)}"] if args.tensors
                                      else []) or None, granularity=args.range, overrides=args.override,
        data=DataSpec(args.data, args.normalize, args.samples), seed=args.seed,
        backend=args.backend, target=args.target, act_bits=args.act_bits,
        act_signed=not args.act_unsigned, act_layers=args.act_layers)
    from host.campaign.models import split_models

    models = split_models(args.model)
    for model in models:
        _warn_normalize(model, args.normalize)
    if len(models) > 1:
        _sweep_models(args, models, settings)
        return
    spec = make_spec(args.model, settings)
    try:
        result = run_sweep(spec, args.out, workers=args.workers or 1, scheduler=args.scheduler,
                           progress=not args.json, low_memory=args.low_memory)
    except CampaignInterrupted as exc:
        print(f"host: {exc}", file=sys.stderr)
        sys.exit(130)
    _warn_damaged(result.damaged)
    _emit(args, {"results": str(result.results), "units": result.units_total,
                 "units_run": result.units_run, "units_skipped": result.units_skipped,
                 "reference": result.reference, "summary": summary_records(result.summary),
                 **_damage_fields(result.damaged)},
          format_summary(result.summary) + f"\nresults: {result.results}")


def _sweep_models(args: argparse.Namespace, models: list[str], settings) -> None:
    """``host sweep A,B,C``: one campaign folder per model under --out, then compare.md."""
    from host.campaign import CampaignInterrupted
    from host.campaign.models import run_model_sweeps
    from host.report import format_summary, summary_records

    say = None if args.json else (lambda line: print(f"host: {line}", file=sys.stderr))
    try:
        res = run_model_sweeps(models, settings, args.out, workers=args.workers or 1,
                               scheduler=args.scheduler, progress=not args.json, announce=say,
                               low_memory=args.low_memory)
    except CampaignInterrupted as exc:
        print(f"host: {exc}", file=sys.stderr)
        sys.exit(130)
    campaigns = []
    text = []
    for model, folder, r in zip(res.models, res.folders, res.results):
        _warn_damaged(r.damaged)
        campaigns.append({"model": model, "folder": str(folder),
                          "results": str(r.results), "units": r.units_total,
                          "units_run": r.units_run, "units_skipped": r.units_skipped,
                          "reference": r.reference, "summary": summary_records(r.summary),
                          **_damage_fields(r.damaged)})
        text.append(f"{folder.name}:\n{format_summary(r.summary)}")
    result = {"out": str(res.out), "campaigns": campaigns,
              "comparison": None if res.comparison is None else str(res.comparison)}
    if res.table is not None:
        result["variants"] = res.table.to_dict(orient="records")
        rows = [(r["variant"], f"{r['auc']:.4f}",
                 "baseline" if i == 0 else f"{100 * r['auc_gain']:+.2f} %")
                for i, r in res.table.iterrows()]
        text.append(tabulate(rows, headers=["variant", "AUC", "AUC gain"])
                    + f"\ncomparison: {res.comparison}")
    else:
        text.append("no comparison: the campaigns have no whole-model scope (--scope model)")
    _emit(args, result, "\n\n".join(text))


def _warn_normalize(model: str, given: str | None) -> None:
    """``host: warning: ...`` when --normalize differs from what the model records."""
    from host.data.recorded import normalize_conflict

    message = normalize_conflict(model, given)
    if message:
        print(f"host: warning: {message}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> None:
    from host.campaign.models import read_model_list
    from host.report import read_run, write_report

    listed = read_model_list(args.run_dir[0]) if len(args.run_dir) == 1 else None
    if listed is not None:  # a several-model sweep (host sweep A,B,C): compare its campaigns
        if args.out is None:
            args.out = args.run_dir[0]
        args.run_dir = [args.run_dir[0] / e["folder"] for e in listed]
    if len(args.run_dir) > 1 or args.out is not None:
        _compare(args)
        return
    run = read_run(args.run_dir[0])
    _warn_damaged(run.damaged)
    path = write_report(run)
    plots = sorted(str(p) for p in (path.parent / "plots").glob("*.png"))
    _emit(args, {"report": str(path), "plots": plots, **_damage_fields(run.damaged)},
          "\n".join([f"report: {path}"] + [f"plot: {p}" for p in plots]))


def _compare(args: argparse.Namespace) -> None:
    from host.campaign import parse_rates
    from host.report.compare import compare_runs

    if args.out is None:
        raise FlipLabError("several campaign folders are compared into --out DIR")
    at = parse_rates(args.at) if args.at else None
    path, table = compare_runs(args.run_dir, args.out, at=at)
    rows = [(r["variant"], f"{r['auc']:.4f}",
             "baseline" if i == 0 else f"{100 * r['auc_gain']:+.2f} %")
            for i, r in table.iterrows()]
    _emit(args, {"report": str(path), "variants": table.to_dict(orient="records")},
          tabulate(rows, headers=["variant", "AUC", "AUC gain"]) + f"\nreport: {path}")


def cmd_clip(args: argparse.Namespace) -> None:
    from host.data import DataSpec
    from host.mitigation.tune import ClipSettings, TuneSettings, clip_model

    layers = tuple(x.strip() for x in args.layers.split(",") if x.strip()) if args.layers \
        else None
    _warn_normalize(args.model, args.normalize)
    clip = ClipSettings(DataSpec(args.data, args.normalize, None), args.profile_samples, layers,
                        args.form)
    tune = TuneSettings(codec=args.codec, channel=args.channel, rates=args.rates,
                        trials=args.trials, seed=args.seed, samples=args.samples, n=args.n,
                        m=args.m, delta=args.delta) if args.tune else None
    progress = None if args.json else (lambda line: print(line, file=sys.stderr))
    result = clip_model(args.model, args.out, clip, tune, results=args.results,
                        progress=progress)
    rows = [(r["layer"], f"{r['act_max']:.6g}", f"{r['t']:.6g}",
             *((f"{r['auc_unclipped']:.4f}", f"{r['auc_act_max']:.4f}", f"{r['auc_tuned']:.4f}",
                r["evaluations"]) if "auc_tuned" in r else ())) for r in result["layers"]]
    headers = ["layer", "ACT_max", "T"] + (["AUC unclipped", "AUC ACT_max", "AUC tuned",
                                            "probes"] if tune else [])
    _emit(args, result, tabulate(rows, headers=headers) + f"\nwrote {result['output']}"
          + (f" (probes: {result['probes']})" if tune else ""))


def cmd_robustness(args: argparse.Namespace) -> None:
    from host.campaign import RobustnessSettings, find_robustness
    from host.data import DataSpec

    _refuse_swept_rate("robustness", args.channel)
    _warn_normalize(args.model, args.normalize)
    r = find_robustness(args.model, RobustnessSettings(
        codec=args.codec, channel=args.channel, x=args.x, ci=args.ci,
        data=DataSpec(args.data, args.normalize, args.samples), max_trials=args.max_trials,
        seed=args.seed, lo=args.lo, hi=args.hi, resolution=args.resolution,
        confidence=args.confidence, first_samples=args.first_samples,
        backend=args.backend), results=args.results, progress=not args.json)
    rows = [(f"{p.rate:.4g}", p.verdict, f"{p.mean:.4f}", f"[{p.ci_low:.4f}, {p.ci_high:.4f}]",
             p.trials, p.samples) for p in r.probes]
    _emit(args, r.to_json(),
          tabulate(rows, headers=["rate", "decision", "mean", "interval", "trials",
                                  "samples/trial"])
          + f"\nR({r.x:g}) of {r.codec} under {r.channel}: {r.r:.4g}, bracket "
          f"[{r.lo:.4g}, {r.hi:.4g}), interval [{r.ci_low:.4g}, {r.ci_high:.4g}] "
          f"({r.status}; each decision at {r.confidence:g} confidence, A = "
          f"{r.reference_accuracy:.4f}, x·A = {r.threshold:.4f}); {len(r.probes)} probes, "
          f"{r.variants} variants, {r.inferences} sample inferences"
          + (f"; {r.unresolved} probe(s) reached --max-trials before ±{r.ci:g}, which widens "
             f"the interval" if r.unresolved else ""))


def cmd_tolerance(args: argparse.Namespace) -> None:
    from host.data import DataSpec
    from host.mitigation.tolerance import parse_levels, tolerance
    from host.model.loader import data_input_spec
    from host.model.reading import read_onnx
    from host.models import resolve_model

    bs = parse_levels(args.b)
    path = resolve_model(args.model)
    shape, dtype = data_input_spec(read_onnx(path))
    x, _ = DataSpec(args.data, args.normalize, args.samples).load(shape, input_dtype=dtype)
    report = tolerance(path, x, bs, progress=not args.json)
    _emit(args, report.to_json(), report.table())


def cmd_train_bnn(args: argparse.Namespace) -> None:
    from host.fileio import check_outputs, check_target

    try:
        from host.train.bnn import TrainConfig, train_to_file
    except ImportError as exc:
        raise FlipLabError(f"host train-bnn needs the train extra (pip install 'fliplab[train]'):"
                           f" {exc}") from None
    check_target(args.output)
    data_path = args.data if os.path.exists(args.data) else None
    checkpoint = args.checkpoint or f"{args.output}.ckpt"
    check_outputs([args.output, checkpoint], [data_path])
    config = TrainConfig(arch=args.arch, data=args.data, normalize=args.normalize,
                         samples=args.samples, flip_p=args.flip_p, gradient=args.gradient,
                         lam=args.lam, b=args.b, epochs=args.epochs, batch=args.batch, lr=args.lr,
                         width=args.width, channels=args.channels, seed=args.seed)
    summary = train_to_file(config, args.output, checkpoint, progress=not args.json)
    last = summary["history"][-1] if summary["history"] else {"loss": float("nan"),
                                                              "train_accuracy": float("nan")}
    _emit(args, {**summary, "output": args.output, "checkpoint": checkpoint},
          f"wrote {args.output}: {args.arch}, {len(summary['history'])} epochs, loss "
          f"{last['loss']:.4f}, train accuracy {last['train_accuracy']:.4f} (checkpoint "
          f"{checkpoint})")


def cmd_criticality(args: argparse.Namespace) -> None:
    from host.activations.criticality import CriticalitySettings, run_criticality
    from host.data import DataSpec

    bit = "msb" if args.bit.strip().lower() == "msb" else _int_bit(args.bit)
    summary = run_criticality(args.model, args.out, CriticalitySettings(
        DataSpec(args.data, args.normalize, args.samples), layers=args.layers,
        bits=args.act_bits, signed=not args.unsigned, bit=bit, neurons=args.neurons),
        progress=not args.json)
    rows = [(r["layer"], "x".join(map(str, r["shape"])), r["neurons"],
             f"{r['mean_failure_rate']:.4f}", f"{r['max_failure_rate']:.4f}", r["method"])
            for r in summary["layers"]]
    _emit(args, {**summary, "out": str(args.out)},
          tabulate(rows, headers=["layer", "shape", "neurons", "mean failure", "max failure",
                                  "method"]) + f"\nreport: {Path(args.out) / 'report.md'}")


def _int_bit(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FlipLabError(f"--bit {text!r} is neither an integer nor 'msb'") from None


# ---------------------------------------------------------------------------------------------

def cmd_relevance(args: argparse.Namespace) -> None:
    from host.mitigation.relevance import load_samples, relevance_report
    from host.models import resolve_model

    path = resolve_model(args.model)
    x, y = load_samples(path, args.data, args.normalize, args.samples, args.split)
    r = relevance_report(path, x, y, progress=not args.json)
    rows = [(layer["layer"], c, f"{rho:.4g}", "" if layer["eta"] is None else
             f"{layer['eta'][c]:.4g}") for layer in r["layers"] for c, rho in
            enumerate(layer["rho"])]
    _emit(args, r, tabulate(rows, headers=["layer", "feature map", "rho (eq. 4)", "eta (eq. 5)"])
          + f"\n(1/L)·Σ SD(eta / mean eta) = {r['mean_sd_normalised_eta']:.4f} over "
          f"{r['samples']} samples" + "".join(f"\nadvice: {a}" for a in r["advice"]))


def cmd_rescale(args: argparse.Namespace) -> None:
    from host.fileio import check_outputs, check_target
    from host.models import resolve_model

    try:
        from host.train.rescale import RescaleConfig, rescale_to_file
    except ImportError as exc:
        raise FlipLabError(f"host rescale needs the train extra (pip install 'fliplab[train]'):"
                           f" {exc}") from None
    path = resolve_model(args.model)
    check_target(args.output)
    log = args.log or f"{args.output}.iterations"
    check_outputs([args.output], [path])
    codec = None if args.codec.lower() == "none" else args.codec
    if codec is not None:
        from host.codecs import get_codec

        get_codec(codec)  # an unknown codec fails here, before any work
    config = RescaleConfig(data=args.data, normalize=args.normalize, samples=args.samples,
                           lrp_samples=args.lrp_samples, iterations=args.iterations, epochs=args.epochs, lr=args.lr,
                           batch=args.batch, codec=codec, compensate=args.compensate,
                           seed=args.seed)
    r = rescale_to_file(path, args.output, config, log, progress=not args.json)
    rows = [(it["iteration"], f"{it['mean_sd_normalised_eta']:.4f}", f"{it['accuracy']:.4f}",
             it.get("fine_tune_loss", "")) for it in r["iterations"]]
    _emit(args, r, tabulate(rows, headers=["iteration", "(1/L)·Σ SD(eta/mean eta)",
                                           "test accuracy", "fine-tune loss"])
          + f"\nwrote {r['output']} (iterations in {r['log']})")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=program_name(),
                description="FlipLab: neural-network weights in noisy memory.")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    e = sub.add_parser("export", help="write a model's weights into a memory image")
    e.add_argument("model", help="ONNX model file, or the name of a bundled model (digits_mlp, ...)")
    e.add_argument("--codec", help="default codec for non-binarized tensors (fixed8, parity8, "
                                   "hamming8, float16, int8, secded(parity8), ...)")
    e.add_argument("--override", action="append", default=[], metavar="PATTERN=CODEC",
                   help="codec for tensors/layers matching PATTERN (repeatable; first match wins)")
    e.add_argument("--range", default="model", choices=("model", "tensor", "channel"),
                   help="quantisation range per model (default), tensor or output channel")
    e.add_argument("--binarize", action="append", default=[], metavar="PATTERN",
                   help="store the weights of tensors or layers matching this fnmatch pattern "
                        "(case-sensitive) as 1-bit signs (repeatable)")
    e.add_argument("--lower", choices=("accel",),
                   help="also lower the model to the RTL accelerator's layer program, stored in "
                        "the image (int8 QDQ or binarized MLPs; docs/datapath.md)")
    e.add_argument("--normalize",
                   help="the input normalisation the model was trained with (unit, none, "
                        "meanstd:M,S, binary), recorded in the image for host eval (default: "
                        "the one the model records, if any)")
    e.add_argument("--data", help="also measure the clean image's accuracy on this dataset "
                                  "beside the model's own (as host eval --data)")
    e.add_argument("--samples", type=_positive, help="with --data: only the first N samples")
    e.add_argument("-o", "--output", required=True, type=Path, help="image file to write")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("inject", help="inject bit errors into an image's payload")
    i.add_argument("image", type=Path, help="the golden image (or a raw dump with --manifest)")
    i.add_argument("--manifest", type=Path, help="manifest, when IMAGE is a raw payload dump")
    i.add_argument("--channel", required=True,
                   help="error model: bsc:P, asym:P01,P10, stuck:F,S[,seed=D], none")
    i.add_argument("--seed", type=_seed, default=0, help="campaign seed (default 0)")
    i.add_argument("--trial", type=_seed, default=0, help="trial index (default 0)")
    i.add_argument("--tensors", action="append", metavar="PATTERN",
                   help="only these tensors (repeatable fnmatch patterns on a tensor's name, "
                        "layer or short name, as host inspect shows them; '!PATTERN' excludes, "
                        "e.g. '!conv1*' spares the first layer)")
    i.add_argument("--bits", type=_bit_positions, metavar="POSITIONS",
                   help="only these bit positions in each code, e.g. 'msb' or '7,6'")
    i.add_argument("-o", "--output", required=True, type=Path,
                   help="the noisy image to write (never one of the inputs)")
    i.set_defaults(func=cmd_inject)

    v = sub.add_parser("eval", help="evaluate a model from a memory image")
    v.add_argument("--image", required=True, type=Path, help="image file or raw payload dump")
    v.add_argument("--manifest", type=Path, help="manifest of the golden image, for a raw dump")
    v.add_argument("--data", default="digits",
                   help="dataset: digits (embedded), a .npz with x_test/y_test, or MNIST IDX files")
    v.add_argument("--samples", type=_positive, help="evaluate only the first N samples")
    v.add_argument("--normalize",
                   help="input normalisation: unit (pixels to [0, 1]), none, meanstd:M,S, binary "
                        "(default: the one the image recorded at export, else unit; none for "
                        "integer inputs such as token ids)")
    v.add_argument("--channel", help="inject errors in memory before evaluating (e.g. bsc:1e-3)")
    v.add_argument("--seed", type=_seed, default=None,
                   help="campaign seed of the --channel errors (default 0)")
    v.add_argument("--trial", type=_seed, default=None,
                   help="trial index of the --channel errors (default 0)")
    v.add_argument("--tensors", action="append", metavar="PATTERN",
                   help="with --channel: only these tensors/layers take errors ('!PATTERN' "
                        "spares them; repeatable)")
    v.add_argument("--strategy", default=None, choices=("session", "inputs"),
                   help="onnxruntime backend only: how weights reach onnxruntime, session "
                        "(default) or inputs (docs/benchmarks.md)")
    v.add_argument("--board", metavar="PORT",
                   help="write the payload to the board on PORT, read it back, evaluate that "
                        "(with --backend board: on the board's accelerator)")
    _add_backend(v, board=True)
    v.set_defaults(func=cmd_eval)

    s = sub.add_parser("inspect", help="show an image's layout and codecs (or a .onnx model's "
                                       "clipped ReLUs)")
    s.add_argument("image", type=Path, help="an image, a manifest, a raw dump (with --manifest) or a .onnx model")
    s.add_argument("--manifest", type=Path, help="manifest of the golden image, for a raw dump")
    s.set_defaults(func=cmd_inspect)

    d = sub.add_parser("diff", help="bit errors of a noisy image or dump against the golden one")
    d.add_argument("golden", type=Path, help="the image that was written")
    d.add_argument("other", type=Path, help="noisy image, or a raw payload dump of the same size")
    d.add_argument("--manifest", type=Path, help="manifest, when GOLDEN is itself a raw dump")
    d.set_defaults(func=cmd_diff)

    ch = sub.add_parser("characterize",
                       help="fit an error profile from dumps of a golden image (replay it with "
                            "--channel profile:FILE)")
    ch.add_argument("golden", type=Path, help="the image that was written")
    ch.add_argument("dumps", type=Path, nargs="+",
                   help="what was read back: images or raw payload dumps of the same layout")
    ch.add_argument("--manifest", type=Path, help="manifest, when GOLDEN is itself a raw dump")
    ch.add_argument("--block", type=_positive, default=4096, metavar="BYTES",
                   help="block size for the spatial statistics (default 4096, one BRAM)")
    ch.add_argument("-o", "--output", required=True, type=Path, help="profile file to write (TOML)")
    ch.set_defaults(func=cmd_characterize)

    pl = sub.add_parser("plan", help="least stored bits per layer that meet a robustness target")
    pl.add_argument("model", help="ONNX model file, or the name of a bundled model")
    pl.add_argument("--codecs", required=True,
                    help="codecs a layer may use, e.g. fixed8,parity8,'secded(fixed8)' "
                         "(reliable(<first>) is added)")
    pl.add_argument("--target", required=True,
                    help="'R(X)>=P' (e.g. 'R(0.95)>=1e-2') or 'acc>=A@P' (e.g. 'acc>=0.9@1e-2')")
    pl.add_argument("--channel", default="bsc", help="as host sweep --channel")
    pl.add_argument("--trials", type=_positive, default=10, help="trials per point (default 10)")
    pl.add_argument("--data", default="digits", help="dataset (as host eval --data)")
    pl.add_argument("--normalize", default="unit", help="input normalisation (as host eval)")
    pl.add_argument("--samples", type=_positive, help="use only the first N samples")
    pl.add_argument("--seed", type=_seed, default=0, help="campaign seed (default 0)")
    pl.add_argument("--out", type=Path, default=Path("runs/plan"),
                    help="folder for the campaigns and the plot (resumed if same)")
    pl.set_defaults(func=cmd_plan)

    m = sub.add_parser("demo", help="the main job on the embedded default model and data")
    m.add_argument("--out", default="runs/demo", help="folder for the demo's files")
    m.set_defaults(func=cmd_demo)

    w = sub.add_parser("sweep", help="a robustness campaign: codecs x scopes x rates x trials")
    w.add_argument("model", help="ONNX model file, or the name of a bundled model; a comma "
                                 "list (A,B,C) sweeps each into OUT/<name> and compares them "
                                 "in OUT/compare.md, the first as baseline")
    w.add_argument("--codecs", required=True, help="comma list of codecs, e.g. fixed8,parity8")
    w.add_argument("--channel", default="bsc",
                   help="error model whose rate is swept: bsc (no rate: --rates gives them), "
                        "asym:P01,P10 (ratio kept), "
                        "stuck:F,S[,seed=D] (F swept)")
    w.add_argument("--rates", required=True,
                   help="lo:hi:n (n log-spaced rates, ends included) or a comma list")
    w.add_argument("--trials", type=_positive, required=True, help="trials per rate (M)")
    w.add_argument("--scope", action="append", metavar="SCOPE",
                   help="model (default), layers (each layer alone), layer:NAME, bits:POSITIONS, "
                        "tensors:PATTERNS ('!P' excludes P) (repeatable)")
    w.add_argument("--tensors", action="append", metavar="PATTERN",
                   help="one more scope: only these tensors/layers; '!PATTERN' spares them "
                        "(repeatable; same as --scope tensors:P1,P2)")
    w.add_argument("--range", default="model", choices=("model", "tensor", "channel"),
                   help="quantisation range per model (default), tensor or output channel")
    w.add_argument("--override", action="append", default=[], metavar="PATTERN=CODEC",
                   help="codec for tensors/layers matching PATTERN in every variant (repeatable)")
    w.add_argument("--data", default="digits", help="dataset (as host eval --data)")
    w.add_argument("--normalize",
                   help="input normalisation (as host eval; default: the one the model "
                        "records, else unit, none for integer inputs)")
    w.add_argument("--samples", type=_positive, help="use only the first N samples")
    w.add_argument("--seed", type=_seed, default=0, help="campaign seed (default 0)")
    w.add_argument("--workers", type=_positive, default=None,
                   help="local worker processes (default 1; not with --scheduler)")
    w.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the units on a Dask distributed scheduler (tcp://host:8786)")
    w.add_argument("--out", required=True, type=Path, help="campaign folder (resumed if same)")
    w.add_argument("--low-memory", action="store_true", dest="low_memory",
                   help="one copy of the weights per process, for models near the memory's "
                        "size: variants made in place, weights fed to onnxruntime as inputs "
                        "(not pre-packed; sums may differ in the last bits). Weight faults only")
    # activation faults (seed 002, docs/activation-faults.md)
    w.add_argument("--target", default="weights", choices=("weights", "activations", "both"),
                   help="what the errors hit: stored weights (default), every stored bit of the "
                        "layer outputs (activations), or both at the same rate")
    w.add_argument("--act-bits", type=int, default=8, dest="act_bits",
                   help="activations: stored bits per value, 2..8 (default 8)")
    w.add_argument("--act-unsigned", action="store_true", dest="act_unsigned",
                   help="activations: unsigned codes (default: two's complement)")
    w.add_argument("--act-layers", default="all", dest="act_layers",
                   help="activations: all (default) or a comma list of layer outputs")
    _add_backend(w)
    w.set_defaults(func=cmd_sweep)

    rp = sub.add_parser("report", help="report.md, plots and summary of a campaign folder")
    rp.add_argument("run_dir", type=Path, nargs="+",
                    help="campaign folder; several (with --out): compared side by side, the "
                         "first as baseline (AUC gain, accuracy differences in points); the "
                         "folder of a several-model sweep (host sweep A,B,C): its comparison")
    rp.add_argument("--out", type=Path, help="folder for the comparison (compare.md, plots)")
    rp.add_argument("--at", help="comparison: rates to tabulate (default: every swept rate)")
    rp.set_defaults(func=cmd_report)

    rb = sub.add_parser("robustness", help="R(x) of one codec by bisection, without a grid")
    rb.add_argument("model", help="ONNX model file, or the name of a bundled model")
    rb.add_argument("--codec", default="parity8", help="codec whose R(x) is sought (default parity8)")
    rb.add_argument("--channel", default="bsc",
                    help="as host sweep --channel (bsc takes no rate: it is searched)")
    rb.add_argument("--x", type=float, default=0.95, help="criterion: mean accuracy >= x*A")
    rb.add_argument("--ci", type=float, default=0.005,
                    help="half-width of the indifference zone around x*A: a probe whose "
                         "interval is this narrow is decided by its mean (default 0.005)")
    rb.add_argument("--data", default="digits", help="dataset (as host eval --data)")
    rb.add_argument("--normalize",
                   help="input normalisation (as host eval; default: the one the model "
                        "records, else unit, none for integer inputs)")
    rb.add_argument("--samples", type=_positive, help="use only the first N samples")
    rb.add_argument("--max-trials", type=_positive, default=200, dest="max_trials",
                    help="most trials at one probe (default 200)")
    rb.add_argument("--seed", type=_seed, default=0, help="campaign seed (default 0)")
    rb.add_argument("--lo", type=float, default=1e-7, help="lower end of the search (RBER)")
    rb.add_argument("--hi", type=float, default=0.5, help="upper end of the search (RBER)")
    rb.add_argument("--resolution", type=float, default=0.1,
                    help="stop when the bracket hi/lo <= 1 + resolution")
    rb.add_argument("--confidence", type=float, default=0.95,
                    help="probability that each probe's decision and interval are right "
                         "(default 0.95)")
    rb.add_argument("--first-samples", type=_positive, dest="first_samples",
                    help="samples per trial at a probe's first look (default N/32, at least "
                         "64; N turns sequential stopping over samples off)")
    rb.add_argument("--results", type=Path,
                    help="probes file, resumed if present (a rerun reads its probes back)")
    _add_backend(rb)
    rb.set_defaults(func=cmd_robustness)

    c = sub.add_parser("clip", help="clipped ReLUs (seed 003): profile ACT_max, clip, "
                                    "tune the thresholds on AUC (--tune)")
    c.add_argument("model", help="ONNX model file, or the name of a bundled model")
    c.add_argument("-o", "--out", required=True, type=Path, help="the clipped model (.onnx)")
    c.add_argument("--data", default="digits", help="dataset (as host eval --data)")
    c.add_argument("--normalize",
                   help="input normalisation (as host eval; default: the one the model "
                        "records, else unit)")
    c.add_argument("--profile-samples", type=_positive, default=1000, dest="profile_samples",
                   help="first N samples profiled for ACT_max (default 1000)")
    c.add_argument("--layers", help="comma list of layers (or ReLU names) to clip "
                                    "(default: every ReLU-activated layer)")
    c.add_argument("--form", default="fused", choices=("fused", "where"),
                   help="how a float activation is clipped: fused (default; onnxruntime fuses "
                        "it, NaN stays NaN) or where (Where(r <= T, r, 0), slower; NaN gives "
                        "0); both give 0 for +inf (docs/clipping.md)")
    c.add_argument("--tune", action="store_true",
                   help="search each layer's T with Algorithm 1 (faults in that layer only)")
    c.add_argument("--codec", default="float32", help="--tune: codec of the stored weights")
    c.add_argument("--channel", default="bsc", help="--tune: error model (as host sweep)")
    c.add_argument("--rates", default="1e-7:1e-5:6", help="--tune: rates (as host sweep)")
    c.add_argument("--trials", type=_positive, default=20, help="--tune: trials per rate")
    c.add_argument("--samples", type=_positive,
                   help="--tune: evaluate on the first N samples (default: the profiled ones)")
    c.add_argument("--seed", type=_seed, default=0, help="--tune: campaign seed")
    c.add_argument("--n", type=_positive, default=6, help="--tune: Algorithm 1's N")
    c.add_argument("--m", type=_positive, default=3, help="--tune: Algorithm 1's M (< N)")
    c.add_argument("--delta", type=float, default=0.005, help="--tune: Algorithm 1's delta")
    c.add_argument("--results", type=Path,
                   help="--tune: probes file, resumed if present (default: OUT.probes.jsonl)")
    c.set_defaults(func=cmd_clip)

    tl = sub.add_parser("tolerance", help="T^b of a binarized network (seed 004), no injection")
    tl.add_argument("model", help="ONNX BNN file, or the name of a bundled model (digits_bnn)")
    tl.add_argument("--data", default="digits", help="dataset (as host eval --data)")
    tl.add_argument("--normalize", default="unit", help="input normalisation (as host eval)")
    tl.add_argument("--samples", type=_positive, help="use only the first N samples")
    tl.add_argument("--b", default="32,64,128",
                    help="tolerance levels b, comma-separated (default 32,64,128)")
    tl.set_defaults(func=cmd_tolerance)

    tb = sub.add_parser("train-bnn", help="train a bit-error tolerant BNN (seed 004; train extra)")
    tb.add_argument("--arch", default="fcnn", choices=("fcnn", "cnn"),
                    help="the paper's Fashion FCNN or CNN (default fcnn)")
    tb.add_argument("--data", default="digits", help="dataset with a train split (as host eval)")
    tb.add_argument("--normalize", default="unit", help="input normalisation (as host eval)")
    tb.add_argument("--samples", type=_positive, help="train on the first N training samples")
    tb.add_argument("--flip-p", type=float, default=0.0, dest="flip_p",
                    help="flip rate p of the flip operator E_p in training (default 0)")
    tb.add_argument("--gradient", default="ste", choices=("ste", "naive"),
                    help="E_p's gradient: straight-through (eq. 1) or mask-multiplied")
    tb.add_argument("--lam", type=float, default=0.0, help="weight λ of the eq. 7 hinge")
    tb.add_argument("--b", type=float, default=64.0, help="tolerance level b of the hinge")
    tb.add_argument("--epochs", type=_positive, default=20, help="training epochs (default 20)")
    tb.add_argument("--batch", type=_positive, default=128, help="batch size (default 128)")
    tb.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    tb.add_argument("--width", type=_positive, default=2048, help="fully connected width")
    tb.add_argument("--channels", type=_positive, default=64, help="CNN channels")
    tb.add_argument("--seed", type=_seed, default=0, help="seed of weights, flips and batches (default 0)")
    tb.add_argument("--checkpoint", help="resumable checkpoint (default OUTPUT.ckpt)")
    tb.add_argument("-o", "--output", required=True, help="ONNX file to write")
    tb.set_defaults(func=cmd_train_bnn)

    rl = sub.add_parser("relevance", help="LRP criticality (seed 002): rho and eta per feature "
                                          "map per layer (eq. 2-5)")
    rl.add_argument("model", help="ONNX model file, or the name of a bundled model")
    rl.add_argument("--data", default="digits", help="dataset D of eq. 3 (as host eval --data)")
    rl.add_argument("--normalize", default="unit", help="input normalisation (as host eval)")
    rl.add_argument("--split", default="train", choices=("train", "test"),
                    help="which split of --data is D (default train, as the paper)")
    rl.add_argument("--samples", type=_positive, help="use only the first N samples")
    rl.set_defaults(func=cmd_relevance)

    rs = sub.add_parser("rescale", help="feature optimisation (seed 002, Algorithm 1): eq. 6 "
                                        "rescaling + fine-tuning (train extra)")
    rs.add_argument("model", help="float ONNX model file, or the name of a bundled model")
    rs.add_argument("--data", default="digits", help="dataset with a train split (as host eval)")
    rs.add_argument("--normalize", default="unit", help="input normalisation (as host eval)")
    rs.add_argument("--samples", type=_positive,
                    help="first N training samples fine-tuned on (default all)")
    rs.add_argument("--lrp-samples", type=_positive, default=1000, dest="lrp_samples",
                    help="first N training samples of D for rho and eta (default 1000)")
    rs.add_argument("--iterations", type=_positive, default=5, help="Algorithm 1's T (default 5)")
    rs.add_argument("--epochs", type=float, default=1.0,
                    help="fine-tuning epochs between iterations (default 1; fractions allowed)")
    rs.add_argument("--lr", type=float, default=1e-4, help="fine-tuning Adam learning rate")
    rs.add_argument("--batch", type=_positive, default=64, help="fine-tuning batch size")
    rs.add_argument("--codec", default="int8",
                    help="codec whose grid the weights are re-quantised to after each rescale "
                         "(default int8; 'none' keeps float)")
    rs.add_argument("--compensate", action="store_true",
                    help="also divide the producing layer's output channel by the factor "
                         "(function kept) instead of the paper's eq. 6 alone")
    rs.add_argument("--seed", type=_seed, default=0, help="seed of the fine-tuning batches")
    rs.add_argument("--log", help="per-iteration folder, resumed if present "
                                  "(default OUTPUT.iterations)")
    rs.add_argument("-o", "--output", required=True, help="ONNX file to write")
    rs.set_defaults(func=cmd_rescale)

    cr = sub.add_parser("criticality", help="failure rate of one activation bit flip, per "
                                            "neuron (seed 002, Fig. 3/4)")
    cr.add_argument("model", help="ONNX model file, or the name of a bundled model")
    cr.add_argument("--data", default="digits", help="dataset (as host eval --data); its "
                                                     "samples also calibrate the ranges")
    cr.add_argument("--normalize", default="unit", help="input normalisation (as host eval)")
    cr.add_argument("--samples", type=_positive, help="use only the first N samples")
    cr.add_argument("--layers", default="all",
                    help="all (default) or a comma list of layer outputs (layer names)")
    cr.add_argument("--act-bits", type=int, default=8, dest="act_bits",
                    help="stored bits per activation, 2..8 (default 8)")
    cr.add_argument("--unsigned", action="store_true",
                    help="unsigned activation codes (default: two's complement)")
    cr.add_argument("--bit", default="msb", help="the flipped bit: msb (default) or 0..bits-1")
    cr.add_argument("--neurons", type=_positive,
                    help="only the first N neurons of each layer (default: all)")
    cr.add_argument("--out", type=Path, default=Path("runs/crit"),
                    help="folder for the per-layer results and the report (resumed if same)")
    cr.set_defaults(func=cmd_criticality)

    for sp in (e, i, v, s, d, ch, pl, m, w, rp, rb, c, tl, tb, rl, rs, cr):
        sp.add_argument("--json", action="store_true", help="print the result as JSON")

    from host.board.cli import register as register_board

    register_board(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except FlipLabError as exc:
        print(f"{program_name()}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{program_name()}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a path the file system refuses (name too long, permission ...)
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"host: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
