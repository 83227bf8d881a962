"""Mitigations and the measures that explain them: loops over the variant path.

- ``host.mitigation.clip`` (with ``search`` and ``tune``): seed 003's FT-ClipAct — ACT_max
  profiling, the clipped-ReLU graph pass and Algorithm 1's threshold search (docs/clipping.md).
- ``host.mitigation.tolerance``: seed 004's bit-error tolerance metric T^b of a binarized
  network, without fault injection (docs/tolerance.md).
"""
