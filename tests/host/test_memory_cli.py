"""The issue-14 commands' bad inputs: one line `host: error: ...`, exit 2, no file written."""

from __future__ import annotations

import pytest

from host.cli import main
from host.image import write_image
from tests.host.test_diff import doc_image


@pytest.fixture
def golden(tmp_path):
    path = tmp_path / "g.bin"
    write_image(doc_image(), path)
    return path


@pytest.mark.parametrize("argv, word", [
    (["characterize", "{g}", "{t}/missing.bin", "-o", "{t}/p.toml"], "does not exist"),
    (["characterize", "{g}", "{t}/short.bin", "-o", "{t}/p.toml"], "neither a FlipLab image"),
    (["plan", "digits_cnn", "--codecs", "fixed8", "--target", "R(0.95)>1e-2"], "target"),
    (["plan", "digits_cnn", "--codecs", "reliable(fixed8)", "--target", "R(0.95)>=1e-2"],
     "reliable"),
    (["inject", "{g}", "--channel", "bsc:0.1", "--tensors", "!nothing*", "-o", "{t}/n.bin"],
     "matches no tensor"),
    (["inject", "{g}", "--channel", "bram-undervolt@x", "-o", "{t}/n.bin"], "scale"),
    (["inject", "{g}", "--channel", "profile:{t}/none.toml", "-o", "{t}/n.bin"], "does not exist"),
])
def test_bad_inputs_are_one_line_errors(golden, tmp_path, capsys, argv, word):
    (tmp_path / "short.bin").write_bytes(b"\x00\x01")
    argv = [a.format(g=golden, t=tmp_path) for a in argv]
    if argv[0] == "plan":
        argv += ["--out", str(tmp_path / "plan")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("host: error:") and "\n" not in err and word in err
    assert not (tmp_path / "p.toml").exists() and not (tmp_path / "n.bin").exists()


def test_characterize_identical_dump_and_inject_with_exclusion(golden, tmp_path, capsys):
    assert main(["characterize", str(golden), str(golden), "-o", str(tmp_path / "p.toml"),
                 "--json"]) == 0
    assert '"rate": 0.0' in capsys.readouterr().out
    assert main(["inject", str(golden), "--channel", "bsc:0.5", "--tensors", "!w",
                 "-o", str(tmp_path / "n.bin")]) == 0
