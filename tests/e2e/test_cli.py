"""The `host` command as a user runs it: real processes, exit codes, one-line errors, files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from host.image import read_image


def host(*args, cwd):
    """Run `python -m host ARGS`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "host", *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    code, out, err = host("export", "digits_mlp", "--codec", "parity8", "-o", "weights.bin",
                          "--json", cwd=d)
    assert code == 0, err
    return d, json.loads(out)


def test_export_writes_image_and_manifest(exported):
    d, out = exported
    assert (d / "weights.bin").exists() and (d / "weights.manifest").exists()
    assert out["codecs"] == {"parity8": out["weights"]}
    image = read_image(d / "weights.bin")
    assert out["payload_bytes"] == image.payload.size
    # parity8 is 8 bits a weight; each tensor pads to a 32-bit word at most
    assert out["weights"] * 8 <= out["payload_bytes"] * 8 < out["weights"] * 8 + 32 * out["tensors"]


def test_inject_eval_inspect_diff_walkthrough(exported):
    d, _ = exported
    code, out, err = host("inject", "weights.bin", "--channel", "bsc:1e-2", "--seed", "7",
                          "-o", "noisy.bin", "--json", cwd=d)
    assert code == 0, err
    injected = json.loads(out)
    assert injected["flips"] > 0
    # same seed, same bits
    host("inject", "weights.bin", "--channel", "bsc:1e-2", "--seed", "7", "-o", "again.bin", cwd=d)
    assert (d / "noisy.bin").read_bytes() == (d / "again.bin").read_bytes()

    code, out, err = host("diff", "weights.bin", "noisy.bin", "--json", cwd=d)
    assert code == 0, err
    diff = json.loads(out)
    assert diff["errors"] == injected["flips"]
    assert diff["zero_to_one"] == injected["zero_to_one"]

    code, out, err = host("eval", "--image", "noisy.bin", "--data", "digits", "--json", cwd=d)
    assert code == 0, err
    ev = json.loads(out)
    assert ev["samples"] == len(ev["predictions"]) == 450
    assert 0 < ev["accuracy"] <= 1 and ev["nulled"] > 0  # parity8 catches odd flips

    # a raw payload dump evaluated through the manifest gives the same answer
    (d / "dump.bin").write_bytes(read_image(d / "noisy.bin").payload.tobytes())
    code, out, err = host("eval", "--image", "dump.bin", "--manifest", "weights.manifest",
                          "--json", cwd=d)
    assert code == 0, err
    assert json.loads(out)["predictions"] == ev["predictions"]
    code, out, err = host("diff", "weights.bin", "dump.bin", "--json", cwd=d)
    assert json.loads(out)["errors"] == injected["flips"]

    code, out, err = host("inspect", "weights.bin", cwd=d)
    assert code == 0 and "parity8" in out and "FlipLab image v1.0" in out


def test_eval_with_in_memory_channel_reports_flips(exported):
    d, _ = exported
    code, out, err = host("eval", "--image", "weights.bin", "--channel", "bsc:1e-3",
                          "--seed", "3", "--samples", "50", "--json", cwd=d)
    assert code == 0, err
    ev = json.loads(out)
    assert ev["samples"] == 50 and ev["flips"] is not None


def test_msb_only_targeting_flips_only_msbs(exported):
    d, _ = exported
    host("inject", "weights.bin", "--channel", "bsc:0.2", "--bits", "msb", "-o", "msb.bin", cwd=d)
    code, out, _ = host("diff", "weights.bin", "msb.bin", "--json", cwd=d)
    for t in json.loads(out)["tensors"]:
        per = np.add(t["per_position"]["zero_to_one"], t["per_position"]["one_to_zero"])
        assert per[:-1].sum() == 0 and per[-1] == t["errors"]


BAD = [
    (("inject", "weights.bin", "--channel", "warp:1", "-o", "x.bin"), "unknown", "x.bin"),
    (("inject", "weights.bin", "--channel", "bsc:1.5", "-o", "x.bin"), "outside [0, 1]", "x.bin"),
    (("inject", "weights.bin", "--channel", "bsc:-0.1", "-o", "x.bin"), "outside [0, 1]", "x.bin"),
    (("export", "digits_mlp", "--codec", "fixed99", "-o", "x.bin"), "fixed", "x.bin"),
    (("export", "digits_mlp", "--codec", "nope8", "-o", "x.bin"), "nope8", "x.bin"),
    (("export", "missing.onnx", "-o", "x.bin"), "does not exist", "x.bin"),
    (("export", "garbage.onnx", "-o", "x.bin"), "ONNX", "x.bin"),
    (("eval", "--image", "garbage.onnx"), "not a FlipLab image", None),
    (("eval", "--image", "truncated.bin"), "truncated", None),
    (("eval", "--image", "badcrc.bin"), "damaged", None),
    (("eval", "--image", "weights.bin", "--data", "nothere.npz"), "nothere.npz", None),
    (("eval", "--image", "short.bin", "--manifest", "weights.manifest"), "manifest", None),
    (("eval", "--image", "weights.manifest"), "manifest", None),
    (("eval", "--image", "weights.bin", "--samples", "0"), "at least 1", None),
    (("inject", "weights.bin", "--channel", "bsc:0.1", "--tensors", "nothing*", "-o", "x.bin"),
     "matches no tensor", "x.bin"),
    (("diff", "weights.bin", "short.bin"), "neither a FlipLab image", None),
    (("frobnicate",), "invalid choice", None),
]


@pytest.mark.parametrize("args, message, output", BAD, ids=[" ".join(a[:3]) for a, _, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_no_output(exported, args, message, output):
    d, _ = exported
    (d / "garbage.onnx").write_bytes(b"\x00\x01 this is not a model \xff" * 10)
    data = (d / "weights.bin").read_bytes()
    (d / "truncated.bin").write_bytes(data[: len(data) // 2])
    bad = bytearray(data)
    bad[100] ^= 0xFF
    (d / "badcrc.bin").write_bytes(bytes(bad))
    (d / "short.bin").write_bytes(b"\0" * 10)
    code, out, err = host(*args, cwd=d)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("host: error:"), err
    assert message in lines[0]
    assert "Traceback" not in err
    if output:
        assert not (d / output).exists()
    assert not list(d.glob(".*.tmp"))


def test_demo_runs_and_reports_every_codec_and_rate(tmp_path):
    code, out, err = host("demo", "--out", tmp_path / "demo", "--json", cwd=tmp_path)
    assert code == 0, err
    result = json.loads(out)
    from host.demo import DEMO_CODECS, DEMO_RATES
    assert list(result["mean_accuracy"]) == list(DEMO_CODECS)
    for row in result["mean_accuracy"].values():
        assert len(row) == len(DEMO_RATES) and all(0 <= a <= 1 for a in row.values())
    for spec in DEMO_CODECS:  # every image it wrote reads back
        read_image(tmp_path / "demo" / f"digits_mlp.{spec}.bin")
