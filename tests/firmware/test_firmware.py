"""The C firmware's own test programs, run through make: unit tests, the same tests under
AddressSanitizer + UndefinedBehaviorSanitizer, a libFuzzer run of the frame decoder, and the
microcontroller build where its toolchain is installed."""

import shutil
import subprocess

import pytest


def test_unit_tests_pass(fw_make):
    proc = fw_make("test")
    assert proc.returncode == 0, proc.stdout
    assert " 0 failures" in proc.stdout


def test_unit_tests_pass_under_asan_and_ubsan(fw_make):
    proc = fw_make("asan")
    assert proc.returncode == 0, proc.stdout
    assert " 0 failures" in proc.stdout
    assert "runtime error" not in proc.stdout  # UBSan reports


def test_unit_test_program_detects_a_wrong_vector(tmp_path, fw_make, firmware_dir):
    """The C test really compares against the vector file: a corrupted vector must fail it."""
    proc = fw_make("build/test/unit_tests")
    assert proc.returncode == 0, proc.stdout
    good = (firmware_dir / "tests" / "vectors.txt").read_text()
    bad = tmp_path / "vectors.txt"
    bad.write_text(good.replace("cbf43926", "cbf43927"))
    run = subprocess.run([str(firmware_dir / "build" / "test" / "unit_tests"), str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "FAIL" in run.stdout


@pytest.mark.skipif(shutil.which("clang") is None,
                    reason="clang (libFuzzer) is not installed: apt-get install -y clang")
def test_fuzz_frame_decoder_finds_nothing(fw_make):
    proc = fw_make("fuzz", FUZZ_SECONDS="20", timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "Done " in proc.stdout  # libFuzzer's summary line: it ran to its time limit
    assert "ERROR" not in proc.stdout and "crash-" not in proc.stdout


def test_mcu_build_or_clear_skip_message(fw_make, firmware_dir):
    proc = fw_make("mcu", timeout=240)
    assert proc.returncode == 0, proc.stdout
    if shutil.which("arm-none-eabi-gcc") is None:
        assert "not installed, skipping the STM32 build" in proc.stdout
    else:
        image = firmware_dir / "build" / "mcu" / "fliplab-f401.bin"
        assert image.is_file() and 1024 < image.stat().st_size < 512 * 1024
