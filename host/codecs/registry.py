"""The codec registry: spec string -> Codec.

Grammar (whitespace ignored, case-insensitive)::

    float32 | float16 | bfloat16
    fixed<q>[:mid] | hamming<q>[:mid] | gray<q>[:mid]      q = 2..16
    int<q>                                                 q = 2..32
    sign
    parity<q>              alias of parity(fixed<q-1>),   q = 3..17
    parity(<spec>)         weight nulling around any codec of <= 31 bits (not parity, not secded)
    secded(<spec>)         (72,64) SECDED around any codec (outermost only)
    reliable(<spec>)       kept where no channel reaches it (TMR cost; outermost only)

``get_codec`` returns one cached instance per canonical spec, so each codec's decode tables
are built once per process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from host.codecs.base import Codec
from host.codecs.fixed import FixedCodec
from host.codecs.gray import GrayCodec
from host.codecs.hamming import HammingCodec
from host.codecs.ieee import FloatCodec
from host.codecs.integer import IntCodec
from host.codecs.parity import ParityCodec
from host.codecs.reliable import ReliableCodec
from host.codecs.secded import SecdedCodec
from host.codecs.sign import SignCodec
from host.errors import FlipLabError

_FAMILIES = (
    "float32", "float16", "bfloat16", "fixed<q>[:mid]", "hamming<q>[:mid]", "gray<q>[:mid]",
    "int<q>", "sign", "parity<q>", "parity(<codec>)", "secded(<codec>)",
    "reliable(<codec>)",
)
MAX_SPEC_LENGTH = 200  # characters; real specs are under 30
MAX_NESTING = 2  # secded(parity(fixed7)) is the deepest meaningful spec
_LEVELLED: dict[str, Callable[..., Codec]] = {"fixed": FixedCodec, "hamming": HammingCodec, "gray": GrayCodec}
_SIMPLE = re.compile(r"(?P<family>[a-z]+?)(?P<q>\d+)?(?P<mid>:mid)?")
_WRAPPED = re.compile(r"(?P<family>parity|secded|reliable)\((?P<inner>.*)\)")


def list_codecs() -> list[str]:
    """The codec families as spec templates, e.g. "fixed<q>[:mid]", "secded(<codec>)"."""
    return list(_FAMILIES)


def _unknown(spec: str) -> FlipLabError:
    return FlipLabError(f"unknown codec {spec!r}: known families are {', '.join(_FAMILIES)}")


def _parse(spec: str) -> Codec:
    wrapped = _WRAPPED.fullmatch(spec)
    if wrapped:
        inner = _parse(wrapped["inner"])
        if wrapped["family"] == "reliable":
            return ReliableCodec(inner)
        if isinstance(inner, ReliableCodec):
            raise FlipLabError(f"codec {spec!r}: reliable(...) must be the outermost codec")
        return ParityCodec(inner) if wrapped["family"] == "parity" else SecdedCodec(inner)
    match = _SIMPLE.fullmatch(spec)
    if not match:
        raise _unknown(spec)
    family, q, mid = match["family"], match["q"], match["mid"] is not None
    if family in ("float", "bfloat") and q is not None and not mid and f"{family}{q}" in _FAMILIES:
        return FloatCodec(f"{family}{q}")
    if family in _LEVELLED and q is not None:
        return _LEVELLED[family](int(q), midpoint=mid)
    if mid:
        raise FlipLabError(f"codec {spec!r}: ':mid' applies only to fixed<q>, hamming<q> and gray<q>")
    if family == "int" and q is not None:
        return IntCodec(int(q))
    if family == "sign" and q is None:
        return SignCodec()
    if family == "parity" and q is not None:
        if int(q) - 1 < 2 or int(q) - 1 > 16:
            raise FlipLabError(f"parity{q}: q out of range, parity<q> = parity(fixed<q-1>) takes q = 3..17")
        return ParityCodec(FixedCodec(int(q) - 1))
    raise _unknown(spec)


@cache
def _cached(spec: str) -> Codec:
    return _parse(spec)


def get_codec(spec: str) -> Codec:
    """The codec for a spec string; FlipLabError (one line) for unknown names, q out of range,
    or a spec longer than MAX_SPEC_LENGTH characters or nested deeper than MAX_NESTING."""
    if not isinstance(spec, str) or not spec.strip():
        raise FlipLabError(f"codec spec must be a non-empty string, got {spec!r:.80}")
    if len(spec) > MAX_SPEC_LENGTH:
        raise FlipLabError(f"codec spec is {len(spec)} characters, longer than {MAX_SPEC_LENGTH}: "
                           f"{spec[:40]!r}...")
    if not spec.isascii():
        raise FlipLabError(f"codec spec {spec[:40]!r} has non-ASCII characters")
    if spec.count("(") > MAX_NESTING:
        raise FlipLabError(f"codec spec {spec[:40]!r}... nests {spec.count('(')} levels; at most "
                           f"{MAX_NESTING} (secded(parity(<codec>)))")
    return _cached(re.sub(r"\s+", "", spec).lower())
