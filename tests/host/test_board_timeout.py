"""The board reply timeout: --timeout, else $FLIPLAB_BOARD_TIMEOUT, else 1 s; bad values are
one-line errors (an emulated MCU or a simulated FPGA needs longer than a real board)."""

from __future__ import annotations

import pytest

from host.board import client as C
from host.board.transfer import Link
from host.cli import main as host_main
from host.errors import FlipLabError


class FakeSerial:
    """Accepts the constructor arguments of serial.Serial and nothing else."""

    def __init__(self, *args, **kwargs) -> None:
        self.kwargs = kwargs

    def reset_input_buffer(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_client(timeout: float | None = None) -> C.BoardClient:
    return C.BoardClient("/dev/fake", timeout=timeout, serial_factory=FakeSerial)


def test_default_is_one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(C.TIMEOUT_ENV, raising=False)
    assert open_client().timeout == C.DEFAULT_TIMEOUT == 1.0


def test_environment_sets_the_default_and_an_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(C.TIMEOUT_ENV, "7.5")
    assert open_client().timeout == 7.5
    assert open_client(0.25).timeout == 0.25
    assert Link("/dev/fake").timeout is None  # resolved when the link opens, so the env applies


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_bad_environment_value_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(C.TIMEOUT_ENV, value)
    with pytest.raises(FlipLabError, match=f"{C.TIMEOUT_ENV}=.* is not a positive number of seconds"):
        open_client()


def test_cli_reports_a_bad_environment_value(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(C.TIMEOUT_ENV, "soon")
    assert host_main(["board", "info", "--port", "/dev/null-no-such-port"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("host: error: FLIPLAB_BOARD_TIMEOUT='soon'") and err.count("\n") == 1
