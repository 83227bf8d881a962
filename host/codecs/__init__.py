"""Bit representations of weights: one module per codec family, a registry by spec string.

``get_codec("parity8")`` -> a :class:`Codec`; ``list_codecs()`` names the families.
See docs/codecs.md for every codec's bit layout, equations and worked examples, and
docs/internals.md for the interface.
"""

from host.codecs.base import Codec
from host.codecs.registry import get_codec, list_codecs

__all__ = ["Codec", "get_codec", "list_codecs"]
