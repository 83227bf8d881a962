"""The built wheel is complete: installed NON-editable into a fresh virtual environment, the
commands of a new user work from a folder outside the source tree (issue 8, item 3).

The wheel is built from a copy of the source tree (``pip wheel --no-deps``, isolated build).
To stay around a minute, the fresh venv installs only the wheel (``--no-deps``) and borrows the
dependencies of the environment running the tests through a ``.pth`` line; a ``.pth`` line
adds a folder to ``sys.path`` without running that folder's own ``.pth`` files, so the
editable install of the checkout is not activated. ``pip check`` then proves the wheel's
declared dependencies are met, and every test first proves that ``host``, its models, RTL and
firmware are imported and read from the fresh venv's site-packages, not from the checkout.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
#: what a checkout may hold that the build must not see (outputs, environments, caches)
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "runs", "*.egg-info",
                                     "__pycache__", ".pytest_cache", ".hypothesis", "*.bin",
                                     "*.manifest")


class Installed:
    """A fresh venv with the wheel installed; ``run`` executes its console scripts."""

    def __init__(self, root: Path, wheel: Path):
        self.root, self.wheel = root, wheel
        self.bin = root / "venv" / "bin"
        self.python = self.bin / "python"
        self.work = root / "work"  # the user's folder, outside the source tree
        self.work.mkdir()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "PYTHONHOME", "FLIPLAB_VBOARD", "VIRTUAL_ENV")}
        self.env["XDG_CACHE_HOME"] = str(root / "cache")  # the virtual board's cache: fresh

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        exe = argv[0] if argv[0].startswith("/") else str(self.bin / argv[0])
        return subprocess.run([exe, *argv[1:]], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def ok(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        p = self.run(*argv, timeout=timeout)
        assert p.returncode == 0, f"{' '.join(argv)}: {p.stdout}\n{p.stderr}"
        return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    dist = root / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "-w", str(dist), str(src)], capture_output=True, text=True,
                           timeout=600, stdin=subprocess.DEVNULL)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("fliplab-*.whl")
    shutil.rmtree(src)  # nothing can be read from the copy any more

    venv.EnvBuilder(with_pip=False).create(root / "venv")
    inst = Installed(root, wheel)
    inst.ok(sys.executable, "-m", "pip", "--python", str(inst.python), "install", "--no-deps",
            "--no-index", "--quiet", str(wheel))
    site = Path(inst.ok("python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                .stdout.strip())
    borrowed = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    (site / "zz_borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n")
    inst.site = site
    return inst


def test_the_wheel_carries_models_rtl_and_firmware(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for model in (ROOT / "models").glob("*.onnx"):
        assert f"host/_share/models/{model.name}" in names
    for verilog in (ROOT / "rtl").glob("*.v"):
        assert f"host/_share/rtl/{verilog.name}" in names
    for source in ("Makefile", "core/fl_board.c", "nvm/fl_emu_nvm.c", "hal/fl_spi_hal.h",
                   "targets/host/main.c", "targets/host/spec.c"):
        assert f"host/_share/firmware/{source}" in names
    assert "host/data/digits.npz" in names and "host/sim/cocotb_accel.py" in names
    assert not [n for n in names if "/build/" in n or n.startswith("tests/")]


def test_host_runs_from_the_fresh_venv_not_the_checkout(installed):
    p = installed.ok("python", "-c",
                     "import host, host.sim.cocotb_accel as c\n"
                     "from host._share import shared_dir\n"
                     "print(host.__file__); print(c.__file__)\n"
                     "for n in ('models', 'rtl', 'firmware'): print(shared_dir(n))")
    for line in p.stdout.splitlines():
        assert Path(line).is_relative_to(installed.site), line
        assert not Path(line).is_relative_to(ROOT), line
    installed.ok(sys.executable, "-m", "pip", "--python", str(installed.python), "check")


def test_version_under_both_names(installed):
    from importlib.metadata import version

    assert installed.ok("host", "--version").stdout == f"host {version('fliplab')}\n"
    assert installed.ok("fliplab", "--version").stdout == f"fliplab {version('fliplab')}\n"


def test_demo_export_and_eval(installed):
    installed.ok("host", "demo", "--out", "demo")
    assert (installed.work / "demo" / "report.md").is_file()
    installed.ok("fliplab", "export", "digits_mlp", "--codec", "parity8", "-o", "w.bin")
    p = installed.ok("host", "eval", "--image", "w.bin", "--samples", "50", "--json")
    assert '"accuracy": 1.0' in p.stdout or '"accuracy": 0.9' in p.stdout


def test_eval_on_the_rtl_backend(installed):
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed")
    installed.ok("host", "export", "digits_mlp_int8", "--codec", "parity(int8)", "--lower",
                 "accel", "-o", "acc.bin")
    p = installed.ok("host", "eval", "--image", "acc.bin", "--backend", "rtl", "--samples", "2")
    assert p.stdout.startswith("accuracy 1.0000 (2/2)") and "cycles/inference" in p.stdout


def test_board_emulate_is_built_on_first_use_and_answers(installed):
    board = subprocess.Popen([str(installed.bin / "host"), "board", "emulate", "--size", "64k"],
                             cwd=installed.work, env=installed.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # includes building the firmware
        port = ""
        while not port and time.monotonic() < deadline and board.poll() is None:
            if select.select([board.stdout], [], [], 0.5)[0]:
                port = board.stdout.readline().strip()
        assert port.startswith("/dev/"), board.stderr.read() if board.poll() is not None else ""
        info = installed.ok("host", "board", "info", "--port", port, timeout=60)
        assert "protocol version: 1" in info.stdout and "65536 bytes" in info.stdout
    finally:
        board.send_signal(signal.SIGTERM)
        board.wait(10)
    assert board.returncode == 0
    err = board.stderr.read()
    assert err.startswith("building the virtual board") and err.count("\n") == 1
    assert list((installed.root / "cache" / "fliplab").glob("vboard-*/fliplab-vboard"))
