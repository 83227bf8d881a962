"""The virtual board is built on first use (host.board.emulate.vboard_path): into a per-user
cache keyed by the sources' hash for an installed FlipLab, into firmware/build in a checkout;
one line on stderr when it builds; one-line errors without make / a C compiler or when the
build fails; $FLIPLAB_VBOARD overrides."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import host._share
from host.board import transfer
from host.board.emulate import VBOARD_ENV, VirtualBoard, vboard_cache_dir, vboard_path
from host.errors import FlipLabError

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def shipped_firmware(dst: Path) -> Path:
    """A copy of the firmware sources the wheel ships (no tests, fuzzer, MCU target, build)."""
    shutil.copytree(FIRMWARE, dst, ignore=shutil.ignore_patterns("build", "tests", "fuzz",
                                                                 "stm32f401"))
    return dst


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """An installed FlipLab's firmware folder, and an empty cache in XDG_CACHE_HOME."""
    fw = shipped_firmware(tmp_path / "site-packages" / "host" / "_share" / "firmware")
    monkeypatch.setattr(host._share, "shared_dir", lambda name: fw)
    monkeypatch.setattr(host._share, "is_source_checkout", lambda path: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(VBOARD_ENV, raising=False)
    return fw


def test_installed_builds_once_into_the_cache_and_rebuilds_when_a_source_changes(
        installed, tmp_path, capfd):
    exe = vboard_path()
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("building the virtual board")
    assert exe.parent.parent == tmp_path / "cache" / "fliplab"
    assert exe.parent == vboard_cache_dir(installed) and exe.name == "fliplab-vboard"
    assert os.access(exe, os.X_OK)
    assert not (installed / "build").exists()  # the installed package is left alone
    assert [p.name for p in exe.parent.iterdir()] == ["fliplab-vboard"]  # no build leftovers

    built = exe.stat().st_mtime_ns
    assert vboard_path() == exe and exe.stat().st_mtime_ns == built
    assert capfd.readouterr().err == ""

    with VirtualBoard(size=1 << 16) as board:  # the cached binary serves the protocol
        info = transfer.board_info(board.port)
    assert info.memory_size == 1 << 16 and info.protocol_version == 1

    with open(installed / "core" / "fl_crc32.c", "a") as f:
        f.write("/* a changed source */\n")
    rebuilt = vboard_path()
    assert rebuilt != exe and rebuilt.parent.parent == exe.parent.parent
    assert capfd.readouterr().err.startswith("building the virtual board")


def test_the_cache_key_is_the_sources_not_their_place(tmp_path, monkeypatch):
    a = shipped_firmware(tmp_path / "a")
    b = shipped_firmware(tmp_path / "b")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert vboard_cache_dir(a) == vboard_cache_dir(b)
    (b / "build").mkdir()
    (b / "build" / "junk.o").write_bytes(b"x")  # build output is not a source
    assert vboard_cache_dir(a) == vboard_cache_dir(b)
    (b / "hal" / "fl_spi_hal.h").write_text("/* other */\n")
    assert vboard_cache_dir(a) != vboard_cache_dir(b)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert vboard_cache_dir(a).parent == tmp_path / "home" / ".cache" / "fliplab"


def test_a_checkout_builds_into_firmware_build_when_stale(tmp_path, monkeypatch, capfd):
    fw = shipped_firmware(tmp_path / "clone" / "firmware")
    monkeypatch.setattr(host._share, "shared_dir", lambda name: fw)
    monkeypatch.setattr(host._share, "is_source_checkout", lambda path: True)
    monkeypatch.delenv(VBOARD_ENV, raising=False)
    exe = vboard_path()
    assert exe == fw / "build" / "host" / "fliplab-vboard" and os.access(exe, os.X_OK)
    assert capfd.readouterr().err.startswith("building the virtual board")
    assert vboard_path() == exe and capfd.readouterr().err == ""  # up to date: make -q
    os.utime(fw / "targets" / "host" / "main.c")  # newer than the binary
    assert vboard_path() == exe and capfd.readouterr().err.startswith("building")


def test_without_make_or_compiler_the_error_says_what_to_install(installed, tmp_path,
                                                                 monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FlipLabError) as exc:
        vboard_path()
    msg = str(exc.value)
    assert "\n" not in msg and "needs make and a C compiler (make, cc not found)" in msg
    assert VBOARD_ENV in msg
    monkeypatch.setenv("PATH", os.defpath + os.pathsep + "/usr/bin")
    monkeypatch.setenv("CC", "no-such-cc -O2")
    with pytest.raises(FlipLabError, match=r"\(no-such-cc not found\)"):
        vboard_path()


def test_a_failing_build_is_one_line_and_leaves_no_binary(installed, tmp_path):
    (installed / "core" / "fl_crc32.c").write_text('#error "broken on purpose"\n')
    with pytest.raises(FlipLabError) as exc:
        vboard_path()
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("building the virtual board failed")
    cache = vboard_cache_dir(installed)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_the_environment_variable_overrides_and_is_checked(installed, tmp_path, monkeypatch):
    fake = tmp_path / "my-vboard"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv(VBOARD_ENV, str(fake))
    with pytest.raises(FlipLabError, match=r"virtual board not found at .*my-vboard \(\$FLIP"):
        vboard_path()
    fake.chmod(0o755)
    assert vboard_path() == fake
    assert not (tmp_path / "cache").exists()  # nothing built
