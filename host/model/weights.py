"""The data model of ``host.model``: one weight tensor and the set of a model's weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

#: Roles a weight tensor plays for its layer. "peephole" is the LSTM P input.
ROLES = ("weight", "bias", "recurrence", "embedding", "peephole")


@dataclass
class WeightTensor:
    """One tensor of learned parameters, as it will be stored in memory.

    Attributes:
        name: initializer name in the ONNX graph (the name the executors feed).
        layer: name of the consuming node, e.g. ``"conv1"`` or ``"/fc1/Gemm"``.
        op_type: ONNX op of the layer: Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU, RNN, Gather.
        role: one of :data:`ROLES`.
        values: the tensor as stored: float for float models, the integer codes for QDQ models.
        channel_axis: output-channel axis of ``values`` (None when the tensor has none,
            e.g. a scalar or a 1-D MatMul operand).
        quant: QDQ only: ``{"scale": [...], "zero_point": [...], "axis": int | None}`` of the
            DequantizeLinear that decodes ``values``; ``axis`` is None for per-tensor scales.
        binarized: True when the layer consumes ``sign(values)`` (+1 for values >= 0, else -1).
    """

    name: str
    layer: str
    op_type: str
    role: str
    values: np.ndarray
    channel_axis: int | None
    quant: dict | None
    binarized: bool

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the stored tensor."""
        return tuple(self.values.shape)


@dataclass
class WeightSet:
    """The weights of a model and the graph that consumes them.

    Attributes:
        tensors: the weight tensors, in the order of their first consuming node.
        graph: the model with these initializers removed (each is described by a
            ``value_info`` entry instead), binarizing ops on weight paths bypassed and
            BipolarQuant on activations lowered to standard ONNX ops. Put weights back with
            :func:`host.model.with_weights_as_initializers` or
            :func:`host.model.with_weights_as_inputs`.
        input_name: the model's one data input.
        input_shape: its shape; symbolic dimensions are strings ("batch"), unknown ones "?".
        output_name: the model's class scores (:func:`host.model.graph.scores_output`).
        input_dtype: numpy name of the data input's element type ("float32"; "int64" for
            token ids): the dtype the data is passed in.
    """

    tensors: list[WeightTensor]
    graph: onnx.ModelProto
    input_name: str
    input_shape: list[int | str]
    output_name: str
    input_dtype: str = "float32"

    def __getitem__(self, name: str) -> WeightTensor:
        """The weight tensor called ``name`` (KeyError if there is none)."""
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """Names of the weight tensors, in order."""
        return [tensor.name for tensor in self.tensors]
