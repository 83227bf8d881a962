"""host.decode: whole-image decoding and the incremental decoder that follows added flips."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import host.decode
from host.channels import flip_bits
from host.decode import IncrementalDecoder, decode_weights, patchable
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
