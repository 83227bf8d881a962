"""Error models: where and how the stored bits of a memory image go wrong.

A channel is parsed from a spec string (``bsc:P``, ``asym:P01,P10``, ``stuck:F,S[,seed=D]``,
``none``; see :mod:`host.channels.registry`) and corrupts only the eligible bits of the
:class:`~host.regions.Region` list the image layer gives it. For one trial, identified by ``(seed, trial)``,
:meth:`Channel.pattern` returns the flips for every rate up to ``rate_max`` at once, nested
(errors at a lower rate are a subset of those at a higher rate), drawn at a cost that grows with
the number of flips, not with the image size. docs/error-models.md describes the models, the
sampling and why it is exact.
"""

from host.channels.asymmetric import AsymmetricChannel
from host.channels.base import Channel, FlipReport, NestedPattern
from host.channels.bitops import flip_bits, read_bits
from host.channels.bsc import BinarySymmetricChannel
from host.channels.layout import RegionLayout
from host.channels.noiseless import NoiselessChannel
from host.channels.registry import (
                                     FAMILIES,
                                     ChannelFamily,
                                     ParsedSpec,
                                     channel_usage,
                                     list_channels,
                                     parse_channel,
                                     parse_spec,
)
from host.channels.sampling import DENSE_RATE, sample_nested, trial_rng, trial_seed
from host.channels.stuck import StuckAtChannel

__all__ = [
    "ChannelFamily",
    "FAMILIES",
    "ParsedSpec",
    "channel_usage",
    "parse_spec",
    "AsymmetricChannel",
    "BinarySymmetricChannel",
    "Channel",
    "DENSE_RATE",
    "FlipReport",
    "NestedPattern",
    "NoiselessChannel",
    "RegionLayout",
    "StuckAtChannel",
    "flip_bits",
    "list_channels",
    "parse_channel",
    "read_bits",
    "sample_nested",
    "trial_rng",
    "trial_seed",
]
