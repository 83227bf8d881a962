"""Mitigations: loops over the variant path that change the model to tolerate weight errors.

``host.mitigation.clip`` is seed 003's FT-ClipAct: ACT_max profiling, the clipped-ReLU graph
pass and Algorithm 1's threshold search (docs/clipping.md).
"""
