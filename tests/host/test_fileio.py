"""host.fileio: whole files or none, the mode a user expects, one-line errors, inputs kept."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from host import fileio
from host.errors import FlipLabError
from host.fileio import atomic_path, check_outputs, write_all_atomic, write_atomic


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_new_file_has_umask_mode_not_mkstemps_0600(tmp_path, umask):
    target = tmp_path / "w.bin"
    write_atomic(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert _mode(target) == 0o666 & ~umask
    assert _leftovers(tmp_path) == []


def test_replacing_a_file_gives_new_content_and_umask_mode(tmp_path, umask):
    target = tmp_path / "w.bin"
    target.write_bytes(b"old contents")
    target.chmod(0o600)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o666 & ~umask


def test_atomic_path_for_name_based_writers(tmp_path, umask):
    target = tmp_path / "plot.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"png")  # e.g. fig.savefig(tmp)
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_bytes() == b"png"
    assert _mode(target) == 0o666 & ~umask
    assert _leftovers(tmp_path) == []


def test_atomic_path_failure_leaves_old_file(tmp_path):
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_directory_target_is_refused_and_kept(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(FlipLabError, match=r"cannot write .*out: it is a directory"):
        write_atomic(target, b"x")
    assert target.is_dir() and list(target.iterdir()) == []
    assert _leftovers(tmp_path) == []


def test_missing_folder(tmp_path):
    with pytest.raises(FlipLabError, match="folder .*nope does not exist"):
        write_atomic(tmp_path / "nope" / "w.bin", b"x")


def test_name_too_long_is_one_line(tmp_path):
    target = tmp_path / ("a" * 300 + ".bin")
    with pytest.raises(FlipLabError) as info:
        write_atomic(target, b"x")
    assert "File name too long" in str(info.value) and "\n" not in str(info.value)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_failing_fsync_keeps_old_file(tmp_path, monkeypatch, code):
    target = tmp_path / "w.bin"
    target.write_bytes(b"golden")

    def fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    with pytest.raises(FlipLabError, match=f"cannot write .*w.bin: {os.strerror(code)}"):
        write_atomic(target, b"new data")
    assert target.read_bytes() == b"golden"
    assert _leftovers(tmp_path) == []


def test_permission_denied_on_create(tmp_path, monkeypatch):
    real_open = os.open

    def deny(path, flags, mode=0o777, **kw):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(fileio.os, "open", deny)
    with pytest.raises(FlipLabError, match="cannot write .*w.bin: Permission denied"):
        write_atomic(tmp_path / "w.bin", b"x")


def test_unwritable_folder_is_refused_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: False)
    with pytest.raises(FlipLabError, match="permission denied in folder"):
        fileio.check_target(tmp_path / "w.bin")


def test_group_renames_only_when_all_are_complete(tmp_path, monkeypatch):
    first, second = tmp_path / "w.bin", tmp_path / "w.manifest"
    first.write_bytes(b"old image")
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_fails_second_time(fd):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync_fails_second_time)
    with pytest.raises(FlipLabError, match="No space left"):
        write_all_atomic({first: b"new image", second: b"manifest"})
    assert first.read_bytes() == b"old image"
    assert not second.exists()
    assert _leftovers(tmp_path) == []


def test_group_with_a_directory_writes_nothing(tmp_path):
    (tmp_path / "w.manifest").mkdir()
    with pytest.raises(FlipLabError, match="w.manifest: it is a directory"):
        write_all_atomic({tmp_path / "w.bin": b"image", tmp_path / "w.manifest": b"m"})
    assert not (tmp_path / "w.bin").exists()
    assert _leftovers(tmp_path) == []


def test_group_writes_all(tmp_path, umask):
    files = {tmp_path / "a": b"1", tmp_path / "b": b"22"}
    write_all_atomic(files)
    for path, data in files.items():
        assert path.read_bytes() == data and _mode(path) == 0o666 & ~umask


def test_check_outputs_same_path_spellings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    for spelling in ["m.onnx", "./m.onnx", "sub/../m.onnx", str(model)]:
        with pytest.raises(FlipLabError, match="is the input"):
            check_outputs([spelling], [model])
    os.symlink(model, tmp_path / "link.onnx")
    os.link(model, tmp_path / "hard.onnx")
    for alias in ["link.onnx", "hard.onnx"]:
        with pytest.raises(FlipLabError, match="is the input"):
            check_outputs([alias], ["m.onnx"])
    check_outputs(["other.bin", "other.manifest"], ["m.onnx", None])  # distinct: fine
    with pytest.raises(FlipLabError, match="are the same file"):
        check_outputs(["x.bin", "./x.bin"])
    assert model.read_bytes() == b"model"
