"""Coverage-guided fuzzing (atheris / libFuzzer) of everything that parses user bytes or text.

Targets, chosen by the first byte of each input (``byte % 4``):

0. an image file: ``host.image.parse_image``, then what every reader does with an accepted
   image (decode all weights, ``describe``, error regions);
1. a manifest plus a zero payload dump of the length its header gives;
2. a codec spec: ``host.codecs.get_codec``;
3. a channel spec: ``host.channels.parse_channel``.

A custom mutator rewrites the tensor table of image and manifest inputs as JSON (values of
other types and sizes, NaN/Infinity, huge integers, dropped and duplicated keys, consistent
shape/count changes) and then recomputes both CRCs with ``host.image.reseal``, so the mutations
reach the schema instead of stopping at a CRC check; a share of the mutations stay byte-level.

A failure is any exception other than ``FlipLabError`` (numpy's RuntimeWarnings, e.g. an
overflow while decoding an accepted image, are raised as exceptions), any one input taking
more than 1 s, or the process's peak memory growing by more than 500 MB on one input.

    python fuzz/fuzz_parsers.py --make-seeds DIR     # real exports of the bundled models
    python fuzz/fuzz_parsers.py DIR -max_total_time=30 -timeout=10 -rss_limit_mb=2048

``make fuzz`` runs it for ten minutes; tests/fuzz/test_fuzz_parsers.py runs it for a short
while in the suite.
"""

from __future__ import annotations

import json
import random
import resource
import struct
import sys
import time
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["host"]):
    # imported lazily by the schema; imported here so no input pays for a first import
    import host.hw.lower  # noqa: F401
    import host.model.feeding  # noqa: F401
    from host.channels import parse_channel
    from host.codecs import get_codec
    from host.decode import decode_weights
    from host.errors import FlipLabError
    from host.image import HEADER_SIZE, MAGIC, describe, parse_image, reseal

IMAGE, MANIFEST, CODEC, CHANNEL = range(4)
MAX_SECONDS = 1.0
MAX_GROWTH_MB = 500
MAX_DUMP = 1 << 22  # a manifest's zero dump is built only up to this length
_PLEN_AT = 48  # byte offset of the payload length in the header (docs/image-format.md)

CODEC_SEEDS = ["fixed8", "fixed4:mid", "hamming8", "gray6", "int8", "int32", "sign", "parity8",
               "parity(int8)", "secded(parity8)", "secded(float16)", "bfloat16", "float32"]
CHANNEL_SEEDS = ["none", "bsc:1e-3", "asym:0.01,0.001", "stuck:1e-4,0.5,seed=3", "bsc:0"]


class Failure(AssertionError):
    """A parse that broke a limit (time or memory) without raising."""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _image(buf: bytes) -> None:
    image = parse_image(buf)
    decode_weights(image)
    describe(image)
    image.regions()


def _manifest(buf: bytes) -> None:
    plen = struct.unpack_from("<Q", buf, _PLEN_AT)[0] if len(buf) >= HEADER_SIZE else 0
    image = parse_image(buf, what="manifest", payload=bytes(plen if plen <= MAX_DUMP else 0))
    decode_weights(image)
    describe(image)


def _text(buf: bytes) -> str:
    return buf.decode("utf-8", errors="surrogateescape")


def run_one(data: bytes) -> None:
    """Parse one fuzz input; FlipLabError is a correct answer, anything else a failure."""
    if not data:
        return
    kind, body = data[0] % 4, data[1:]
    start, peak = time.perf_counter(), _peak_mb()
    try:
        if kind == IMAGE:
            _image(body)
        elif kind == MANIFEST:
            _manifest(body)
        elif kind == CODEC:
            get_codec(_text(body))
        else:
            parse_channel(_text(body))
    except FlipLabError as exc:
        if "\n" in str(exc):
            raise Failure(f"FlipLabError message spans lines: {str(exc)[:200]!r}") from None
    elapsed, growth = time.perf_counter() - start, _peak_mb() - peak
    if elapsed > MAX_SECONDS:
        raise Failure(f"one input took {elapsed:.2f} s (limit {MAX_SECONDS} s)")
    if growth > MAX_GROWTH_MB:
        raise Failure(f"one input grew peak memory by {growth:.0f} MB (limit {MAX_GROWTH_MB} MB)")


# ---------------------------------------------------------------------------------------------
# the tensor-table mutator

def _table_of(buf: bytes) -> dict | None:
    if len(buf) < HEADER_SIZE or buf[:len(MAGIC)] != MAGIC:
        return None
    tlen = struct.unpack_from("<Q", buf, 24)[0]
    try:
        table = json.loads(buf[HEADER_SIZE:HEADER_SIZE + tlen])
    except (ValueError, RecursionError):
        return None
    return table if isinstance(table, (dict, list)) else None


def _nodes(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, path + (i,))


def _random_value(rng: random.Random, old):
    choice = rng.randrange(14)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 1, 31, 32, 33, 2**31, 2**63, 2**64, 2**70, -(2**70), 10**30])
    if choice == 3:
        return rng.choice([float("inf"), float("-inf"), float("nan"), -0.0, 1e308, 5e-324, 0.5])
    if choice == 4:
        return rng.choice(["", "x", "complex1024", "float16", "int8", "uint8", "parity(fixed8)",
                           "secded(int8)", "channel", "model", "tensor", "bits", "z", "int8",
                           "binary", "affine", "fliplab-image", "fliplab-accel-program"])
    if choice == 5:
        return []
    if choice == 6:
        return {}
    if choice == 7:
        return [old, old] if not isinstance(old, list) else old + old[:1]
    if choice == 8:
        return str(old)
    if choice == 9 and _is_num(old):
        return old * rng.choice([-1, 2, 0, 1 << 20])
    if choice == 10 and _is_num(old):
        return old + rng.choice([-1, 1, 32, -32])
    if choice == 11 and isinstance(old, list):
        return old[:-1]
    if choice == 12 and isinstance(old, list) and old:
        return [_random_value(rng, old[0])] + old[1:]
    return rng.randrange(-5, 70000)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _reshape(rng: random.Random, table: dict) -> None:
    """A consistent shape/count/stored_bits change, so the later checks are reached."""
    tensors = table.get("tensors") if isinstance(table, dict) else None
    if not isinstance(tensors, list) or not tensors or not isinstance(tensors[0], dict):
        return
    t = rng.choice(tensors)
    if not isinstance(t, dict):
        return
    shape = t.get("shape")
    if isinstance(shape, list) and all(isinstance(s, int) for s in shape) and shape:
        count = 1
        for s in shape:
            count *= s
        new = rng.choice([list(reversed(shape)), [count], shape + [1], [count // 2, 2]
                          if count % 2 == 0 else [count], [0] + shape[1:]])
        t["shape"] = new
        size = 1
        for s in new:
            size *= s
        if isinstance(t.get("count"), int) and t["count"]:
            ratio = t.get("stored_bits", 0) // t["count"] if isinstance(t.get("stored_bits"), int) else 0
            t["count"] = size
            if ratio:
                t["stored_bits"] = size * ratio


def mutate_table(buf: bytes, rng: random.Random) -> bytes | None:
    """``buf`` (an image or manifest) with its tensor table mutated and both CRCs recomputed;
    None when ``buf`` has no readable table."""
    table = _table_of(buf)
    if table is None:
        return None
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        nodes = list(_nodes(table))
        path, value = rng.choice(nodes)
        op = rng.randrange(5)
        if op == 4:
            _reshape(rng, table)
            continue
        if not path:
            continue
        parent = table
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 1 and isinstance(parent, list):
            parent.insert(key, value)
        else:
            parent[key] = _random_value(rng, value)
    try:
        raw = json.dumps(table).encode()
        return reseal(buf, raw)
    except (FlipLabError, ValueError, RecursionError, OverflowError, struct.error):
        return None


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data and data[0] % 4 in (IMAGE, MANIFEST) and rng.random() < 0.8:
        out = mutate_table(data[1:], rng)
        if out is not None and len(out) + 1 <= max(max_size, len(data)):
            return data[:1] + out
    return atheris.Mutate(data, max_size)


# ---------------------------------------------------------------------------------------------
# seeds

def make_seeds(folder: Path) -> list[Path]:
    """Real exports of the bundled models (images and manifests, several codecs and the
    accelerator programs) and spec strings, one input file each, into ``folder``."""
    from host.export import CodecPlan, build_accel_image, build_image
    from host.image import image_bytes
    from host.model import load_model
    from host.models import resolve_model

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, kind: int, body: bytes) -> None:
        path = folder / name
        path.write_bytes(bytes([kind]) + body)
        written.append(path)

    exports = [("digits_mlp", "fixed8", "model", False), ("digits_mlp", "parity8", "channel", False),
               ("digits_mlp", "secded(parity8)", "tensor", False), ("digits_cnn", "int8", "model", False),
               ("digits_mlp_int8", None, "channel", True), ("digits_bnn", None, "model", True),
               ("digits_mlp", "float16", "model", False), ("digits_mlp", "hamming4:mid", "channel", False)]
    for model, codec, granularity, accel in exports:
        ws = load_model(resolve_model(model))
        build = build_accel_image if accel else build_image
        image, _ = build(ws, CodecPlan(codec, (), granularity), source=f"{model}.onnx")
        stem = f"{model}-{codec or 'default'}-{granularity}{'-accel' if accel else ''}"
        put(f"{stem}.image", IMAGE, image_bytes(image))
        put(f"{stem}.manifest", MANIFEST, image_bytes(image, manifest=True))
    for i, spec in enumerate(CODEC_SEEDS):
        put(f"codec-{i}", CODEC, spec.encode())
    for i, spec in enumerate(CHANNEL_SEEDS):
        put(f"channel-{i}", CHANNEL, spec.encode())
    return written


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--make-seeds":
        print(f"wrote {len(make_seeds(Path(argv[2])))} seed inputs into {argv[2]}")
        return
    warnings.simplefilter("error", RuntimeWarning)  # an overflow in numpy is a finding too
    atheris.Setup(argv, run_one, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
