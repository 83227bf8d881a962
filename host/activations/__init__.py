"""Bit flips in the activations (seed 002): feature maps held in on-chip buffers as 8-bit
dynamic fixed point.

- :mod:`host.activations.quantize`: the per-layer format (:class:`FixedPoint`), the range rule
  (:func:`range_rule`), where the layer outputs are (:func:`activation_layers`), profiling
  (:func:`profile_formats`) and the graph pass :func:`insert_fault_points`
  (QuantizeLinear -> BitwiseXor(mask input) -> DequantizeLinear at each chosen layer output).
- :mod:`host.activations.faults`: the masks fed to those inputs: none, one chosen bit of one
  chosen neuron, or every stored bit flipping with probability p (nested, from (seed, trial)).
- :mod:`host.activations.criticality`: the per-neuron MSB failure rate (``host criticality``).

docs/activation-faults.md describes the format, the masks and the commands.
"""
