"""The two forms of the clipped ReLU (host.mitigation.clip.FORMS) against the paper's f,
element for element, run in onnxruntime: f(x) = x if 0 <= x <= T else 0 (seed 003, Sec. IV-A).

Special values: +inf and -inf give 0 in both forms (the paper's "otherwise"); NaN stays NaN in
the ``fused`` form (onnxruntime's Clip and Relu propagate it) and gives 0 in the ``where``
form (docs/clipping.md)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from host.errors import FlipLabError
from host.mitigation.clip import CLIP_SUFFIX, clip_activations

C = 16  # a multiple of 16: onnxruntime runs the convolution in its blocked NCHWc layout
SPECIAL = [0.0, -0.0, 1e-45, -1e-45, 1.0, -1.0, 3e38, -3e38, np.inf, -np.inf, np.nan]


def reference(x: np.ndarray, t: float, form: str) -> np.ndarray:
    """The paper's f in numpy, with the form's stated NaN treatment."""
    t32 = np.float32(t)
    with np.errstate(invalid="ignore"):
        out = np.where((x >= 0) & (x <= t32), x, np.float32(0)).astype(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), out) if form == "fused" else out


def layer_model(kind: str, dtype: type = np.float32) -> onnx.ModelProto:
    """x -> identity layer (a depthwise 1x1 Conv with weight 1, or a MatMul with I) -> Relu
    (the clipped ReLU) -> Identity -> y: the layer passes every value, inf and NaN included
    (the MatMul only finite ones: 0 * inf = NaN in the sum). ``dtype``: the model's float
    type (weights, data, activations)."""
    if kind == "conv":
        inits = [numpy_helper.from_array(np.ones((C, 1, 1, 1), dtype), "W"),
                 numpy_helper.from_array(np.zeros(C, dtype), "B")]
        layer = helper.make_node("Conv", ["x", "W", "B"], ["h"], group=C, name="layer")
        shape = ["N", C, 2, 3]
    else:
        inits = [numpy_helper.from_array(np.eye(C, dtype=dtype), "W")]
        layer = helper.make_node("MatMul", ["x", "W"], ["h"], name="layer")
        shape = ["N", C]
    nodes = [layer, helper.make_node("Relu", ["h"], ["r"], name="act"),
             helper.make_node("Identity", ["r"], ["y"], name="out")]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("y", elem, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def values_around(t: np.float32) -> list[float]:
    """T, its float32 neighbours, and the special values."""
    return [t, np.nextafter(t, np.float32(np.inf)), np.nextafter(t, np.float32(0)), t / 2,
            2 * t] + SPECIAL


def as_input(values: list[float], kind: str) -> np.ndarray:
    v = np.resize(np.array(values, np.float32), C)
    if kind == "conv":
        return np.broadcast_to(v.reshape(1, C, 1, 1), (2, C, 2, 3)).copy()
    return np.stack([v, v[::-1]])


@pytest.mark.parametrize("form", ["fused", "where"])
@pytest.mark.parametrize("t", [0.0, 1e-40, 0.1, 1.0, 2.5, 1e30, 1e35])
def test_each_form_is_the_papers_f_on_t_its_neighbours_and_the_special_values(form, t):
    x = as_input(values_around(np.float32(t)), "conv")
    got = run(clip_activations(layer_model("conv"), {"layer": t}, form=form), x)
    np.testing.assert_array_equal(got, reference(x, t, form))


floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@settings(max_examples=40, deadline=None)
@given(t=st.floats(0, 2.0 ** 100, width=32), values=st.lists(floats32, min_size=C, max_size=C),
       form=st.sampled_from(["fused", "where"]))
def test_conv_layer_clip_equals_the_reference_for_any_values(t, values, form):
    x = as_input(values + values_around(np.float32(t)), "conv")
    got = run(clip_activations(layer_model("conv"), {"layer": t}, form=form), x)
    np.testing.assert_array_equal(got, reference(x, t, form))


@settings(max_examples=25, deadline=None)
@given(t=st.floats(0, 2.0 ** 100, width=32),
       values=st.lists(st.floats(-2.0 ** 100, 2.0 ** 100, width=32), min_size=C, max_size=C),
       form=st.sampled_from(["fused", "where"]))
def test_matmul_layer_clip_equals_the_reference(t, values, form):
    # a MatMul layer takes the Where(Greater(r, T), 0, r) path of the fused form
    x = as_input(values, "mm")
    got = run(clip_activations(layer_model("mm"), {"layer": t}, form=form), x)
    np.testing.assert_array_equal(got, reference(x, t, form))


def test_the_fused_form_builds_the_fusable_nodes_and_names_the_clip():
    conv = clip_activations(layer_model("conv"), {"layer": 1.0})
    ops = [n.op_type for n in conv.graph.node]
    assert ops == ["Conv", "Relu", "Clip", "Conv", "Clip", "Add", "Identity"]
    assert conv.graph.node[5].name == "act" + CLIP_SUFFIX
    mm = clip_activations(layer_model("mm"), {"layer": 1.0})
    assert [n.op_type for n in mm.graph.node] == ["MatMul", "Relu", "Greater", "Where",
                                                  "Identity"]
    # T = +inf: f is the ReLU, nothing is inserted (and the metadata records T)
    same = clip_activations(layer_model("conv"), {"layer": float("inf")})
    assert [n.op_type for n in same.graph.node] == ["Conv", "Relu", "Identity"]
    with pytest.raises(FlipLabError, match="already clipped"):
        clip_activations(same, {"layer": 1.0})


@pytest.mark.parametrize("form", ["fused", "where"])
@pytest.mark.parametrize("kind, dtype", [("conv", np.float16), ("mm", np.float16),
                                         ("mm", np.float64)])
@pytest.mark.parametrize("t", [0.1, 1.2345, 3.0, 1e5])
def test_other_float_types_clip_in_their_own_type(form, kind, dtype, t):
    # both forms are the Where form there (the fused one is a float32 NCHWc construction); a
    # float16 activation is compared as float32 with float32(T) (exact for float16 values,
    # and what onnxruntime's CPU provider compares), a float64 one with float64 T
    info = np.finfo(dtype)
    t_cmp = np.float64(t) if dtype == np.float64 else np.float32(t)
    near = dtype(min(t, float(info.max)))
    with np.errstate(over="ignore"):  # the value after 65504 is +inf
        above = np.nextafter(near, dtype(np.inf))
    values = [near, above, np.nextafter(near, dtype(0)), dtype(0), dtype(-1), info.max,
              info.tiny, np.inf, -np.inf, np.nan]
    v = np.resize(np.array(values, dtype), C)
    x = np.broadcast_to(v.reshape(1, C, 1, 1), (2, C, 2, 3)).copy() if kind == "conv" \
        else np.stack([v, v[::-1]])
    if kind == "mm":
        x = np.nan_to_num(x, nan=0.0, posinf=info.max, neginf=-info.max)  # 0 * inf in the sum
    model = clip_activations(layer_model(kind, dtype), {"layer": t}, form=form)
    ops = [n.op_type for n in model.graph.node][2:-1]
    assert ops == (["Cast"] if dtype == np.float16 else []) + ["LessOrEqual", "Where"]
    got = run(model, x)
    with np.errstate(invalid="ignore"):
        expected = np.where((x >= 0) & (x.astype(t_cmp.dtype) <= t_cmp), x, dtype(0))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)


def test_an_unknown_form_is_refused():
    with pytest.raises(FlipLabError, match="unknown clip form 'fast': expected one of fused, "
                                           "where"):
        clip_activations(layer_model("conv"), {"layer": 1.0}, form="fast")
