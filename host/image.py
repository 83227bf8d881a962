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

import fnmatch
import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from host.codecs import Codec, get_codec
from host.errors import FlipLabError
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
    def from_json(cls, d: dict) -> "TensorEntry":
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

    def with_payload(self, payload: np.ndarray) -> "Image":
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
        """Tensors whose name or layer matches the fnmatch patterns (all when None).

        A pattern ``!P`` excludes what ``P`` matches: the selection is the tensors matching
        any plain pattern (every tensor when all patterns are exclusions) minus those matching
        any exclusion, in table order. Every pattern must match some tensor or layer.
        """
        if not patterns:
            return list(self.tensors)
        patterns = list(patterns)

        def hits(t: TensorEntry, p: str) -> bool:
            return fnmatch.fnmatchcase(t.name, p) or fnmatch.fnmatchcase(t.layer, p)

        include = [p for p in patterns if not p.startswith("!")]
        exclude = [p[1:] for p in patterns if p.startswith("!")]
        for p in include + exclude:
            if not p:
                raise FlipLabError("empty tensor pattern ('!' needs a pattern after it)")
            if not any(hits(t, p) for t in self.tensors):
                raise FlipLabError(f"pattern {p!r} matches no tensor or layer of the image")
        return [t for t in self.tensors
                if (not include or any(hits(t, p) for p in include))
                and not any(hits(t, p) for p in exclude)]

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


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    if path.is_dir():
        raise FlipLabError(f"output path {path} is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as exc:
        raise FlipLabError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_image(image: Image, path: str | os.PathLike, *, manifest: bool = False) -> None:
    write_atomic(path, image_bytes(image, manifest=manifest))


def graph_of(image: Image) -> "onnx.ModelProto":
    """The image's ONNX graph: the model without its weight initializers."""
    import onnx  # only the commands that run a model need it

    if not image.graph:
        raise FlipLabError("image carries no model graph; give the model with --model")
    try:
        return onnx.load_from_string(image.graph)
    except Exception:  # protobuf raises its own DecodeError type
        raise FlipLabError("image's model graph cannot be parsed as ONNX") from None


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
        model, rows = dict(table["model"]), list(table["tensors"])
        program = table.get("program")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise FlipLabError(f"{what} has an unreadable tensor table ({type(exc).__name__})") from None
    image = Image([TensorEntry.from_json(r) for r in rows], model, bytes(meta[tlen:]), data,
                  program)
    _validate_layout(image, what)
    return image


def _validate_layout(image: Image, what: str) -> None:
    end = 0
    for t in sorted(image.tensors, key=lambda t: t.bit_offset):
        codec = t.codec_obj
        if t.bit_offset % WORD_BITS or t.bit_offset < end:
            raise FlipLabError(f"{what}: tensor {t.name!r} starts at bit {t.bit_offset}, "
                               f"unaligned or overlapping")
        if int(np.prod(t.shape, dtype=np.int64)) != t.count or \
                codec.stored_bits(t.count) != t.stored_bits:
            raise FlipLabError(f"{what}: tensor {t.name!r} has inconsistent shape/size fields")
        end = t.bit_offset + t.stored_bits
    if end > image.payload_bits:
        raise FlipLabError(f"{what}: tensors need {end} payload bits but the payload has "
                           f"{image.payload_bits}")


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
        "tensors": [{"name": t.name, "layer": t.layer, "role": t.role, "shape": list(t.shape),
                     "dtype": t.dtype, "codec": t.codec, "bits_per_weight": t.stored_bits / t.count
                     if t.count else 0.0, "bit_offset": t.bit_offset, "stored_bits": t.stored_bits,
                     "count": t.count, "binarized": t.binarized} for t in image.tensors],
    }
