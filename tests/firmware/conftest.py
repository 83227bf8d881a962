"""Builds the firmware's host artefacts once per session (make -C firmware host lib)."""

import shutil
import subprocess
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def make(*targets: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Runs make in firmware/ and returns the finished process (stdout and stderr merged)."""
    import os

    return subprocess.run(
        ["make", "-C", str(FIRMWARE), *targets], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=timeout, env={**os.environ, **env},
    )


@pytest.fixture(scope="session")
def fw_make():
    """The make() helper: fw_make("test") runs make -C firmware test."""
    return make


@pytest.fixture(scope="session")
def firmware_dir() -> Path:
    """The firmware/ directory."""
    return FIRMWARE


@pytest.fixture(scope="session")
def firmware_lib() -> Path:
    """Path of build/host/libflcore.so, built on demand."""
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.fail("make and a C compiler are required to test the firmware")
    proc = make("lib")
    assert proc.returncode == 0, proc.stdout
    return FIRMWARE / "build" / "host" / "libflcore.so"
