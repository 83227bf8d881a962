"""Resource and timing report of an FPGA build, and the regression check against a baseline.

    python resources.py summarise build/ulx3s/nextpnr.json --board ulx3s --top ulx3s_top -o report.json
    python resources.py show report.json
    python resources.py check report.json baseline-ulx3s.json [--margin 0.10]

`summarise` reads the JSON report of nextpnr-ecp5 (``--report``): cells used per type and the
achieved Fmax per clock. LUT4 is TRELLIS_COMB (LUT4s and carry halves), FF is TRELLIS_FF, BRAM
is DP16KD (18 Kbit blocks), DSP is MULT18X18D. `check` exits 1, naming each regression, when
LUT4 or FF grow by more than the margin (default 10 %: tool and seed noise), when BRAM or DSP
grow at all, or when Fmax drops by more than the margin. Exit 2 on unreadable input.
Standard library only: it runs in CI without the FPGA tools.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

CELLS = {"lut4": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD", "dsp": "MULT18X18D"}
GROW_WITH_MARGIN = ("lut4", "ff")
NEVER_GROW = ("bram", "dsp")


class ReportError(Exception):
    """Unreadable or incomplete input; one line."""


def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {path}: {' '.join(str(exc).split())}") from None


def summarise(nextpnr_report: dict, *, board: str, top: str) -> dict:
    """The resource counts and the lowest achieved Fmax (MHz) of a nextpnr-ecp5 report."""
    util = nextpnr_report.get("utilization")
    fmax = nextpnr_report.get("fmax")
    if not isinstance(util, dict) or not isinstance(fmax, dict) or not fmax:
        raise ReportError("not a nextpnr report: it needs 'utilization' and 'fmax' (run nextpnr with --report)")
    out: dict = {"board": board, "top": top}
    for key, cell in CELLS.items():
        entry = util.get(cell, {"used": 0, "available": 0})
        out[key] = int(entry["used"])
        out[f"{key}_available"] = int(entry["available"])
    clocks = {name: float(v["achieved"]) for name, v in fmax.items()}
    slowest = min(clocks, key=clocks.get)
    out["fmax_mhz"] = round(clocks[slowest], 2)
    out["fmax_clock"] = slowest
    out["constraint_mhz"] = float(fmax[slowest].get("constraint", 0.0))
    return out


def check(report: dict, baseline: dict, margin: float) -> list[str]:
    """The regressions of `report` against `baseline`, one sentence each (empty: none)."""
    problems = []
    for key in (*GROW_WITH_MARGIN, *NEVER_GROW, "fmax_mhz"):
        if key not in report or key not in baseline:
            raise ReportError(f"{key} missing from the report or the baseline")
    for key in GROW_WITH_MARGIN:
        limit = baseline[key] * (1 + margin)
        if report[key] > limit:
            problems.append(f"{key} {report[key]} exceeds the baseline {baseline[key]} by more than {margin:.0%}")
    for key in NEVER_GROW:
        if report[key] > baseline[key]:
            problems.append(f"{key} {report[key]} exceeds the baseline {baseline[key]}")
    floor = baseline["fmax_mhz"] * (1 - margin)
    if report["fmax_mhz"] < floor:
        problems.append(f"Fmax {report['fmax_mhz']} MHz is more than {margin:.0%} below the baseline "
                        f"{baseline['fmax_mhz']} MHz")
    return problems


def table(report: dict) -> str:
    """A Markdown table of one report."""
    rows = ["| resource | used | available |", "|---|---:|---:|"]
    for key, label in (("lut4", "LUT4"), ("ff", "FF"), ("bram", "DP16KD (18 Kbit)"), ("dsp", "MULT18X18D")):
        rows.append(f"| {label} | {report[key]} | {report.get(key + '_available', '')} |")
    rows.append(f"| Fmax ({report.get('fmax_clock', 'clk')}) | {report['fmax_mhz']} MHz | "
                f"constraint {report.get('constraint_mhz', '')} MHz |")
    return "\n".join(rows)


def _write_atomic(path: str, text: str) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=target.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="resources.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarise", help="nextpnr --report JSON -> report.json")
    s.add_argument("nextpnr_report")
    s.add_argument("--board", required=True)
    s.add_argument("--top", required=True)
    s.add_argument("-o", "--output", required=True)
    sh = sub.add_parser("show", help="print a report as a Markdown table")
    sh.add_argument("report")
    c = sub.add_parser("check", help="exit 1 on a regression against the baseline")
    c.add_argument("report")
    c.add_argument("baseline")
    c.add_argument("--margin", type=float, default=0.10, help="allowed LUT4/FF growth and Fmax loss (0.10)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "summarise":
            rep = summarise(_load(args.nextpnr_report), board=args.board, top=args.top)
            _write_atomic(args.output, json.dumps(rep, indent=2) + "\n")
            print(table(rep))
        elif args.cmd == "show":
            print(table(_load(args.report)))
        else:
            problems = check(_load(args.report), _load(args.baseline), args.margin)
            for p in problems:
                print(f"resources.py: regression: {p}", file=sys.stderr)
            if problems:
                return 1
            print(f"resources OK against {args.baseline} (margin {args.margin:.0%})")
    except (ReportError, KeyError, TypeError, ValueError) as exc:
        print(f"resources.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
