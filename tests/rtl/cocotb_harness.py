"""Build an RTL module with Icarus Verilog and run a cocotb test module on it, from pytest.

Used by the ``test_rtl_*.py`` files of this folder. The cocotb test modules
(``cocotb_*.py``) run inside the simulator; they receive their configuration (random seed,
module parameters) through environment variables named ``FLIPLAB_*``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RTL = REPO / "rtl"
HDL = Path(__file__).resolve().parent / "hdl"
TESTS = Path(__file__).resolve().parent

INSTALL_HINT = "Icarus Verilog is not installed: `apt-get install -y iverilog`"


def require_simulator() -> None:
    """Skip the calling test, saying what to install, when Icarus Verilog is missing.

    That is the only reason to skip: cocotb is a Python test dependency, so its absence fails
    the test (with the install command) instead of hiding it.
    """
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        pytest.skip(INSTALL_HINT)
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        pytest.fail("cocotb is not installed: `pip install 'cocotb>=2.0'` (a test dependency)")


def run_cocotb(
    toplevel: str,
    test_module: str,
    sources: list[str],
    build_dir: Path,
    *,
    parameters: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Compile ``sources`` (file names in rtl/ or tests/rtl/hdl/) and run ``test_module``.

    Args:
        toplevel: HDL top module name.
        test_module: Python module (in tests/rtl/) holding the ``@cocotb.test`` coroutines.
        sources: Verilog file names, looked up in tests/rtl/hdl/ first, then rtl/.
        build_dir: fresh directory for the simulator build and results.
        parameters: Verilog parameter overrides of the top module.
        env: extra environment variables for the test (``FLIPLAB_*`` configuration).

    Raises:
        pytest.fail.Exception: when the build fails or any cocotb test fails.
    """
    require_simulator()
    from cocotb_tools.runner import get_runner

    paths = []
    for name in sources:
        path = HDL / name if (HDL / name).exists() else RTL / name
        if not path.exists():
            raise FileNotFoundError(path)
        paths.append(path)
    # the simulator's embedded Python imports the test module and the host package
    for p in (str(TESTS), str(REPO)):
        if p not in sys.path:
            sys.path.insert(0, p)
    runner = get_runner("icarus")
    try:
        runner.build(
            sources=paths,
            hdl_toplevel=toplevel,
            parameters=dict(parameters or {}),
            build_dir=build_dir,
            build_args=["-g2005"],  # strict Verilog-2005 (the runner also passes -g2012 first)
            always=True,
        )
        results = runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            test_dir=build_dir,
            extra_env=dict(env or {}),
        )
    except SystemExit as exc:  # the runner exits when a cocotb test failed
        pytest.fail(f"cocotb tests of {toplevel} failed (exit {exc.code}); log above", pytrace=False)
    from cocotb_tools.check_results import get_results

    n_tests, n_failed = get_results(results)
    if n_tests == 0 or n_failed:
        pytest.fail(f"{test_module}: {n_tests} cocotb tests ran, {n_failed} failed", pytrace=False)
