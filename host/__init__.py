"""FlipLab host package: neural-network weights in noisy memory.

Data flow (docs/image-format.md; why it is shaped so: docs/decisions.md):
ONNX model -> WeightSet -> codes (codec) -> memory image -> channel (bit errors) -> decode
-> executor -> metrics.
"""

__version__ = "0.1.0"
