"""Channel spec strings: ``parse_channel("bsc:1e-3")`` and the list of families.

Grammar: ``NAME`` or ``NAME:ARG[,ARG...]``; positional arguments are numbers in [0, 1]
(Python float syntax), keyword arguments ``KEY=VALUE`` follow them. Spaces around tokens are
ignored.

=========  ==========================  ==============================================
spec       parameters                  meaning
=========  ==========================  ==============================================
none       -                           no errors
bsc:P      P = RBER                    every eligible bit flips with probability P
asym:A,B   A = P01, B = P10            stored 0 -> 1 with A, stored 1 -> 0 with B
stuck:F,S  F = fraction, S = share     fraction F of cells stuck, share S of them at 1;
[,seed=D]  D = device seed (int >= 0)  map drawn from D only (default 0)
=========  ==========================  ==============================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from host.channels.asymmetric import AsymmetricChannel
from host.channels.base import Channel
from host.channels.bsc import BinarySymmetricChannel
from host.channels.noiseless import NoiselessChannel
from host.channels.stuck import StuckAtChannel
from host.errors import FlipLabError

MAX_SPEC_LENGTH = 200  # characters; real specs are under 40
MAX_SEED = (1 << 64) - 1


def _number(text: str, name: str, label: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FlipLabError(
            f"channel {name!r}: {label} {text!r} is not a number in spec {spec!r}"
        ) from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise FlipLabError(f"channel {name!r}: {label} = {text} is outside [0, 1] in spec {spec!r}")
    return value


def _integer(text: str, name: str, label: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEED:
        raise FlipLabError(
            f"channel {name!r}: {label} must be a non-negative integer below 2**64, got {text!r} "
            f"in spec {spec!r}"
        )
    return int(text)


@dataclass(frozen=True)
class ChannelFamily:
    """One family of channel specs: its grammar, its usage text and how to build it.

    Attributes:
        name: the part of the spec before ``:``.
        usage: the spec form shown in help texts and errors (``stuck:F,S[,seed=D]``).
        labels: names of the positional numbers, each in [0, 1].
        keywords: keyword parameters and their defaults (non-negative integers).
        help: one line on what the family models.
        make: the channel from (numbers, keywords).
    """

    name: str
    usage: str
    labels: tuple[str, ...]
    keywords: dict[str, int]
    help: str
    make: Callable[[list[float], dict[str, int]], Channel]
    #: families whose argument is text (a file, a scale): ``parse_text(text, spec)`` builds
    #: the channel from everything after the family name
    parse_text: Callable[[str, str], Channel] | None = None


@dataclass(frozen=True)
class ParsedSpec:
    """A channel spec taken apart: its family, the numbers, and the keywords the spec gave
    (``given``; defaults not included), for users of the grammar that are not host channels
    (the board's SET_MODE)."""

    family: ChannelFamily
    numbers: list[float]
    given: dict[str, int]
    text: str = ""
    spec: str = ""

    def channel(self) -> Channel:
        if self.family.parse_text is not None:
            return self.family.parse_text(self.text, self.spec)
        return self.family.make(self.numbers, {**self.family.keywords, **self.given})


FAMILIES: dict[str, ChannelFamily] = {f.name: f for f in (
    ChannelFamily("none", "none", (), {}, "no errors", lambda a, k: NoiselessChannel()),
    ChannelFamily("bsc", "bsc:P", ("P",), {},
                  "every eligible bit flips with probability P (the RBER)",
                  lambda a, k: BinarySymmetricChannel(a[0])),
    ChannelFamily("asym", "asym:P01,P10", ("P01", "P10"), {},
                  "a stored 0 reads 1 with P01, a stored 1 reads 0 with P10",
                  lambda a, k: AsymmetricChannel(a[0], a[1])),
    ChannelFamily("stuck", "stuck:F,S[,seed=D]", ("F", "S"), {"seed": 0},
                  "a fraction F of the cells is stuck, a share S of them at 1; the map is "
                  "drawn from device seed D",
                  lambda a, k: StuckAtChannel(a[0], a[1], device=k["seed"])),
)}


_PROFILE_ARGS = re.compile(r"^(?P<body>.*?)(?:@(?P<scale>[^,@]*))?(?:,\s*seed\s*=\s*(?P<seed>[^,]*))?$")


def _profile_channel(text: str, spec: str, preset: str | None) -> Channel:
    """``profile:FILE[@S][,seed=D]`` or ``PRESET[@S][,seed=D]`` (host.channels.profile)."""
    from host.channels.presets import PRESETS
    from host.channels.profile import ProfileChannel
    from host.profile import load_profile

    usage = f"{preset}[@S][,seed=D]" if preset else "profile:FILE[@S][,seed=D]"
    m = _PROFILE_ARGS.match(text.strip())
    body = m.group("body").strip() if m else ""
    if preset is None:
        if not body.startswith(":") or not body[1:].strip():
            raise FlipLabError(f"channel 'profile' needs a profile file in spec {spec!r} "
                               f"(usage: {usage})")
        label = f"profile:{body[1:].strip()}"
    elif body:
        raise FlipLabError(f"channel {preset!r} takes no parameters besides @S and seed=D in "
                           f"spec {spec!r} (usage: {usage})")
    else:
        label = preset
    scale = 1.0
    if m and m.group("scale") is not None:
        try:
            scale = float(m.group("scale"))
        except ValueError:
            scale = math.nan
        if not (scale >= 0.0 and math.isfinite(scale)):
            raise FlipLabError(f"channel {label!r}: scale {m.group('scale')!r} is not a finite "
                               f"number >= 0 in spec {spec!r} (usage: {usage})")
    device = 0
    if m and m.group("seed") is not None:
        device = _integer(m.group("seed").strip(), label, "seed", spec)
    profile = PRESETS[preset][0] if preset else load_profile(label.partition(":")[2])
    return ProfileChannel(profile, scale, device, label)


def _text_family(name: str, usage: str, help: str, preset: str | None) -> ChannelFamily:
    return ChannelFamily(name, usage, (), {"seed": 0}, help, lambda a, k: NoiselessChannel(),
                         parse_text=lambda text, spec: _profile_channel(text, spec, preset))


def _preset_families() -> list[ChannelFamily]:
    from host.channels.presets import PRESETS

    return [_text_family(name, f"{name}[@S][,seed=D]", help, name)
            for name, (_, help) in PRESETS.items()]


FAMILIES.update({f.name: f for f in [
    _text_family("profile", "profile:FILE[@S][,seed=D]",
                 "replays a fitted error profile (host characterize) at scale S; the rate is "
                 "its mean RBER", None),
    *_preset_families()]})


def list_channels() -> list[str]:
    """The channel families' spec forms, e.g. ``["asym:P01,P10", "bsc:P", ...]``."""
    return [FAMILIES[name].usage for name in sorted(FAMILIES)]


def channel_usage() -> str:
    """The spec forms joined for a help text: ``none | bsc:P | ...``."""
    return " | ".join(FAMILIES[n].usage for n in ("none", "bsc", "asym", "stuck")
                      if n in FAMILIES)


def parse_spec(spec: str) -> ParsedSpec:
    """Take a channel spec apart (the grammar of the module docstring), checking every part.

    Raises:
        FlipLabError: unknown family, wrong number of parameters, a parameter that is not a
            number or is outside [0, 1], an unknown or malformed keyword.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise FlipLabError(
            f"channel spec must be a non-empty string such as 'bsc:1e-3', got {spec!r}"
        )
    if len(spec) > MAX_SPEC_LENGTH:
        raise FlipLabError(f"channel spec is {len(spec)} characters, longer than "
                           f"{MAX_SPEC_LENGTH}: {spec[:40]!r}...")
    if not spec.isascii():
        raise FlipLabError(f"channel spec {spec!r} has non-ASCII characters")
    if "\n" in spec or "\r" in spec:
        raise FlipLabError(f"channel spec must be one line, got {spec!r}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip().lower()
    head = re.split(r"[@,]", name, maxsplit=1)[0].strip()
    if head in FAMILIES and FAMILIES[head].parse_text is not None:
        text = spec.strip()[spec.strip().lower().index(head) + len(head):]
        return ParsedSpec(FAMILIES[head], [], {}, text, spec)
    if name not in FAMILIES:
        known = ", ".join(list_channels())
        raise FlipLabError(f"unknown channel {name!r} in spec {spec!r}; known: {known}")
    family = FAMILIES[name]
    tokens = [t.strip() for t in rest.split(",")] if sep else []
    if sep and not rest.strip():
        tokens = []
    if any(t == "" for t in tokens):
        raise FlipLabError(
            f"channel {name!r}: empty parameter in spec {spec!r} (usage: {family.usage})"
        )
    positional = [t for t in tokens if "=" not in t]
    named = [t for t in tokens if "=" in t]
    if tokens[: len(positional)] != positional:
        raise FlipLabError(
            f"channel {name!r}: keyword parameters must follow the numbers in spec {spec!r} "
            f"(usage: {family.usage})"
        )
    if len(positional) != len(family.labels):
        n = len(family.labels)
        want = f"{n} number{'s' if n != 1 else ''}"
        raise FlipLabError(
            f"channel {name!r} takes {want}, got {len(positional)} in spec {spec!r} "
            f"(usage: {family.usage})"
        )
    numbers = [_number(t, name, label, spec) for t, label in zip(positional, family.labels)]
    given: dict[str, int] = {}
    for token in named:
        key, _, value = (s.strip() for s in token.partition("="))
        if key not in family.keywords:
            allowed = ", ".join(family.keywords) or "none"
            raise FlipLabError(
                f"channel {name!r}: unknown keyword {key!r} in spec {spec!r} (allowed: {allowed})"
            )
        if key in given:
            raise FlipLabError(f"channel {name!r}: keyword {key!r} given twice in spec {spec!r}")
        given[key] = _integer(value, name, key, spec)
    return ParsedSpec(family, numbers, given)


def parse_channel(spec: str) -> Channel:
    """The channel a spec string names.

    Args:
        spec: e.g. ``"bsc:1e-3"``, ``"asym:0.01,0.001"``, ``"stuck:1e-4,0.5,seed=3"``, ``"none"``.

    Raises:
        FlipLabError: as :func:`parse_spec`.
    """
    return parse_spec(spec).channel()
