"""Bit errors into an image: a channel's error pattern over the stored bits of selected tensors.

:func:`error_pattern` is the one place where an image, a channel and (seed, trial) become the
bits that go wrong: ``host inject`` and ``host eval --channel`` flip them at the channel's own
rate, a campaign walks the same nested pattern over its rates, so trial T of a sweep at rate p
is bit for bit ``host inject --channel bsc:p --seed S --trial T``.
"""

from __future__ import annotations

from collections.abc import Iterable

from host.channels import Channel, FlipReport, NestedPattern, flip_bits
from host.image import Image


def error_pattern(image: Image, channel: Channel, *, seed: int, trial: int = 0,
                  tensors: Iterable[str] | None = None,
                  bit_positions: Iterable[int | str] | None = None,
                  rate_max: float | None = None) -> NestedPattern:
    """The nested errors of trial ``(seed, trial)`` in the selected tensors and bit positions,
    for every rate up to ``rate_max`` (default: the channel's own rate)."""
    regions = image.regions(tensors, bit_positions)
    return channel.pattern(image.payload, regions, seed=seed, trial=trial, rate_max=rate_max)


def inject(image: Image, channel: Channel, *, seed: int, trial: int = 0,
           tensors: Iterable[str] | None = None,
           bit_positions: Iterable[int | str] | None = None) -> tuple[Image, FlipReport]:
    """A noisy copy of ``image`` at the channel's own rate; the original is untouched.
    Reproducible from (seed, trial)."""
    pattern = error_pattern(image, channel, seed=seed, trial=trial, tensors=tensors,
                            bit_positions=bit_positions)
    flips = pattern.at(channel.rate)
    noisy = image.payload.copy()
    flip_bits(noisy, flips)
    return image.with_payload(noisy), FlipReport.of(image.payload, flips, pattern.eligible_bits)
