"""Compare a golden image with a noisy one (e.g. a dump read back from a board).

Reports bit errors per tensor (with its short name, host.names, as ``host inspect`` shows it)
and per bit position inside the stored fields, split into 0->1
and 1->0, plus the errors that fell outside every tensor (padding).
"""

from __future__ import annotations

import numpy as np

from host.image import Image
from host.names import short_names


def diff_images(golden: Image, noisy: Image) -> dict:
    """Bit errors of ``noisy`` against ``golden`` (same layout); JSON-ready."""
    g = np.unpackbits(golden.payload, bitorder="little")
    n = np.unpackbits(noisy.payload, bitorder="little")
    wrong = np.flatnonzero(g != n)
    rising = g[wrong] == 0  # stored 0, read 1
    seen = np.zeros(wrong.size, dtype=bool)
    short = dict(zip((t.name for t in golden.tensors), short_names(golden.tensors)))
    tensors = []
    for region in golden.regions():
        end = region.start_bit + region.n_fields * region.field_bits
        sel = (wrong >= region.start_bit) & (wrong < end)
        seen |= sel
        pos = (wrong[sel] - region.start_bit) % region.field_bits
        up = rising[sel]
        tensors.append({
            "tensor": region.tensor, "short": short.get(region.tensor, region.tensor),
            "bits": region.n_fields * region.field_bits,
            "errors": int(sel.sum()), "zero_to_one": int(up.sum()), "one_to_zero": int((~up).sum()),
            "per_position": {
                "zero_to_one": np.bincount(pos[up], minlength=region.field_bits).tolist(),
                "one_to_zero": np.bincount(pos[~up], minlength=region.field_bits).tolist()},
        })
    return {
        "payload_bits": int(g.size), "errors": int(wrong.size),
        "zero_to_one": int(rising.sum()), "one_to_zero": int((~rising).sum()),
        "ber": wrong.size / g.size if g.size else 0.0,
        "outside_tensors": int((~seen).sum()), "tensors": tensors,
    }
