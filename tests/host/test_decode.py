"""host.decode: whole-image decoding and the incremental decoder that follows added flips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import host.decode
from host.channels import flip_bits
from host.decode import IncrementalDecoder, decode_weights, patchable
from host.errors import FlipLabError
from host.export import CodecPlan, build_image
from host.model import load_model
from host.models import resolve_model

WS = load_model(resolve_model("digits_mlp"))
IMAGES = {c: build_image(WS, CodecPlan(c))[0] for c in ("parity8", "secded(fixed8)", "float16")}


def flip_and_compare(decoder, image, payload, positions):
    """decoder.flip(positions) equals the whole noisy image decoded (payload flipped in place to
    follow the decoder), bit for bit: NaN payloads and -0.0 included, nulled counts too."""
    variant = decoder.flip(positions)
    flip_bits(payload, positions)
    truth = decode_weights(image.with_payload(payload.copy()))
    assert np.array_equal(variant.image.payload, payload)
    assert variant.nulled == truth.nulled and variant.corrected == truth.corrected
    for name, values in truth.weights.items():
        assert variant.weights[name].dtype == values.dtype
        assert np.array_equal(variant.weights[name].view(np.uint8), values.view(np.uint8)), name


@settings(max_examples=40, deadline=None)
@given(codec=st.sampled_from(sorted(IMAGES)), data=st.data())
def test_incremental_decoding_equals_decoding_the_noisy_image(codec, data):
    """After any sequence of flip batches (repeats included: a bit flipped twice is back),
    the incremental decoder's variant is exactly what decoding the whole noisy image gives."""
    image = IMAGES[codec]
    bits = image.payload_bits
    decoder = IncrementalDecoder(image)
    payload = image.payload.copy()
    batches = data.draw(st.lists(st.lists(st.integers(0, bits - 1), max_size=60, unique=True),
                                 min_size=1, max_size=4))
    for batch in batches:
        positions = np.array(sorted(batch), dtype=np.int64)
        flip_and_compare(decoder, image, payload, positions)


def test_variants_do_not_change_afterwards_and_reset_returns_to_clean():
    image = IMAGES["parity8"]
    decoder = IncrementalDecoder(image)
    first = decoder.flip(np.array([0, 1, 2], dtype=np.int64))
    kept = {k: v.copy() for k, v in first.weights.items()}
    decoder.flip(np.array([3, 100, 5000], dtype=np.int64))
    assert all(np.array_equal(first.weights[k], kept[k]) for k in kept)
    clean = decoder.reset()
    assert clean.total_nulled == 0 and np.array_equal(clean.image.payload, image.payload)
    # a fresh decoder from the decoded clean image does no decoding and starts clean
    again = IncrementalDecoder(clean).flip(np.array([0, 1, 2], dtype=np.int64))
    assert again.nulled == first.nulled


def test_untouched_tensors_are_shared_not_re_decoded():
    image = IMAGES["parity8"]
    decoder = IncrementalDecoder(image)
    last = image.tensors[-1]
    variant = decoder.flip(np.array([last.bit_offset], dtype=np.int64))
    for t in image.tensors[:-1]:
        assert variant.weights[t.name] is decoder.clean.weights[t.name]
    assert variant.weights[last.name] is not decoder.clean.weights[last.name]
    assert variant.nulled[last.name] == 1  # one parity failure in parity8


#: codecs whose word -> weight map differs: plain widths 1..32, check bits, Gray and Hamming
#: orders, signed integers, IEEE formats, per-channel ranges (decoded whole), SECDED blocks
CODECS = [("fixed8", "model"), ("fixed4", "tensor"), ("fixed3:mid", "model"), ("int8", "model"),
          ("int5", "tensor"), ("float32", "model"), ("float16", "model"), ("bfloat16", "model"),
          ("sign", "model"), ("parity8", "model"), ("parity(float16)", "tensor"),
          ("gray4", "model"), ("hamming6", "model"), ("fixed8", "channel"),
          ("secded(fixed8)", "model")]
PLAIN = {(c, g): build_image(WS, CodecPlan(c, granularity=g))[0] for c, g in CODECS}


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(sorted(PLAIN)), data=st.data())
def test_decoding_the_touched_words_equals_decoding_the_noisy_image(key, data):
    """Whatever the codec and the flips (few, so that only the touched words are decoded, or
    many), each variant is exactly the whole noisy image decoded, nulled counts included."""
    image = PLAIN[key]
    decoder = IncrementalDecoder(image)
    payload = image.payload.copy()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for size in data.draw(st.lists(st.sampled_from([1, 5, 50, 2000]), min_size=1, max_size=4)):
        positions = np.unique(rng.integers(0, image.payload_bits, size))
        flip_and_compare(decoder, image, payload, positions)


def test_a_few_flips_decode_only_their_words(monkeypatch):
    """For a plain codec a few flips never decode a whole tensor again (SECDED and per-channel
    ranges do); the decoded weights still equal the full decode."""
    calls = []
    full = host.decode.decode_tensor
    monkeypatch.setattr(host.decode, "decode_tensor",
                        lambda image, entry: calls.append(entry.name) or full(image, entry))
    for key, image in PLAIN.items():
        calls.clear()
        decoder = IncrementalDecoder(decode_weights(image))
        calls.clear()
        biggest = max(image.tensors, key=lambda t: t.count)
        positions = biggest.bit_offset + np.arange(0, biggest.stored_bits, 997, dtype=np.int64)
        variant = decoder.flip(positions)
        assert patchable(biggest) == (key not in {("fixed8", "channel"), ("secded(fixed8)", "model")})
        assert calls == ([] if patchable(biggest) else [biggest.name]), key
        truth = decode_weights(variant.image)
        assert np.array_equal(variant.weights[biggest.name], truth.weights[biggest.name],
                              equal_nan=True)


def same_bits(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k].view(np.uint8), b[k].view(np.uint8))
        for k in a)


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(sorted(PLAIN)), data=st.data())
def test_an_in_place_walk_equals_the_copying_walk_and_reset_restores_the_clean_image(key, data):
    """Walks of flip batches and resets (repeated bits, few and many flips, whole-tensor
    re-decodes): the in-place decoder gives the copying decoder's variants bit for bit, and
    each reset leaves the payload and the decoded weights exactly as they were."""
    image = PLAIN[key]
    own = image.with_payload(image.payload.copy())  # the in-place walk writes its payload
    clean = decode_weights(own)
    kept = {k: v.copy() for k, v in clean.weights.items()}
    in_place, copying = IncrementalDecoder(clean, in_place=True), IncrementalDecoder(image)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for step in data.draw(st.lists(st.sampled_from([0, 1, 5, 50, 2000]), min_size=1,
                                   max_size=6)):
        if step == 0:
            assert in_place.reset() is clean
            copying.reset()
            assert np.array_equal(own.payload, image.payload)
            assert same_bits(clean.weights, kept) and clean.total_nulled == 0
            continue
        positions = rng.integers(0, image.payload_bits, step)  # repeats: flipped twice
        a, b = in_place.flip(positions), copying.flip(positions)
        assert np.array_equal(a.image.payload, b.image.payload)
        assert same_bits(a.weights, b.weights)
        assert a.nulled == b.nulled and a.corrected == b.corrected
    in_place.reset()
    assert np.array_equal(own.payload, image.payload) and same_bits(clean.weights, kept)


def test_an_in_place_walk_holds_one_set_of_weights():
    own = PLAIN[("fixed8", "model")].with_payload(PLAIN[("fixed8", "model")].payload.copy())
    decoder = IncrementalDecoder(own, in_place=True)
    buffers = {k: v for k, v in decoder.clean.weights.items()}
    variant = decoder.flip(np.arange(0, own.payload_bits, 7, dtype=np.int64))
    assert all(variant.weights[k] is buffers[k] for k in buffers)
    assert variant.image.payload is own.payload


def test_touched_words_decoded_in_chunks_give_the_same_walk(monkeypatch):
    """Chunked patching (bounded temporaries) changes nothing: small chunks, same variants."""
    image = PLAIN[("parity8", "model")]
    rng = np.random.default_rng(3)
    batches = [rng.integers(0, image.payload_bits, n) for n in (40, 400, 4000)]
    walk = IncrementalDecoder(image)
    whole = [walk.flip(b) for b in batches]
    monkeypatch.setattr(host.decode, "PATCH_CHUNK", 3)
    own = image.with_payload(image.payload.copy())
    for in_place in (False, True):
        walk = IncrementalDecoder(own, in_place=in_place)
        for b, truth in zip(batches, whole):
            v = walk.flip(b)
            assert same_bits(v.weights, truth.weights) and v.nulled == truth.nulled
        walk.reset()
    assert np.array_equal(own.payload, image.payload)


@pytest.mark.parametrize("key", sorted(PLAIN))
def test_decoding_a_tensor_in_chunks_gives_the_same_weights(monkeypatch, key):
    """Large plain tensors are decoded a chunk of codes at a time: the same bits and nulled
    counts as one decode, chunks ending inside bytes' worth of codes of any width."""
    image = PLAIN[key]
    noisy = image.with_payload(image.payload.copy())
    flip_bits(noisy.payload, np.random.default_rng(8).integers(0, image.payload_bits, 300))
    whole = decode_weights(noisy)
    monkeypatch.setattr(host.decode, "DECODE_CHUNK", 24)
    chunked = decode_weights(noisy)
    assert same_bits(whole.weights, chunked.weights) and whole.nulled == chunked.nulled


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("bad", [-1, "end"])
def test_a_flip_outside_the_payload_is_refused_before_anything_changes(in_place, bad):
    image = PLAIN[("parity8", "model")]
    own = image.with_payload(image.payload.copy())
    decoder = IncrementalDecoder(own, in_place=in_place)
    kept = {k: v.copy() for k, v in decoder.clean.weights.items()}
    position = -1 if bad == -1 else own.payload_bits
    with pytest.raises(FlipLabError, match="outside"):
        decoder.flip(np.array([3, 9000, position], dtype=np.int64))
    assert np.array_equal(own.payload, image.payload) and same_bits(decoder.clean.weights, kept)
    decoder.reset()
    assert np.array_equal(own.payload, image.payload)
