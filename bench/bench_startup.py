"""Benchmark: start-up of the command line, ``host --help`` and friends, as a user waits for it.

Runs each command as a fresh process ``--repeats`` times (after one warm-up run that fills the
file cache) and prints a markdown table of the median and minimum wall time, the median CPU
time of the child (user + system: steadier than wall on a shared machine), and the command
that produced it. Beside the help texts, a trivial campaign: ``host sweep digits_mlp`` with one
rate, one trial and 50 samples (its time is start-up: imports, checks, the reference pass).
``--tree DIR`` times the ``host`` package found in DIR instead (put first on
PYTHONPATH), e.g. an older commit unpacked with ``git archive COMMIT host | tar -x -C DIR``,
so the same interpreter and load compare two versions; both are measured interleaved.

    .venv/bin/python bench/bench_startup.py [--repeats 20] [--tree /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

#: run from an empty folder: `python -m` puts the working directory first on sys.path
CWD = tempfile.mkdtemp(prefix="fliplab-startup-")
COMMANDS = (["--help"], ["board", "--help"], ["eval", "--help"], ["--version"],
            ["sweep", "digits_mlp", "--codecs", "fixed8", "--rates", "1e-3", "--trials", "1",
             "--samples", "50", "--out", "sweep"])


def run_once(argv: list[str], tree: str | None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit status) of one `python -m host ARGV`."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    shutil.rmtree(os.path.join(CWD, "sweep"), ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "host", *argv], env=env, cwd=CWD,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--tree", help="also time the host package in this folder")
    args = ap.parse_args()
    trees = [("this tree", None)] + ([(f"--tree {args.tree}", args.tree)] if args.tree else [])
    run_once(["--help"], None)
    times = {(name, " ".join(c)): [] for name, _ in trees for c in COMMANDS}
    cpus: dict[tuple[str, str], list[float]] = {k: [] for k in times}
    status = {}
    bare = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"])
        bare.append(time.perf_counter() - t0)
        for argv in COMMANDS:
            for name, tree in trees:
                seconds, cpu, status[(name, " ".join(argv))] = run_once(argv, tree)
                times[(name, " ".join(argv))].append(seconds)
                cpus[(name, " ".join(argv))].append(cpu)
    print(f"`{' '.join([os.path.relpath(sys.executable), *sys.argv])}` — {args.repeats} runs "
          f"each, Python {platform.python_version()}, load average "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| package | command | exit | median s | min s | median CPU s |\n"
          "|---|---|---:|---:|---:|---:|")
    print(f"| (none) | `python -c pass` | 0 | {statistics.median(bare):.3f} | {min(bare):.3f} | |")
    for (name, command), ts in times.items():
        print(f"| {name} | `host {command}` | {status[(name, command)]} | "
              f"{statistics.median(ts):.3f} | {min(ts):.3f} | "
              f"{statistics.median(cpus[(name, command)]):.3f} |")


if __name__ == "__main__":
    main()
