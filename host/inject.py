"""Bit errors into an image: a channel applied to the payload bits of the selected tensors."""

from __future__ import annotations

from host.channels import Channel, FlipReport
from host.image import Image


def inject(image: Image, channel: Channel, *, seed: int, trial: int = 0,
           tensors: list[str] | None = None,
           bit_positions: list[int | str] | None = None) -> tuple[Image, FlipReport]:
    """A noisy copy of ``image``; the original is untouched. Reproducible from (seed, trial)."""
    regions = image.regions(tensors, bit_positions)
    noisy, report = channel.apply(image.payload, regions, seed=seed, trial=trial)
    return image.with_payload(noisy), report
