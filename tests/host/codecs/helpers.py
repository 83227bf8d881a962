"""Helpers shared by the codec tests."""

from __future__ import annotations

from hypothesis import settings

FAST = settings(max_examples=40, deadline=None)


def bits_of(text: str) -> int:
    """Integer of a bit string written MSB first, spaces ignored."""
    return int(text.replace(" ", ""), 2)
