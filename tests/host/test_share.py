"""host._share: the models/, rtl/ and firmware/ folders are found in a source checkout and in
an installed wheel's layout (host/_share/<name>), and a broken installation is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

import host._share as share
from host._share import SHARED, is_source_checkout, shared_dir
from host.errors import FlipLabError
from host.models import bundled_models, resolve_model
from host.sim.run import rtl_dir

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_its_top_level_folders():
    for name in SHARED:
        assert shared_dir(name) == ROOT / name
        assert is_source_checkout(shared_dir(name))
    assert rtl_dir() == ROOT / "rtl"
    assert resolve_model("digits_mlp") == ROOT / "models" / "digits_mlp.onnx"
    assert set(bundled_models()) == {p.stem for p in (ROOT / "models").glob("*.onnx")}


def fake_install(tmp_path: Path, monkeypatch, names=tuple(SHARED)) -> Path:
    """A site-packages with host/_share/<name>/<marker>, and a decoy folder beside host/."""
    pkg = tmp_path / "site-packages" / "host"
    for name in names:
        (pkg / "_share" / name).mkdir(parents=True)
        (pkg / "_share" / name / SHARED[name]).write_text("x")
    monkeypatch.setattr(share, "files", lambda _: pkg)
    return pkg


def test_an_installed_package_uses_its_own_copies(tmp_path, monkeypatch):
    pkg = fake_install(tmp_path, monkeypatch)
    (tmp_path / "site-packages" / "models").mkdir()  # not this one
    (tmp_path / "site-packages" / "models" / "digits_mlp.onnx").write_text("x")
    for name in SHARED:
        assert shared_dir(name) == pkg / "_share" / name
        assert not is_source_checkout(shared_dir(name))
    assert bundled_models() == ["digits_mlp"]
    assert resolve_model("digits_mlp") == pkg / "_share" / "models" / "digits_mlp.onnx"


def test_a_missing_folder_is_one_line_naming_where_it_looked(tmp_path, monkeypatch):
    pkg = fake_install(tmp_path, monkeypatch, names=("models",))
    with pytest.raises(FlipLabError) as exc:
        shared_dir("rtl")
    msg = str(exc.value)
    assert "\n" not in msg and "rtl/" in msg and str(pkg / "_share") in msg
    assert "reinstall fliplab" in msg
    with pytest.raises(FlipLabError, match="the rtl/ folder of FlipLab is missing"):
        rtl_dir()


def test_a_folder_without_its_marker_file_is_not_taken(tmp_path, monkeypatch):
    pkg = fake_install(tmp_path, monkeypatch, names=())
    (pkg / "_share" / "rtl").mkdir(parents=True)  # empty: e.g. a wheel built without data
    with pytest.raises(FlipLabError, match="rtl/ folder of FlipLab is missing"):
        shared_dir("rtl")
