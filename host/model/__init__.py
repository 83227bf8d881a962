"""ONNX in: find the weight tensors of a model and the graph that consumes them.

``load_model(path)`` reads an ONNX file (float, QDQ/QCDQ int8, or binarized with QONNX
BipolarQuant / ONNX Sign on the weight path) and returns a :class:`WeightSet`: the weight
tensors (name, layer, role, stored values, output-channel axis, quantization, binarized)
and the graph with those initializers removed. ``with_weights_as_initializers`` and
``with_weights_as_inputs`` put (decoded) weights back for onnxruntime. docs/models.md says
which models are accepted and how weights are found.
"""

from host.model.feeding import weight_slots, with_weights_as_initializers, with_weights_as_inputs
from host.model.loader import load_model
from host.model.weights import ROLES, WeightSet, WeightTensor

__all__ = [
    "ROLES",
    "WeightSet",
    "WeightTensor",
    "load_model",
    "weight_slots",
    "with_weights_as_initializers",
    "with_weights_as_inputs",
]
