"""The XOR masks fed to the fault points of :func:`host.activations.quantize.insert_fault_points`.

- :func:`zero_masks`: no fault (the quantised, fault-free graph).
- :func:`single_flip_masks`: one chosen bit of one chosen neuron, the same in every sample (the
  single-flip study of seed 002: one mask of batch 1 broadcasts over the samples).
- :class:`ActivationErrors`: every stored activation bit of every sample flips with
  probability p (the BER study), nested over rates and reproducible from (seed, trial).

**Bits of one sample.** The stored bits of a sample are numbered layer by layer in the order of
the formats, neuron by neuron (C order of the layer's shape) and, within a neuron, from the LSB
(bit 0) to the MSB (bit ``bits-1``): bit ``offset[layer] + neuron * bits + bit``.

**Seeds.** Samples are taken in blocks of :data:`SAMPLE_BLOCK`; block ``b`` of trial ``t``
draws its errors with :func:`host.channels.sampling.sample_nested` (the weight channels'
nested sampler, so a bit wrong at a lower rate is wrong at every higher one) from
``SeedSequence([seed, t], spawn_key=(ACTIVATION_DOMAIN, b))``: a stream of the trial apart
from the weight errors' (which are ``SeedSequence([seed, t])``'s children ``(k, s)``), so
weights and activations corrupted together are independent, and a sample's errors depend on
(seed, trial, sample index, the layers' shapes and widths) alone: not on the batch size, the
number of samples or the largest rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from host.activations.quantize import ActivationFormat
from host.channels.sampling import Candidates, sample_nested, trial_seed
from host.errors import FlipLabError

#: spawn-key tag of the activation error streams (ASCII "ACTV")
ACTIVATION_DOMAIN = 0x41435456
#: samples per independently seeded block
SAMPLE_BLOCK = 256
#: blocks of drawn errors kept in memory (a batch's blocks, reused across the rates)
CACHED_BLOCKS = 8


def zero_masks(formats: Sequence[ActivationFormat], batch: int = 1) -> dict[str, np.ndarray]:
    """All-zero masks (batch ``batch``) for every fault point."""
    return {f.mask_name: np.zeros((batch, *f.shape), f.format.dtype) for f in formats}


def find_format(formats: Sequence[ActivationFormat], layer: str) -> ActivationFormat:
    for f in formats:
        if f.layer == layer:
            return f
    raise FlipLabError(f"no fault point at layer {layer!r}; the fault points are "
                       f"{', '.join(f.layer for f in formats)}")


def single_flip_masks(formats: Sequence[ActivationFormat], layer: str, neuron: int,
                      bit: int | str = "msb") -> dict[str, np.ndarray]:
    """Masks (batch 1, broadcast over the samples) that flip stored bit ``bit`` of neuron
    ``neuron`` (flat C-order index into the layer's per-sample shape) of ``layer``."""
    f = find_format(formats, layer)
    if isinstance(neuron, bool) or not isinstance(neuron, (int, np.integer)) \
            or not 0 <= neuron < f.neurons:
        raise FlipLabError(f"neuron {neuron!r} is outside layer {layer!r} "
                           f"(0 .. {f.neurons - 1})")
    masks = zero_masks(formats)
    flat = masks[f.mask_name].reshape(-1).view(np.uint8)
    flat[int(neuron)] = f.format.flip_mask(bit)
    return masks


class ActivationErrors:
    """The activation bit errors of one trial: BSC(p) on every stored bit of every sample,
    for every rate ``p <= rate_max`` (nested).

    Args:
        formats: the fault points, in the graph's order.
        seed, trial: the campaign seed and trial (integers >= 0).
        rate_max: the largest rate asked for, in [0, 1].
    """

    def __init__(self, formats: Sequence[ActivationFormat], *, seed: int, trial: int,
                 rate_max: float) -> None:
        self.formats = tuple(formats)
        widths = [f.neurons * f.format.bits for f in self.formats]
        self.offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        self.bits_per_sample = int(self.offsets[-1])
        self.root = trial_seed(seed, trial)
        self.rate_max = float(rate_max)
        self._blocks: dict[int, Candidates] = {}

    def _block(self, b: int) -> Candidates:
        if b not in self._blocks:
            root = np.random.SeedSequence(self.root.entropy,
                                          spawn_key=(ACTIVATION_DOMAIN, b))
            if len(self._blocks) >= CACHED_BLOCKS:  # the oldest goes
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[b] = sample_nested(root, SAMPLE_BLOCK * self.bits_per_sample,
                                            self.rate_max)
        return self._blocks[b]

    def positions(self, start: int, stop: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
        """(sample, bit of that sample) of the errors at ``rate`` in samples
        ``[start, stop)``, sorted."""
        if rate > self.rate_max:
            raise FlipLabError(f"rate {rate} is above the errors' rate_max {self.rate_max}")
        samples, bits = [], []
        for b in range(start // SAMPLE_BLOCK, -(-stop // SAMPLE_BLOCK)):
            cand = self._block(b)
            hit = cand.index[cand.u < rate]
            s = b * SAMPLE_BLOCK + hit // self.bits_per_sample
            keep = (s >= start) & (s < stop)
            samples.append(s[keep])
            bits.append(hit[keep] % self.bits_per_sample)
        if not samples:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(samples), np.concatenate(bits)

    def masks(self, start: int, stop: int, rate: float) -> tuple[dict[str, np.ndarray], int]:
        """The masks of samples ``[start, stop)`` at ``rate`` and the number of flipped bits."""
        samples, bits = self.positions(start, stop, rate)
        masks = zero_masks(self.formats, stop - start)
        layer = np.searchsorted(self.offsets, bits, side="right") - 1
        for k, f in enumerate(self.formats):
            sel = layer == k
            if not np.any(sel):
                continue
            within = bits[sel] - self.offsets[k]
            neuron, bit = within // f.format.bits, within % f.format.bits
            table = np.array([f.format.flip_mask(int(b)) for b in range(f.format.bits)],
                             np.uint8)
            flat = masks[f.mask_name].reshape(stop - start, -1).view(np.uint8)
            np.bitwise_xor.at(flat, (samples[sel] - start, neuron), table[bit])
        return masks, int(samples.size)
