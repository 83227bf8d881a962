"""Sparing memory: '!PATTERN' tensor selections and the reliable(<codec>) codec.

Hand-worked selections on the two-tensor image of docs/image-format.md; the reliable codec
against its definition (three copies, bitwise majority, no channel region)."""

from __future__ import annotations

import numpy as np
import pytest

from host.campaign.grid import parse_scopes, scope_selection, scope_tensors
from host.channels import parse_channel
from host.codecs import get_codec
from host.decode import decode_weights
from host.errors import FlipLabError
from host.image import read_image, write_image
from host.inject import inject
from tests.host.test_diff import doc_image, image_of


@pytest.mark.parametrize("patterns, names", [
    (["!w"], ["b"]), (["w", "!b"], ["w"]), (["*", "!b"], ["w"]), (["!w", "!b"], []),
    (["b", "w"], ["w", "b"]), (None, ["w", "b"]),
])
def test_select_includes_then_excludes(patterns, names):
    assert [t.name for t in doc_image().select(patterns)] == names


@pytest.mark.parametrize("patterns, word", [(["!x*"], "matches no tensor"), (["!"], "empty")])
def test_select_refuses_patterns_that_match_nothing(patterns, word):
    with pytest.raises(FlipLabError, match=word):
        doc_image().select(patterns)


def two_layers():
    rng = np.random.default_rng(0)
    return image_of([("conv1.w", rng.normal(size=64).astype(np.float32), "fixed8"),
                     ("fc.w", rng.normal(size=4000).astype(np.float32), "fixed8")])


def test_inject_spares_the_excluded_tensor():
    image = two_layers()
    noisy, report = inject(image, parse_channel("bsc:0.2"), seed=0, tensors=["!conv1*"])
    conv1, fc = image.tensors
    assert np.array_equal(noisy.segment(conv1), image.segment(conv1))
    assert not np.array_equal(noisy.segment(fc), image.segment(fc))
    assert report.eligible_bits == fc.stored_bits


def test_sweep_scope_with_exclusions():
    assert parse_scopes(["tensors: !conv1*, fc*"], ["conv1", "fc"]) == ("tensors:!conv1*,fc*",)
    assert scope_selection("tensors:!conv1*") == {"tensors": ["!conv1*"]}
    assert scope_tensors(two_layers(), "tensors:!conv1*") == ["fc.w"]
    with pytest.raises(FlipLabError, match="names no tensor pattern"):
        parse_scopes(["tensors:"], ["conv1"])


def test_reliable_codec_costs_three_copies_and_reads_the_majority():
    codec = get_codec("reliable(parity8)")
    assert codec.spec == "reliable(parity8)"
    assert codec.stored_bits(10) == 3 * 80 and codec.overhead() == pytest.approx(3 * 8 / 7 - 1)
    assert get_codec("reliable(fixed7)").stored_bits(3) == 3 * 24  # 21 bits -> 3 bytes a copy
    values = np.linspace(-1, 1, 10).astype(np.float32)
    params = codec.fit(values)
    assert params == get_codec("parity8").fit(values)
    seg = codec.pack(codec.encode(values, params))
    assert seg.size == 30 and np.array_equal(seg[:10], seg[10:20])
    want = codec.encode(values, params)
    bad = seg.copy()
    bad[:10] ^= 0xFF  # one copy entirely wrong: the majority still reads the stored codes
    codes, erased, _ = codec.unpack(bad, 10)
    assert np.array_equal(codes, want) and not erased.any()
    bad = seg.copy()
    bad[0] ^= 0x01  # a flip in each copy, different bits
    bad[11] ^= 0x02
    bad[25] ^= 0x80
    assert np.array_equal(codec.unpack(bad, 10)[0], want)
    bad[10] ^= 0x01  # the same bit wrong in two copies: the majority is wrong
    assert not np.array_equal(codec.unpack(bad, 10)[0], want)


@pytest.mark.parametrize("spec", ["parity(reliable(fixed7))", "secded(reliable(fixed8))",
                                  "reliable(reliable(fixed8))"])
def test_reliable_is_outermost_only(spec):
    with pytest.raises(FlipLabError, match="reliable"):
        get_codec(spec)


def test_no_channel_reaches_a_reliable_tensor(tmp_path):
    rng = np.random.default_rng(1)
    image = image_of([("conv1.w", rng.normal(size=64).astype(np.float32), "reliable(fixed8)"),
                      ("fc.w", rng.normal(size=400).astype(np.float32), "fixed8")])
    assert [r.tensor for r in image.regions()] == ["fc.w"]
    noisy, report = inject(image, parse_channel("bsc:0.5"), seed=0)
    assert report.eligible_bits == 400 * 8
    clean, dirty = decode_weights(image), decode_weights(noisy)
    assert np.array_equal(clean.weights["conv1.w"], dirty.weights["conv1.w"])
    write_image(image, tmp_path / "r.bin")
    back = read_image(tmp_path / "r.bin")
    assert back.tensors[0].codec == "reliable(fixed8)"
    assert np.array_equal(decode_weights(back).weights["conv1.w"], clean.weights["conv1.w"])
