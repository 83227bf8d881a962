"""The command's front door: what `host --help` imports, `--version`, and the program name
(`host` and `fliplab` are the same program). Behavioural, not timed: docs/benchmarks.md records
the measured start-up time."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

HEAVY = ("numpy", "onnx", "onnxruntime", "pandas", "matplotlib", "scipy", "tqdm", "tabulate")


def run_main(argv: list[str], argv0: str = "host") -> subprocess.CompletedProcess:
    """main(argv) in a fresh interpreter invoked as ``argv0``; prints the heavy modules it
    imported as the last line of stdout."""
    code = (
        "import sys\n"
        f"sys.argv[0] = {argv0!r}\n"
        "from host.cli import main\n"
        "try:\n"
        f"    status = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        "sys.exit(status)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("argv", [["--help"], ["board", "--help"], ["eval", "--help"],
                                  ["board", "emulate", "--help"], ["--version"],
                                  ["export"], ["no-such-command"]],
                         ids=lambda a: " ".join(a))
def test_help_version_and_argument_errors_import_no_heavy_library(argv):
    p = run_main(argv)
    assert p.returncode in (0, 2), p.stderr
    assert p.stdout.splitlines()[-1] == "", f"{argv} imported {p.stdout.splitlines()[-1]}"


def test_help_lists_every_command():
    p = run_main(["--help"])
    for command in ("export", "inject", "eval", "inspect", "diff", "demo", "sweep", "report",
                    "robustness", "board"):
        assert command in p.stdout


def test_the_heavy_check_can_fail():
    """A command that does its work imports numpy: the check above would see it."""
    p = run_main(["inspect", "/no/such/image.bin"])
    assert p.returncode == 2 and "numpy" in p.stdout.splitlines()[-1].split(",")


@pytest.mark.parametrize("argv0,name", [("/usr/local/bin/host", "host"),
                                        ("/home/u/.venv/bin/fliplab", "fliplab"),
                                        ("/x/host/__main__.py", "host")])
def test_version_is_the_installed_distributions_under_the_invoked_name(argv0, name):
    p = run_main(["--version"], argv0)
    assert p.returncode == 0
    assert p.stdout.splitlines()[0] == f"{name} {version('fliplab')}"


def test_errors_carry_the_invoked_name():
    p = run_main(["no-such-command"], "/opt/bin/fliplab")
    assert p.returncode == 2
    assert p.stderr.startswith("fliplab: error: argument command: invalid choice")
    assert "see 'fliplab --help'" in p.stderr and p.stderr.count("\n") == 1


def test_campaign_machinery_loads_scipy_only_for_an_interval():
    """`host sweep` / `host robustness` import host.campaign; scipy.stats (~0.6 s CPU) is
    imported by the first interval (host.metrics.mean_ci), not before (issue 15)."""
    code = ("import sys\nimport host.campaign, host.metrics\n"
            "before = 'scipy' in sys.modules\n"
            "host.metrics.mean_ci([0.5, 0.7])\n"
            "print(before, 'scipy.stats' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True"]
