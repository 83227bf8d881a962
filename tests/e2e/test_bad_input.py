"""Issue 8, "Why" point 3: every bad input found by the external corpus, through ``host.cli.main``.

Each one must exit 2 with one ``host: error: ...`` line on stderr and no traceback; inputs
must be byte-identical afterwards and no partial output may be left; files that are written
get the mode ``0o666 & ~umask``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from host import fileio
from host.cli import main
from host.image import HEADER_SIZE, _parse_header, reseal
from host.models import resolve_model


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err


def refused(capsys, *args, match: str | None = None) -> str:
    code, err = run(capsys, *args)
    assert code == 2, err
    assert err.startswith("host: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    if match is not None:
        assert match in err, err
    return err


def snapshot(folder: Path) -> dict[str, str]:
    """Name -> sha256 of every file under ``folder`` (what must not change)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(resolve_model("digits_mlp"), tmp_path / "m.onnx")
    assert run(capsys, "export", "m.onnx", "-o", "w.bin")[0] == 0
    return tmp_path


# --- outputs that are inputs, or collide -------------------------------------------------------

def test_inject_onto_its_own_input(work, capsys):
    before = snapshot(work)
    refused(capsys, "inject", "w.bin", "--channel", "bsc:0.01", "-o", "w.bin", match="is the input")
    refused(capsys, "inject", "w.bin", "--channel", "bsc:0.01", "-o", "./sub/../w.bin")
    os.link(work / "w.bin", work / "hard.bin")
    before = snapshot(work)
    refused(capsys, "inject", "hard.bin", "--channel", "bsc:0.01", "-o", "w.bin")
    assert snapshot(work) == before


def test_inject_onto_the_manifest_it_reads(work, capsys):
    (work / "dump.bin").write_bytes(_payload(work / "w.bin"))
    before = snapshot(work)
    refused(capsys, "inject", "dump.bin", "--manifest", "w.manifest", "--channel", "bsc:0.01",
            "-o", "w.manifest", match="is the input")
    assert snapshot(work) == before


def _payload(path: Path) -> bytes:
    from host.image import read_image

    return read_image(path).payload.tobytes()


def test_export_onto_the_model(work, capsys):
    before = snapshot(work)
    refused(capsys, "export", "m.onnx", "-o", "m.onnx", match="is the input")
    refused(capsys, "export", "m.onnx", "-o", "./m.onnx", match="is the input")
    refused(capsys, "export", "m.onnx", "-o", "m.manifest", match="its own sidecar manifest")
    assert snapshot(work) == before


def test_export_whose_manifest_would_be_the_model(work, capsys):
    shutil.copy(work / "m.onnx", work / "model.manifest")
    before = snapshot(work)
    refused(capsys, "export", "model.manifest", "-o", "model.bin", match="is the input")
    assert snapshot(work) == before


def test_export_to_a_manifest_name(work, capsys):
    before = snapshot(work)
    refused(capsys, "export", "digits_mlp", "-o", "x.manifest", match="its own sidecar manifest")
    assert snapshot(work) == before


def test_export_with_a_directory_where_the_manifest_goes(work, capsys):
    (work / "y.manifest").mkdir()
    refused(capsys, "export", "digits_mlp", "-o", "y.bin", match="y.manifest: it is a directory")
    assert not (work / "y.bin").exists()
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_export_over_an_old_image_is_all_or_nothing(work, capsys, monkeypatch):
    before = snapshot(work)
    calls = {"n": 0}
    real = os.fsync

    def second_fsync_fails(fd):  # the manifest's: disk full after the image was staged
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, os.strerror(28))
        real(fd)

    monkeypatch.setattr(fileio.os, "fsync", second_fsync_fails)
    refused(capsys, "export", "digits_mlp", "--codec", "parity8", "-o", "w.bin",
            match="No space left on device")
    assert snapshot(work) == before  # the old w.bin and w.manifest, untouched


# --- file system errors -------------------------------------------------------------------------

def test_output_name_of_300_characters(work, capsys):
    refused(capsys, "export", "digits_mlp", "-o", "a" * 300 + ".bin", match="File name too long")
    refused(capsys, "inject", "w.bin", "--channel", "bsc:0.01", "-o", "b" * 300,
            match="File name too long")


def test_output_into_a_missing_folder_or_onto_a_directory(work, capsys):
    refused(capsys, "inject", "w.bin", "--channel", "none", "-o", "nope/x.bin",
            match="folder nope does not exist")
    (work / "out").mkdir()
    refused(capsys, "inject", "w.bin", "--channel", "none", "-o", "out", match="is a directory")


def test_board_dump_into_a_directory_is_refused_before_the_transfer(work, capsys):
    (work / "d").mkdir()
    # the port does not exist: the output is checked first, so the error is about the output
    refused(capsys, "board", "dump", "--port", work / "no-such-port", "-o", "d",
            match="d: it is a directory")
    refused(capsys, "board", "read", "--port", work / "no-such-port", "--length", "4",
            "-o", "d", match="d: it is a directory")
    refused(capsys, "board", "dump", "--port", work / "no-such-port", "-o", "x" * 300,
            match="File name too long")


def test_board_dump_into_an_unwritable_folder(work, capsys, monkeypatch):
    (work / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(fileio.os, "access",
                        lambda p, mode: False if Path(p).name == "ro" else real(p, mode))
    refused(capsys, "board", "dump", "--port", work / "no-such-port", "-o", "ro/dump.bin",
            match="permission denied in folder ro")


def test_write_errors_from_the_filesystem_are_one_line(work, capsys, monkeypatch):
    import errno

    for code in (errno.EACCES, errno.ENOSPC, errno.EROFS):
        def fail(*a, code=code, **k):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(fileio.os, "replace", fail)
        before = snapshot(work)
        refused(capsys, "inject", "w.bin", "--channel", "none", "-o", "n.bin",
                match=os.strerror(code))
        assert snapshot(work) == before


# --- modes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_have_the_umask_mode(tmp_path, monkeypatch, capsys, mask):
    monkeypatch.chdir(tmp_path)
    old = os.umask(mask)
    try:
        assert run(capsys, "export", "digits_mlp", "-o", "w.bin")[0] == 0
        assert run(capsys, "inject", "w.bin", "--channel", "bsc:0.01", "-o", "n.bin")[0] == 0
    finally:
        os.umask(old)
    for name in ("w.bin", "w.manifest", "n.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


def test_campaign_report_and_plot_files_have_the_umask_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        code, err = run(capsys, "sweep", "digits_mlp", "--codecs", "parity8", "--rates", "1e-3,1e-2",
                        "--trials", "2", "--samples", "30", "--out", "run", "--json")
        assert code == 0, err
        code, err = run(capsys, "report", "run", "--json")
        assert code == 0, err
    finally:
        os.umask(old)
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and p.name != ".lock"]
    assert any(p.suffix == ".png" for p in written) and any(p.suffix == ".md" for p in written)
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


# --- damaged tables with valid CRCs --------------------------------------------------------------

def _table(buf: bytes) -> dict:
    _, tlen, *_ = _parse_header(buf, "image")
    return json.loads(buf[HEADER_SIZE:HEADER_SIZE + tlen])


def _edit(table: dict, path: list, value) -> dict:
    table = copy.deepcopy(table)
    node = table
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return table


DAMAGE = [
    (["tensors"], [1]),
    (["model"], {}),
    (["tensors", 0, "count"], float("inf")),
    (["tensors", 0, "shape"], [2**70]),
    (["tensors", 0, "shape"], [-64, -64]),
    (["tensors", 0, "params", "w_min"], "-1"),
    (["tensors", 0, "dtype"], "complex1024"),
    (["tensors", 0, "shape"], [32, 128]),  # count right, but not the graph's shape
    (["tensors", 0, "codec"], "fixed" + "9" * 5000),
]


@pytest.mark.parametrize("path, value", DAMAGE, ids=[f"{'.'.join(map(str, p))}={str(v)[:12]}"
                                                     for p, v in DAMAGE])
def test_damaged_table_through_every_reader(work, capsys, path, value):
    buf = (work / "w.bin").read_bytes()
    bad = reseal(buf, json.dumps(_edit(_table(buf), path, value)).encode())
    (work / "bad.bin").write_bytes(bad)
    (work / "bad.manifest").write_bytes(_as_manifest(bad))
    (work / "dump.bin").write_bytes(_payload(work / "w.bin"))
    before = snapshot(work)
    refused(capsys, "inspect", "bad.bin")
    refused(capsys, "eval", "--image", "bad.bin", "--samples", "5")
    refused(capsys, "inject", "bad.bin", "--channel", "bsc:0.01", "-o", "n.bin")
    refused(capsys, "diff", "bad.bin", "w.bin")
    refused(capsys, "diff", "w.bin", "bad.bin")
    refused(capsys, "eval", "--image", "dump.bin", "--manifest", "bad.manifest", "--samples", "5")
    refused(capsys, "inspect", "dump.bin", "--manifest", "bad.manifest")
    assert snapshot(work) == before


def _as_manifest(buf: bytes) -> bytes:
    """The manifest of an image: flag bit 0 set, payload dropped (header re-sealed)."""
    import struct
    import zlib

    from host.image import _HEADER, FLAG_MANIFEST

    fields = list(_HEADER.unpack_from(buf))
    fields[5] |= FLAG_MANIFEST
    head = _HEADER.pack(*fields[:-1], 0)[:-4]
    head += struct.pack("<I", zlib.crc32(head))
    return head + buf[HEADER_SIZE:fields[8]]


# --- spec strings -------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["fixed" + "9" * 5000, "parity(" * 3000 + "fixed8" + ")" * 3000,
                                   "secded(parity(parity(fixed7)))", "fixed\u0663"])
def test_codec_specs(work, capsys, codec):
    before = snapshot(work)
    refused(capsys, "export", "digits_mlp", "--codec", codec, "-o", "c.bin")
    refused(capsys, "sweep", "digits_mlp", "--codecs", codec, "--rates", "1e-3", "--trials", "1",
            "--out", "camp")
    assert snapshot(work) == before


@pytest.mark.parametrize("channel", ["bsc:" + "1" * 5000, "stuck:0.1,0.5,seed=" + "9" * 100,
                                     "bsc:" + "(" * 3000, "bsc:\u0661"])
def test_channel_specs(work, capsys, channel):
    refused(capsys, "inject", "w.bin", "--channel", channel, "-o", "n.bin")
    refused(capsys, "eval", "--image", "w.bin", "--channel", channel, "--samples", "5")
    assert not (work / "n.bin").exists()


# --- labels and ignored options ------------------------------------------------------------------

@pytest.mark.parametrize("label", [10, 255, -1])
def test_labels_outside_the_classes(work, capsys, label):
    import host.data

    with np.load(Path(host.data.__file__).parent / "digits.npz") as d:
        x, y = d["x_test"], d["y_test"].astype(np.int64).copy()
    y[7] = label
    np.savez(work / "bad.npz", x_test=x, y_test=y)
    err = refused(capsys, "eval", "--image", "w.bin", "--data", "bad.npz")
    assert (f"label {label} of sample 7 is outside the model's 10 classes" in err
            or "labels must be >= 0, found -1" in err), err
    if label >= 0:
        refused(capsys, "robustness", "digits_mlp", "--data", "bad.npz", "--samples", "20",
                match=f"label {label} of sample 7")


@pytest.mark.parametrize("args, match", [
    (["robustness", "digits_mlp", "--channel", "bsc:0.1"], "the rate is searched"),
    (["sweep", "digits_mlp", "--codecs", "fixed8", "--rates", "1e-3", "--trials", "1",
      "--channel", "bsc:0.1", "--out", "s"], "the rate is swept over --rates"),
    (["sweep", "digits_mlp", "--codecs", "fixed8", "--rates", "1e-3", "--trials", "1",
      "--workers", "2", "--scheduler", "tcp://127.0.0.1:1", "--out", "s"], "give one or the other"),
    (["eval", "--image", "w.bin", "--seed", "3"], "without --channel they would be ignored"),
    (["eval", "--image", "w.bin", "--trial", "1"], "without --channel they would be ignored"),
    (["eval", "--image", "w.bin", "--backend", "rtl", "--strategy", "inputs"],
     "--strategy does not apply to the rtl backend"),
    (["board", "mode", "program:3", "--port", "/dev/null", "--seed", "4"], "program:V ignores it"),
])
def test_ignored_options_are_refused(work, capsys, args, match):
    refused(capsys, *args, match=match)
    assert not (work / "s").exists()


LONG = "q" * 300


@pytest.mark.parametrize("args", [
    ["sweep", "digits_mlp", "--codecs", "fixed8", "--rates", "1e-3", "--trials", "1", "--out", LONG],
    ["report", LONG],
    ["export", LONG + ".onnx", "-o", "z.bin"],
    ["eval", "--image", "w.bin", "--data", LONG],
    ["eval", "--image", LONG],
    ["inspect", "w.bin", "--manifest", LONG],
    ["diff", "w.bin", LONG],
    ["demo", "--out", LONG],
    ["board", "write", LONG, "--port", "/dev/null"],
], ids=lambda a: a[0] + "-" + next((x[:4] for x in a[1:] if x.startswith("-")), ""))
def test_a_300_character_path_anywhere_is_one_line(work, capsys, args):
    before = snapshot(work)
    refused(capsys, *args, match="File name too long")
    assert snapshot(work) == before
