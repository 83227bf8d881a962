"""Feature optimisation (seed 002, Sec. IV-B): eq. 6 rescaling as graph -> graph passes.

Eq. 6 scales the weights that *read* feature map c of layer l-1 by
``s_c = mean(η) / η_c`` (:func:`eq6_scales`), so that with ρ fixed every η'_c = s_c·η_c equals
the layer's mean η̄ (eq. 5 is linear in |w|). Weights reading a critical feature map shrink,
those reading an uncritical one grow, on average by one.

- :func:`rescale_features` is that pass. ``compensate=False`` is the paper's exact form: only
  the next layer's input weights change, so the network's function changes (the paper
  fine-tunes afterwards, Algorithm 1). ``compensate=True`` also divides the producing layer's
  output channel c (weights and bias) by s_c: ReLU, max/average pooling and Flatten are
  positively homogeneous, so a ReLU network computes exactly the same function (up to float
  rounding), the stored feature map c is ``1/s_c`` times larger and its outbound weights
  ``s_c`` times smaller. ρ is unchanged by this (each z+ term ``f·w⁺`` keeps its value).
- :func:`requantise` snaps the weights of every weight layer to a codec's grid (default
  ``int8``, symmetric, one scale per output channel) with the codec's own quantiser, so the
  float model holds exactly what the codec stores after each rescale.
- :func:`adjust_weights` is the inner loop of Algorithm 1 (lines 2-7): for each feature layer
  in order, ρ from the current model on D (eq. 2-4), η (eq. 5), eq. 6, then re-quantisation.

Only float models whose weights are initializers read by a single node are rescaled (a QDQ
model's integer weights would need its scales re-fitted: quantise with a codec at export
instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from host.errors import FlipLabError
from host.mitigation.relevance import Chain, FeatureLayer, channel_view, criticality, read_chain
from host.model.graph import consumers, copy_model


def eq6_scales(eta: np.ndarray) -> np.ndarray:
    """Eq. 6's factor per feature map: s_c = Σ_c̃ η_c̃ / (η_c · C) (1 where η_c = 0: a feature
    map with no criticality has no weights worth moving)."""
    eta = np.asarray(eta, dtype=np.float64)
    if eta.ndim != 1 or eta.size == 0 or not np.isfinite(eta).all() or (eta < 0).any():
        raise FlipLabError("eq. 6 needs a non-empty vector of finite η >= 0")
    mean = eta.mean()
    out = np.ones_like(eta)
    np.divide(mean, eta, out=out, where=eta > 0)
    return out


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def _set(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    for i, t in enumerate(model.graph.initializer):
        if t.name == name:
            model.graph.initializer[i].CopyFrom(
                numpy_helper.from_array(value.astype(numpy_helper.to_array(t).dtype), name))
            return
    raise AssertionError(name)


def _owned_weight(model: onnx.ModelProto, name: str | None, layer: str, what: str) -> np.ndarray:
    """The float initializer ``name`` of ``layer``, refused when missing, quantised or shared."""
    if name is None:
        raise FlipLabError(f"layer {layer}: its {what} is not a float initializer (a QDQ model "
                           f"cannot be rescaled; rescale the float model and quantise at export)")
    readers = consumers(model.graph).get(name, [])
    if len(readers) != 1:
        raise FlipLabError(f"layer {layer}: its {what} {name} is shared by {len(readers)} nodes")
    value = numpy_helper.to_array(_initializers(model)[name])
    if value.dtype.kind != "f":
        raise FlipLabError(f"layer {layer}: its {what} {name} is not a float tensor")
    return value


def _scale_inputs(stored: np.ndarray, layout: str, channels: int, s: np.ndarray) -> np.ndarray:
    """The stored weight with its input feature map c (all its kernel taps / flattened block)
    multiplied by s_c."""
    if layout == "conv":
        return stored * s.reshape(1, -1, 1, 1)
    w = stored if layout == "gemm_t" else stored.T  # [K, C·rest]
    scaled = (channel_view(w, channels) * s.reshape(1, -1, 1)).reshape(w.shape)
    return scaled if layout == "gemm_t" else scaled.T


def _scale_outputs(stored: np.ndarray, layout: str, s: np.ndarray) -> np.ndarray:
    """The stored weight with its output channel k multiplied by s_k."""
    if layout in ("conv", "gemm_t"):
        return stored * s.reshape(-1, *([1] * (stored.ndim - 1)))
    return stored * s.reshape(1, -1)


def rescale_features(model: onnx.ModelProto, scales: Mapping[str, np.ndarray], *,
                     compensate: bool = False) -> onnx.ModelProto:
    """Eq. 6 with the given factors: ``scales`` maps a feature layer (the weight layer that
    writes the feature maps) to s per feature map; the next weight layer's input weights are
    multiplied by s, and with ``compensate`` the layer's own output weights and bias divided
    by it. A pure pass: a new model, the input is not changed."""
    chain = read_chain(model)
    weights = [s for s in chain.steps if s.is_weight_layer]
    names = [s.node for s in weights]
    result = copy_model(model)
    for layer, s in scales.items():
        if layer not in names:
            raise FlipLabError(f"no weight layer named {layer} (layers: {', '.join(names)})")
        index = names.index(layer)
        if index + 1 == len(weights):
            raise FlipLabError(f"layer {layer} writes the logits: no weight layer reads it")
        s = np.asarray(s, dtype=np.float64)
        if s.ndim != 1 or not np.isfinite(s).all() or (s <= 0).any():
            raise FlipLabError(f"layer {layer}: scales must be finite and > 0")
        own, reader = weights[index], weights[index + 1]
        if own.weight is None or own.weight.shape[0] != s.size:
            raise FlipLabError(f"layer {layer}: {s.size} scales for "
                               f"{None if own.weight is None else own.weight.shape[0]} "
                               f"feature maps")
        stored = _owned_weight(result, reader.weight_name, reader.node, "weight")
        _set(result, reader.weight_name or "", _scale_inputs(stored, reader.layout, s.size, s))
        if compensate:
            stored = _owned_weight(result, own.weight_name, own.node, "weight")
            _set(result, own.weight_name or "", _scale_outputs(stored, own.layout, 1.0 / s))
            if own.bias is not None:
                bias = _owned_weight(result, own.bias_name, own.node, "bias")
                _set(result, own.bias_name or "", bias / s.reshape(bias.shape))
    return result


def requantise(model: onnx.ModelProto, codec: str = "int8") -> onnx.ModelProto:
    """Every weight layer's weight snapped to ``codec``'s grid, one scale per output channel
    (biases stay float). A pure pass."""
    from host.codecs import get_codec

    quantiser = get_codec(codec)
    result = copy_model(model)
    for step in read_chain(model).steps:
        if not step.is_weight_layer:
            continue
        stored = _owned_weight(result, step.weight_name, step.node, "weight")
        axis = 1 if step.layout in ("gemm", "matmul") else 0
        params = quantiser.fit(stored, axis=axis, granularity="channel")
        values, _ = quantiser.decode(quantiser.encode(stored, params), params, dtype=stored.dtype)
        _set(result, step.weight_name or "", values.reshape(stored.shape))
    return result


def adjust_weights(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray, *,
                   compensate: bool = False, codec: str | None = "int8",
                   progress: Callable[[str], None] | None = None
                   ) -> tuple[onnx.ModelProto, list[FeatureLayer]]:
    """Algorithm 1, lines 2-7: for each feature layer in graph order, ρ of the current model on
    (x, y), η (eq. 5), eq. 6 on the next layer's weights, re-quantisation with ``codec`` (None:
    none). Returns the adjusted model and the criticality each layer was adjusted with."""
    used: list[FeatureLayer] = []
    names = [layer.name for layer in criticality(read_chain(model), x[:1], y[:1])
             if layer.eta is not None]
    for name in names:
        layers = criticality(read_chain(model), x, y)
        layer = next(la for la in layers if la.name == name)
        assert layer.eta is not None
        model = rescale_features(model, {name: eq6_scales(layer.eta)}, compensate=compensate)
        if codec is not None:
            model = requantise(model, codec)
        used.append(layer)
        if progress is not None:
            progress(name)
    return model, used


def feature_criticality(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray
                        ) -> tuple[Chain, list[FeatureLayer]]:
    """The chain and its ρ / η on (x, y): the measure Algorithm 1 is checked with."""
    chain = read_chain(model)
    return chain, criticality(chain, x, y)
