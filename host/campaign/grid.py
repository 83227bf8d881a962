"""What a campaign is: its grid (codecs × scopes × rates × trials) and its units of work.

A campaign is fully defined by a :class:`CampaignSpec` (model file and its sha256, codecs,
channel, rates, trials, scopes, quantisation range, overrides, data, samples, seed). The unit
of work is one :class:`Unit` = (codec, scope, trial): it draws the trial's nested error
pattern once for the largest rate and walks the rates upward, flipping only the new bits.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from host.channels import Channel, parse_channel
from host.codecs import get_codec
from host.data import DataSpec
from host.errors import FlipLabError
from host.executors import DEFAULT as DEFAULT_BACKEND
from host.image import Image

#: scope of every stored weight bit (the paper's whole-model experiment)
MODEL_SCOPE = "model"
#: what a campaign corrupts: stored weights (default), layer outputs (seed 002), or both
TARGETS = ("weights", "activations", "both")


@dataclass(frozen=True, order=True)
class Unit:
    """One unit of work: a (codec, scope, trial) walking all the campaign's rates."""

    codec: str
    scope: str
    trial: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.codec, self.scope, self.trial)


@dataclass(frozen=True)
class CampaignSpec:
    """Everything that defines a campaign (and nothing that does not, e.g. the executor).

    Attributes:
        model: path of the ONNX model file.
        model_sha256: hex sha256 of that file (workers refuse a different file).
        codecs: canonical codec specs, in the user's order.
        channel: canonical channel spec whose rate the sweep varies (``bsc``,
            ``asym:P01,P10`` keeps the ratio, ``stuck:F,S,seed=D`` replaces F).
        rates: the swept rates, strictly increasing, each in (0, 1].
        trials: number of trials M per (codec, scope, rate), ≥ 1.
        scopes: expanded scopes: ``model``, ``layer:<layer name>``, ``bits:<positions>``.
        granularity: quantisation range per ``model``, ``tensor`` or ``channel``.
        overrides: (pattern, codec) pairs of the export's codec plan.
        data: dataset spec (``digits``, a .npz, IDX files, a folder).
        normalize: input normalisation spec.
        samples: number of samples (the first N of the split); None = all.
        seed: campaign seed, an integer ≥ 0.
        backend: the executor that runs every variant (host.executors).
        target: ``weights``, ``activations`` (every stored bit of every layer output,
            host.activations) or ``both`` (weights and activations at the same rate).
        act_bits / act_signed / act_layers: the activations' width (2..8), two's complement
            or unsigned codes, and which layer outputs (``all`` or a comma list).
    """

    model: str
    model_sha256: str
    codecs: tuple[str, ...]
    channel: str
    rates: tuple[float, ...]
    trials: int
    scopes: tuple[str, ...]
    granularity: str = "model"
    overrides: tuple[tuple[str, str], ...] = ()
    data: str = "digits"
    normalize: str = "unit"
    samples: int | None = None
    seed: int = 0
    backend: str = DEFAULT_BACKEND
    target: str = "weights"
    act_bits: int = 8
    act_signed: bool = True
    act_layers: str = "all"

    @property
    def dataset(self) -> DataSpec:
        """The campaign's samples as a :class:`~host.data.DataSpec`."""
        return DataSpec(self.data, self.normalize, self.samples)

    def units(self) -> list[Unit]:
        """Every unit of the grid, codec-major, then scope, then trial."""
        return [Unit(c, s, t) for c in self.codecs for s in self.scopes for t in range(self.trials)]

    def rows_of(self, unit: Unit) -> int:
        """Rows a finished unit has written: one per rate, plus the clean row for trial 0."""
        return len(self.rates) + (1 if unit.trial == 0 else 0)

    def grid(self) -> dict:
        """The JSON description of the grid (what ``campaign.json`` compares on resume)."""
        return {"codecs": list(self.codecs), "channel": self.channel, "rates": list(self.rates),
                "trials": self.trials, "scopes": list(self.scopes),
                "range": self.granularity, "overrides": [list(o) for o in self.overrides],
                "normalize": self.normalize, "samples": self.samples, "backend": self.backend,
                "target": self.target, "act_bits": self.act_bits, "act_signed": self.act_signed,
                "act_layers": self.act_layers}

    def to_json(self) -> dict:
        d = asdict(self)
        d["overrides"] = [list(o) for o in self.overrides]
        return d


def parse_rates(text: str) -> tuple[float, ...]:
    """``"lo:hi:n"`` (n log-spaced rates, both ends included) or a comma list of rates.

    Rates are raw bit error rates in (0, 1]; the clean point (rate 0) is always evaluated
    separately. Returns the rates sorted ascending.

    Raises:
        FlipLabError: malformed text, a rate outside (0, 1], an empty or inverted range,
            a repeated rate.
    """
    text = (text or "").strip()
    if not text:
        raise FlipLabError("rate list is empty (use lo:hi:n, e.g. 1e-5:1e-1:13, or a comma list)")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise FlipLabError(f"rate range {text!r} is not lo:hi:n (e.g. 1e-5:1e-1:13)")
        lo, hi = (_rate(p, text) for p in parts[:2])
        try:
            n = int(parts[2])
        except ValueError:
            raise FlipLabError(f"rate range {text!r}: n = {parts[2]!r} is not an integer") from None
        if n < 1:
            raise FlipLabError(f"rate range {text!r} is empty (n = {n}; need n >= 1)")
        if lo > hi:
            raise FlipLabError(f"rate range {text!r} is inverted (lo {lo:g} > hi {hi:g})")
        if n > 1 and lo == hi:
            raise FlipLabError(f"rate range {text!r} repeats one rate {n} times")
        if n == 1:
            if lo != hi:
                raise FlipLabError(f"rate range {text!r}: one rate cannot span {lo:g}..{hi:g}")
            return (lo,)
        rates = np.exp(np.linspace(math.log(lo), math.log(hi), n))
        rates[0], rates[-1] = lo, hi  # exact ends, no exp(log()) rounding
        return tuple(float(f"{r:.6g}") if 0 < i < n - 1 else float(r)
                     for i, r in enumerate(rates))
    values = [_rate(p, text) for p in text.split(",")]
    if len(set(values)) != len(values):
        raise FlipLabError(f"rate list {text!r} names a rate twice")
    return tuple(sorted(values))


def _rate(token: str, text: str) -> float:
    try:
        r = float(token)
    except ValueError:
        raise FlipLabError(f"rate {token.strip()!r} in {text!r} is not a number") from None
    if not 0.0 < r <= 1.0:  # also refuses nan
        raise FlipLabError(f"rate {token.strip()} in {text!r} is outside (0, 1]")
    return r


def sweep_channel(spec: str) -> Channel:
    """The channel a sweep varies: ``bsc`` (or ``bsc:P``), ``asym:P01,P10``, ``stuck:F,S[,seed=D]``.

    The family name alone is accepted for ``bsc``. The channel's own rate is irrelevant: the
    sweep draws each trial's pattern up to its largest rate and reads it at every rate.
    """
    text = (spec or "").strip()
    if text.lower() == "bsc":
        text = "bsc:0"
    channel = parse_channel(text)
    if channel.name == "none":
        raise FlipLabError("channel 'none' has no rate to sweep; use bsc, asym:P01,P10 or "
                           "stuck:F,S[,seed=D]")
    profile = getattr(channel, "profile", None)
    if profile is not None and profile.reference_rate == 0.0:
        raise FlipLabError(f"channel {spec!r}: the profile has no errors, so no rate to sweep")
    if channel.name == "asym" and channel.rate == 0.0:
        raise FlipLabError(f"channel {spec!r}: asym needs P01 or P10 above 0 (their ratio is kept)")
    return channel


def sweep_channel_spec(spec: str) -> str:
    """The canonical spec recorded in the results (``bsc``, ``asym:0.01,0.001``, ...)."""
    channel = sweep_channel(spec)
    return "bsc" if channel.name == "bsc" else channel.spec


def parse_scopes(texts: Sequence[str] | None, layers: list[str]) -> tuple[str, ...]:
    """Expand scope texts: ``model``, ``layers`` (one scope per layer, in graph order),
    ``layer:NAME``, ``bits:POSITIONS`` (e.g. ``bits:7``, ``bits:msb``, ``bits:7,6``).

    Args:
        texts: the user's ``--scope`` values (None or empty: ``model``).
        layers: the model's layer names in graph order.
    """
    out: list[str] = []
    for text in texts or [MODEL_SCOPE]:
        text = text.strip()
        if text == MODEL_SCOPE:
            new = [MODEL_SCOPE]
        elif text == "layers":
            new = [f"layer:{name}" for name in layers]
        elif text.startswith("layer:"):
            name = text[len("layer:"):]
            if name not in layers:
                raise FlipLabError(f"scope {text!r}: the model has no layer {name!r} "
                                   f"(layers: {', '.join(layers)})")
            new = [text]
        elif text.startswith("bits:"):
            new = [f"bits:{','.join(str(p) for p in bit_positions(text))}"]
        elif text.startswith("tensors:"):
            if not tensor_patterns(text):
                raise FlipLabError(f"scope {text!r} names no tensor pattern "
                                   f"(e.g. 'tensors:!conv1*')")
            new = [f"tensors:{','.join(tensor_patterns(text))}"]
        else:
            raise FlipLabError(f"unknown scope {text!r}; use model, layers, layer:NAME, "
                               f"bits:POSITIONS (e.g. bits:7) or tensors:PATTERNS "
                               f"(e.g. 'tensors:!conv1*')")
        for s in new:
            if s in out:
                raise FlipLabError(f"scope {s!r} is given twice")
            out.append(s)
    return tuple(out)


def bit_positions(scope: str) -> list[int | str]:
    """The bit positions of a ``bits:`` scope (``"msb"`` or integers ≥ 0), in the given order."""
    body = scope[len("bits:"):]
    out: list[int | str] = []
    for part in body.split(","):
        part = part.strip().lower()
        if part == "msb":
            out.append("msb")
        elif part.isdigit():
            out.append(int(part))
        else:
            raise FlipLabError(f"scope {scope!r}: bit position {part!r} is neither an integer "
                               f"nor 'msb'")
    return sorted(set(out), key=lambda p: (isinstance(p, str), p))


def tensor_patterns(scope: str) -> list[str]:
    """The fnmatch patterns of a ``tensors:`` scope, comma separated; ``!P`` excludes P."""
    return [p.strip() for p in scope[len("tensors:"):].split(",") if p.strip()]


def scope_selection(scope: str) -> dict:
    """Where a scope's errors land, as ``host inject``'s selection: keyword arguments
    ``tensors`` / ``bit_positions`` of :func:`host.inject.error_pattern`.

    ``model``: every stored bit (``host inject``); ``layer:L``: the tensors whose layer or name
    matches L (``host inject --tensors L``); ``bits:P``: positions P of every code
    (``host inject --bits P``).
    """
    if scope == MODEL_SCOPE:
        return {}
    if scope.startswith("layer:"):
        return {"tensors": [glob.escape(scope[len("layer:"):])]}
    if scope.startswith("bits:"):
        return {"bit_positions": bit_positions(scope)}
    if scope.startswith("tensors:"):
        return {"tensors": tensor_patterns(scope)}
    raise FlipLabError(f"unknown scope {scope!r}")


def scope_tensors(image: Image, scope: str) -> list[str]:
    """Names of the tensors a scope may corrupt."""
    if scope.startswith("layer:"):
        return [t.name for t in image.select([glob.escape(scope[len("layer:"):])])]
    if scope.startswith("tensors:"):
        return [t.name for t in image.select(tensor_patterns(scope))]
    return [t.name for t in image.tensors]


def check_codecs(text: str | Sequence[str]) -> tuple[str, ...]:
    """Canonical codec specs from ``"fixed8,parity8"`` (commas inside parentheses kept)."""
    items = _split_top(text) if isinstance(text, str) else list(text)
    specs = [get_codec(s.strip()).spec for s in items if s.strip()]
    if not specs:
        raise FlipLabError("no codec given (e.g. --codecs fixed8,parity8)")
    if len(set(specs)) != len(specs):
        raise FlipLabError(f"codec list {text!r} names a codec twice")
    return tuple(specs)


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    parts.append(cur)
    return parts

