"""The memory image: the one contract between host, RTL, firmware and real hardware.

Layout (all integers little-endian; docs/image-format.md has the byte-level spec and a worked
hex example)::

    offset 0    header, 64 bytes (magic, version, sizes, CRC-32 of the metadata, CRC-32 of itself)
    offset 64   tensor table: canonical JSON, UTF-8 (model info + one entry per tensor)
    then        graph: the ONNX model without its weight initializers (may be empty)
    then        zero padding up to the payload offset, a multiple of 64
    payload     32-bit little-endian words holding the packed codes of every tensor

Errors are injected into the payload only; the header and table carry CRCs so a damaged one
is reported, never decoded. A *manifest* is the same file without the payload (flag bit 0);
it lets a raw payload dump captured from hardware be read as an image.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from host.codecs import Codec, get_codec
from host.errors import FlipLabError
from host.fileio import write_all_atomic, write_atomic
from host.image_schema import validate_graph, validate_table
from host.names import select, short_names
from host.regions import Region

if TYPE_CHECKING:
    import onnx

MAGIC = b"FLIPLAB\0"
VERSION_MAJOR = 1
VERSION_MINOR = 0
HEADER_SIZE = 64
WORD_BITS = 32
PAYLOAD_ALIGN = 64  # bytes: the payload starts on a 64-byte boundary of the file
FLAG_MANIFEST = 1  # the file holds no payload: it describes one
_HEADER = struct.Struct("<8sHHIIIQQQQII")
assert _HEADER.size == HEADER_SIZE


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor table: where a weight tensor lives in the payload and how."""

    name: str
    layer: str
    op_type: str
    role: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name of the tensor as the graph consumes it
    codec: str  # canonical codec spec
    params: dict  # the codec's quantisation parameters (JSON)
    bit_offset: int  # first payload bit, a multiple of WORD_BITS
    stored_bits: int  # payload bits the codes occupy (count * q, or SECDED codewords)
    count: int  # number of weights
    binarized: bool = False

    @property
    def codec_obj(self) -> Codec:
        return get_codec(self.codec)

    def to_json(self) -> dict:
        return {
            "name": self.name, "layer": self.layer, "op_type": self.op_type, "role": self.role,
            "shape": list(self.shape), "dtype": self.dtype, "codec": self.codec,
            "params": self.params, "bit_offset": self.bit_offset,
            "stored_bits": self.stored_bits, "count": self.count, "binarized": self.binarized,
        }

    @classmethod
    def from_json(cls, d: dict) -> TensorEntry:
        try:
            return cls(
                name=str(d["name"]), layer=str(d["layer"]), op_type=str(d["op_type"]),
                role=str(d["role"]), shape=tuple(int(s) for s in d["shape"]),
                dtype=str(d["dtype"]), codec=str(d["codec"]), params=dict(d["params"]),
                bit_offset=int(d["bit_offset"]), stored_bits=int(d["stored_bits"]),
                count=int(d["count"]), binarized=bool(d.get("binarized", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FlipLabError(f"image tensor table is malformed: entry {d.get('name', '?')!r} "
                               f"lacks or mistypes {exc}") from None


@dataclass
class Image:
    """A memory image in memory: metadata plus the payload bytes (uint8, length a multiple of 4)."""

    tensors: list[TensorEntry]
    model: dict  # input/output names, input shape, source file and its sha256
    graph: bytes
    payload: np.ndarray
    program: dict | None = None  # the accelerator's layer program (docs/datapath.md), if lowered
    _index: dict[str, TensorEntry] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.payload = np.ascontiguousarray(self.payload, dtype=np.uint8)
        self._index = {t.name: t for t in self.tensors}

    def tensor(self, name: str) -> TensorEntry:
        try:
            return self._index[name]
        except KeyError:
            raise FlipLabError(f"image has no tensor named {name!r}") from None

    @property
    def payload_bits(self) -> int:
        return int(self.payload.size) * 8

    def with_payload(self, payload: np.ndarray) -> Image:
        """The same metadata over another payload (e.g. a noisy copy) of the same length."""
        if payload.size != self.payload.size:
            raise FlipLabError(f"payload is {payload.size} bytes but the image describes "
                               f"{self.payload.size} bytes")
        return replace(self, payload=payload)

    def segment(self, entry: TensorEntry) -> np.ndarray:
        """The payload bytes of one tensor (a view; its bit 0 is the tensor's first stored bit)."""
        start = entry.bit_offset // 8
        return self.payload[start:start + (entry.stored_bits + 7) // 8]

    def select(self, patterns: Iterable[str] | None) -> list[TensorEntry]:
        """Tensors whose name, layer or short name (host.names) matches the fnmatch patterns
        (all when None). A pattern ``!P`` excludes what ``P`` matches (host.names.select)."""
        if not patterns:
            return list(self.tensors)
        return select(self.tensors, patterns, "tensor or layer of the image")

    def regions(self, tensors: Iterable[str] | None = None,
                bit_positions: Iterable[int | str] | None = None) -> list[Region]:
        """Where errors may land: the stored bits of the selected tensors.

        ``bit_positions`` restricts errors to positions inside each stored field (0 = least
        significant bit of a code; ``"msb"`` = the code's most significant bit, q - 1). For a
        SECDED tensor the field is the 72-bit codeword. Tensors in a ``reliable(...)`` codec
        are left out: they are kept where no channel reaches them.
        """
        out = []
        for t in self.select(tensors):
            codec = t.codec_obj
            if getattr(codec, "reliable", False):
                continue
            field_bits = codec.field_bits
            n_fields = t.stored_bits // field_bits
            positions = None
            if bit_positions is not None:
                positions = tuple(sorted({field_bits - 1 if p == "msb" else int(p)
                                          for p in bit_positions}))
                bad = [p for p in positions if not 0 <= p < field_bits]
                if bad:
                    raise FlipLabError(f"bit position {bad[0]} is outside the {field_bits}-bit "
                                       f"fields of tensor {t.name!r}")
            out.append(Region(t.bit_offset, n_fields, field_bits, positions, t.name))
        return out


# ---------------------------------------------------------------------------------------------
# serialisation

def _table_bytes(image: Image) -> bytes:
    table = {"format": "fliplab-image", "model": image.model,
             "tensors": [t.to_json() for t in image.tensors]}
    if image.program is not None:
        table["program"] = image.program
    return json.dumps(table, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def image_bytes(image: Image, *, manifest: bool = False) -> bytes:
    """The image (or its manifest: all the metadata, no payload) as a byte string."""
    table = _table_bytes(image)
    meta = table + image.graph
    payload_offset = _align(HEADER_SIZE + len(meta), PAYLOAD_ALIGN)
    fields = (MAGIC, VERSION_MAJOR, VERSION_MINOR, HEADER_SIZE, WORD_BITS,
              FLAG_MANIFEST if manifest else 0, len(table), len(image.graph),
              payload_offset, image.payload.size, zlib.crc32(meta))
    head = _HEADER.pack(*fields, 0)[:-4]
    header = head + struct.pack("<I", zlib.crc32(head))
    body = header + meta + bytes(payload_offset - HEADER_SIZE - len(meta))
    return body if manifest else body + image.payload.tobytes()


def write_image(image: Image, path: str | os.PathLike, *, manifest: bool = False) -> None:
    """Write the image (or its manifest) atomically (host.fileio)."""
    write_atomic(path, image_bytes(image, manifest=manifest))


def graph_of(image: Image) -> onnx.ModelProto:
    """The image's ONNX graph: the model without its weight initializers."""
    import onnx  # only the commands that run a model need it

    if not image.graph:
        raise FlipLabError("image carries no model graph; give the model with --model")
    try:
        return onnx.load_from_string(image.graph)
    except Exception:  # protobuf raises its own DecodeError type
        raise FlipLabError("image's model graph cannot be parsed as ONNX") from None


def write_image_with_manifest(image: Image, path: str | os.PathLike) -> Path:
    """Write the image and its sidecar manifest as one step: both go to temporary files and are
    renamed only when both are complete; returns the manifest path. Refuses an image path whose
    manifest path is itself (``-o x.manifest``)."""
    manifest = manifest_path_for(path)
    write_all_atomic({path: image_bytes(image), manifest: image_bytes(image, manifest=True)})
    return manifest


def reseal(buf: bytes, table: bytes) -> bytes:
    """``buf`` (an image or manifest) with its tensor table replaced by ``table`` (raw JSON
    bytes, not checked) and the header fields and both CRCs recomputed; graph and payload kept.

    For tools that edit the metadata and for tests and the fuzzer, which need damaged tables
    that pass the CRC checks so that they reach the schema.
    """
    flags, tlen, glen, poff, plen, _ = _parse_header(buf, "image")
    graph = buf[HEADER_SIZE + tlen:HEADER_SIZE + tlen + glen]
    payload = buf[poff:poff + plen] if not flags & FLAG_MANIFEST else b""
    meta = table + graph
    offset = _align(HEADER_SIZE + len(meta), PAYLOAD_ALIGN)
    head = _HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR, HEADER_SIZE, WORD_BITS, flags,
                        len(table), len(graph), offset, plen, zlib.crc32(meta), 0)[:-4]
    header = head + struct.pack("<I", zlib.crc32(head))
    return header + meta + bytes(offset - HEADER_SIZE - len(meta)) + payload


def manifest_path_for(path: str | os.PathLike) -> Path:
    """The sidecar manifest written next to an exported image: weights.bin -> weights.manifest."""
    return Path(path).with_suffix(".manifest")


def _parse_header(buf: bytes, what: str) -> tuple:
    if len(buf) < HEADER_SIZE:
        raise FlipLabError(f"{what} is truncated: {len(buf)} bytes, shorter than the "
                           f"{HEADER_SIZE}-byte header")
    fields = _HEADER.unpack_from(buf)
    magic, vmaj, vmin, hsize, word_bits, flags, tlen, glen, poff, plen, meta_crc, head_crc = fields
    if magic != MAGIC:
        raise FlipLabError(f"{what} is not a FlipLab image (bad magic {magic[:8]!r})")
    if zlib.crc32(buf[:HEADER_SIZE - 4]) != head_crc:
        raise FlipLabError(f"{what} has a damaged header (header CRC-32 mismatch)")
    if vmaj != VERSION_MAJOR:
        raise FlipLabError(f"{what} has format version {vmaj}.{vmin}; this FlipLab reads "
                           f"version {VERSION_MAJOR}.x")
    if hsize != HEADER_SIZE or word_bits != WORD_BITS:
        raise FlipLabError(f"{what} has header size {hsize} / word width {word_bits}; "
                           f"expected {HEADER_SIZE} / {WORD_BITS}")
    if poff < HEADER_SIZE + tlen + glen or poff % PAYLOAD_ALIGN or plen % (WORD_BITS // 8):
        raise FlipLabError(f"{what} has an inconsistent header (payload offset {poff}, "
                           f"length {plen})")
    return flags, tlen, glen, poff, plen, meta_crc


def parse_image(buf: bytes, *, what: str = "image", payload: bytes | None = None) -> Image:
    """Parse image bytes; with ``payload`` the bytes are a manifest and ``payload`` the dump."""
    flags, tlen, glen, poff, plen, meta_crc = _parse_header(buf, what)
    meta_end = HEADER_SIZE + tlen + glen
    if len(buf) < meta_end:
        raise FlipLabError(f"{what} is truncated: {len(buf)} bytes, its metadata ends at "
                           f"byte {meta_end}")
    meta = buf[HEADER_SIZE:meta_end]
    if zlib.crc32(meta) != meta_crc:
        raise FlipLabError(f"{what} has a damaged tensor table (metadata CRC-32 mismatch)")
    if payload is None:
        if flags & FLAG_MANIFEST:
            raise FlipLabError(f"{what} is a manifest (no payload); pass it with --manifest "
                               f"together with the payload dump")
        if len(buf) != poff + plen:
            raise FlipLabError(f"{what} is {len(buf)} bytes but its header says "
                               f"{poff + plen} (truncated or padded)")
        data = np.frombuffer(buf, dtype=np.uint8, offset=poff, count=plen).copy()
    else:
        if len(payload) != plen:
            raise FlipLabError(f"payload dump is {len(payload)} bytes but the manifest "
                               f"describes a payload of {plen} bytes")
        data = np.frombuffer(payload, dtype=np.uint8).copy()
    try:
        table = json.loads(meta[:tlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON, huge ints
        raise FlipLabError(f"{what} has an unreadable tensor table ({type(exc).__name__})") from None
    validate_table(table, what, data.size * 8)
    image = Image([TensorEntry.from_json(r) for r in table["tensors"]], dict(table["model"]),
                  bytes(meta[tlen:]), data, table.get("program"))
    validate_graph(image.graph, image.model, image.tensors, what)
    return image


def _read_bytes(path: str | os.PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FlipLabError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise FlipLabError(f"{what} {path} is a directory") from None
    except OSError as exc:
        raise FlipLabError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_image(path: str | os.PathLike, manifest: str | os.PathLike | None = None) -> Image:
    """Read an image file, or a raw payload dump described by a manifest."""
    data = _read_bytes(path, "image")
    if manifest is None:
        return parse_image(data, what=f"image {path}")
    meta = _read_bytes(manifest, "manifest")
    if data[:len(MAGIC)] == MAGIC:  # a whole image was given: compare its layout and use it
        image = parse_image(data, what=f"image {path}")
        reference = parse_image(meta, what=f"manifest {manifest}", payload=bytes(image.payload))
        if _table_bytes(reference) != _table_bytes(image):
            raise FlipLabError(f"image {path} does not match manifest {manifest}")
        return image
    return parse_image(meta, what=f"manifest {manifest}", payload=data)


def read_like(path: str | os.PathLike, reference: Image) -> Image:
    """Read ``path`` as an image with ``reference``'s layout: a whole image file of the same
    layout, or a raw payload dump (e.g. read back from a board) of the same length."""
    data = _read_bytes(path, "image")
    if data[:len(MAGIC)] == MAGIC:
        image = parse_image(data, what=f"image {path}")
        if _table_bytes(image) != _table_bytes(reference):
            raise FlipLabError(f"image {path} has another layout than the reference image")
        return image
    if len(data) != reference.payload.size:
        raise FlipLabError(f"{path} is neither a FlipLab image nor a payload dump of the "
                           f"reference's {reference.payload.size} bytes ({len(data)} bytes)")
    return reference.with_payload(np.frombuffer(data, dtype=np.uint8).copy())


def describe(image: Image) -> dict:
    """What ``host inspect`` shows: the model, the layout, and each tensor's codec, JSON-ready."""
    return {
        "model": image.model, "format_version": f"{VERSION_MAJOR}.{VERSION_MINOR}",
        "word_bits": WORD_BITS, "payload_bytes": int(image.payload.size),
        "graph_bytes": len(image.graph), "weights": sum(t.count for t in image.tensors),
        "tensors": [{"name": t.name, "short": short, "layer": t.layer, "role": t.role, "shape": list(t.shape),
                     "dtype": t.dtype, "codec": t.codec, "bits_per_weight": t.stored_bits / t.count
                     if t.count else 0.0, "bit_offset": t.bit_offset, "stored_bits": t.stored_bits,
                     "count": t.count, "binarized": t.binarized}
                    for t, short in zip(image.tensors, short_names(image.tensors))],
    }
