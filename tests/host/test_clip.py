"""FT-ClipAct (seed 003): profiling, the clipped-ReLU graph pass, against hand-worked truth."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from host.data import load_dataset
from host.errors import FlipLabError
from host.hw.requant import clipped_relu
from host.mitigation.clip import (
    CLIP_SUFFIX,
    clip_activations,
    integer_threshold,
    profile_act_max,
    read_metadata,
    relu_layers,
    with_metadata,
)
from host.models import resolve_model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _relu_graph(qdq: tuple[float, int] | None = None, final_relu: bool = False) -> onnx.ModelProto:
    """x [N, 6] -> Relu ("act") [-> QuantizeLinear -> DequantizeLinear] -> Identity -> y."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="act")]
    inits = []
    last = "r"
    if qdq is not None:
        scale, zp = qdq
        inits = [numpy_helper.from_array(np.array(scale, np.float32), "s"),
                 numpy_helper.from_array(np.array(zp, np.int8), "z")]
        nodes += [helper.make_node("QuantizeLinear", ["r", "s", "z"], ["q"], name="quant"),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dequant")]
        last = "d"
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    if final_relu:
        nodes.append(helper.make_node("Relu", ["y"], ["z_out"], name="logits_relu"))
    out = "z_out" if final_relu else "y"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         ["N", 6])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 6])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_hand_example_t_passes_t_plus_eps_and_negatives_give_zero():
    t = np.float32(2.0)
    eps_above = np.nextafter(t, np.float32(np.inf))
    x = np.array([[-1.0, 0.0, 1.5, t, eps_above, 5.0]], np.float32)
    clipped = clip_activations(_relu_graph(), {"act": 2.0})
    # f(x) = x for 0 <= x <= T, else 0 (above T gives 0, not T)
    np.testing.assert_array_equal(_run(clipped, x), [[0.0, 0.0, 1.5, 2.0, 0.0, 0.0]])
    assert read_metadata(clipped)["thresholds"] == {"act": 2.0}


def test_infinite_activations_become_zero_as_the_papers_otherwise_nan_as_the_form_states():
    x = np.array([[np.inf, np.nan, -np.inf, 1.0, 3.0, 0.5]], np.float32)
    clipped = clip_activations(_relu_graph(), {"act": 2.0})  # fused (default): NaN stays NaN
    np.testing.assert_array_equal(_run(clipped, x), [[0.0, np.nan, 0.0, 1.0, 0.0, 0.5]])
    where = clip_activations(_relu_graph(), {"act": 2.0}, form="where")  # NaN gives 0
    np.testing.assert_array_equal(_run(where, x), [[0.0, 0.0, 0.0, 1.0, 0.0, 0.5]])


def test_the_logits_are_never_clipped():
    model = _relu_graph(final_relu=True)
    assert [r.relu for r in relu_layers(model)] == ["act"]
    with pytest.raises(FlipLabError, match="no ReLU-activated layer named 'logits_relu'"):
        clip_activations(model, {"logits_relu": 1.0})


def test_bad_thresholds_and_reclipping_are_refused():
    with pytest.raises(FlipLabError, match=">= 0"):
        clip_activations(_relu_graph(), {"act": -1.0})
    with pytest.raises(FlipLabError, match=">= 0"):
        clip_activations(_relu_graph(), {"act": float("nan")})
    with pytest.raises(FlipLabError, match="already clipped"):
        clip_activations(clip_activations(_relu_graph(), {"act": 1.0}), {"act": 2.0})


def test_the_pass_does_not_modify_its_input():
    model = _relu_graph()
    before = model.SerializeToString()
    clip_activations(model, {"act": 1.0})
    assert model.SerializeToString() == before


@pytest.fixture(scope="module")
def digits_cnn():
    model = onnx.load(resolve_model("digits_cnn"))
    x, y = load_dataset("digits", input_shape=["N", 1, 8, 8])
    return model, x, y


def test_infinite_threshold_reproduces_the_logits_exactly(digits_cnn):
    model, x, _ = digits_cnn
    clipped = clip_activations(model, {r.layer: float("inf") for r in relu_layers(model)})
    np.testing.assert_array_equal(_run(clipped, x), _run(model, x))


def test_act_max_is_the_largest_relu_output_and_clips_no_profiled_prediction(digits_cnn):
    model, x, _ = digits_cnn
    act_max = profile_act_max(model, x[:200], batch=64)  # several batches
    assert list(act_max) == ["conv1", "conv2"]
    # independent truth: the ReLU outputs as graph outputs, all samples at once, numpy max
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend([helper.make_empty_tensor_value_info("conv1.relu"),
                               helper.make_empty_tensor_value_info("conv2.relu")])
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(["conv1.relu", "conv2.relu"], {"input": x[:200]})
    assert act_max == {"conv1": float(outs[0].max()), "conv2": float(outs[1].max())}
    clipped = clip_activations(model, act_max)
    before, after = _run(model, x[:200]), _run(clipped, x[:200])
    np.testing.assert_array_equal(after.argmax(1), before.argmax(1))
    # a threshold below ACT_max does cut activations: some logit changes
    lower = clip_activations(model, {k: v / 4 for k, v in act_max.items()})
    assert not np.array_equal(_run(lower, x[:200]), before)


def test_selected_layers_only(digits_cnn):
    model, x, _ = digits_cnn
    clipped = clip_activations(model, {"conv2": 0.5})
    assert [n.name for n in clipped.graph.node if n.name.endswith(CLIP_SUFFIX)] == \
        ["conv2.relu" + CLIP_SUFFIX]
    assert read_metadata(clipped)["thresholds"] == {"conv2": 0.5}


def test_metadata_round_trip_keeps_other_entries():
    model = _relu_graph()
    model.metadata_props.append(onnx.StringStringEntryProto(key="author", value="me"))
    out = with_metadata(model, act_max={"act": 3.5}, profile={"samples": 10})
    out = with_metadata(out, act_max={"act": 4.0})
    assert read_metadata(out) == {"act_max": {"act": 4.0}, "profile": {"samples": 10}}
    assert {p.key: p.value for p in out.metadata_props}["author"] == "me"


@pytest.mark.parametrize("scale,zp", [(0.05, 0), (0.1, -128), (0.03, -20)])
def test_qdq_clip_equals_the_accelerator_clipped_relu_element_for_element(scale, zp):
    t = 1.2345
    t_int = integer_threshold(t, scale, zp, 127)
    assert t_int == min(int(np.floor(t / scale)), 127 - zp)  # T_int = floor(T / s_y)
    levels = np.arange(-128 - zp, 128 - zp)  # every value y_q - z of the int8 grid
    x = np.concatenate([levels, levels + 0.3, levels - 0.3]) * np.float32(scale)
    x = x.astype(np.float32).reshape(-1, 6)
    clipped = clip_activations(_relu_graph((scale, zp)), {"act": t})
    out = _run(clipped, x)
    # the accelerator: a = quantised ReLU output - zero point, then clipped_relu(a, T_int)
    plain = _run(_relu_graph((scale, zp)), x)
    a = np.rint(plain / np.float32(scale)).astype(np.int64)
    assert np.array_equal(plain, (a * np.float32(scale)).astype(np.float32))
    expected = clipped_relu(a, t_int) * np.float32(scale)
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    assert np.any(a > t_int) and np.any((a > 0) & (a <= t_int))


# ------------------------------------------------------------------ Algorithm 1 (seed 003)

from host.mitigation.search import threshold_search  # noqa: E402


def _bell(peak: float):
    calls = []

    def auc_of(t: float) -> float:
        calls.append(t)
        return 1.0 - (t - peak) ** 2 / 100.0

    return auc_of, calls


def test_algorithm_1_hand_worked_returns_the_last_interval_search_t():
    # ACT_max 9, peak 5. Round 1: T = 0, 3, 6, 9 -> best index 3 (T = 6): S = [3, 9], T = 6.
    # Round 2: T = 3, 5, 7, 9 -> best index 2 (T = 5). With N = 3 the loop ends here and,
    # as the paper writes it, returns the T of the last Interval_Search: 6, not 5.
    auc_of, calls = _bell(5.0)
    found = threshold_search(auc_of, 9.0, n=3, m=2, delta=0.0)
    assert [r.thresholds for r in found.rounds] == [(0, 3, 6, 9), (3, 5, 7, 9)]
    assert found.t == 6.0 and found.stopped == "N"
    assert sorted(calls) == [0, 3, 5, 6, 7, 9]
    assert found.evaluations == 6  # 4 + 2: T = 3 and T = 9 are not evaluated again
    # one more round: Interval_Search on round 2 gives T = 5
    assert threshold_search(_bell(5.0)[0], 9.0, n=4, m=2, delta=0.0).t == 5.0


def test_algorithm_1_interval_shrinks_by_two_thirds_in_the_middle_branch():
    found = threshold_search(_bell(4.4)[0], 9.0, n=7, m=2, delta=0.0)
    widths = [r.interval[1] - r.interval[0] for r in found.rounds]
    for before, after, r in zip(widths, widths[1:], found.rounds):
        best = max(range(4), key=lambda i: (r.aucs[i], i))
        assert best in (1, 2)  # the peak stays inside: the middle branch every round
        assert after == pytest.approx(before * 2 / 3)
    assert found.evaluations == 4 + 2 * (len(found.rounds) - 1)
    assert abs(found.t - 4.4) < 9.0 * (2 / 3) ** (len(found.rounds) - 1)


@pytest.mark.parametrize("peak,edge", [(0.0, (0, 1)), (50.0, (2, 3))])
def test_algorithm_1_edge_branches_keep_one_third(peak, edge):
    # peak at 0: index 1 every round, S = [T1, T2]; increasing curve: index 4, S = [T3, T4]
    found = threshold_search(_bell(peak)[0], 9.0, n=5, m=2, delta=0.0)
    for r, nxt in zip(found.rounds, found.rounds[1:]):
        assert nxt.interval == (r.thresholds[edge[0]], r.thresholds[edge[1]])
        width = r.interval[1] - r.interval[0]
        assert nxt.interval[1] - nxt.interval[0] == pytest.approx(width / 3)
    assert found.t == (0.0 if peak == 0 else 9.0)


def test_algorithm_1_ties_go_to_the_highest_threshold():
    plateau = lambda t: 1.0 if t >= 3 else t / 3  # noqa: E731  flat from T = 3 up
    found = threshold_search(plateau, 9.0, n=3, m=2, delta=0.0)
    # round 1: T = 0, 3, 6, 9 -> AUC 0, 1, 1, 1: the tie goes to T = 9 -> S = [6, 9]
    assert found.rounds[1].interval == (6.0, 9.0) and found.t == 9.0


def test_algorithm_1_stopping_rules():
    flat = lambda t: 0.5  # noqa: E731  every delta is 0
    # delta rule: stops as soon as counter >= M (counter is 2 after the first round)
    assert len(threshold_search(flat, 9.0, n=10, m=2, delta=0.01).rounds) == 1
    found = threshold_search(flat, 9.0, n=10, m=4, delta=0.01)
    assert len(found.rounds) == 3 and found.stopped == "delta" and found.evaluations == 8
    # N rule: the loop runs while counter < N, i.e. N - 1 rounds
    found = threshold_search(_bell(4.4)[0], 9.0, n=5, m=2, delta=0.0)
    assert len(found.rounds) == 4 and found.stopped == "N" and found.evaluations == 10
    with pytest.raises(FlipLabError):
        threshold_search(flat, 9.0, n=3, m=3)
    with pytest.raises(FlipLabError):
        threshold_search(flat, 0.0)


def test_relus_absorbed_by_quantizelinear_are_found_and_clipped_on_the_grid():
    # digits_mlp_int8: Gemm -> QuantizeLinear(zero point -128) -> DequantizeLinear is a ReLU
    model = onnx.load(resolve_model("digits_mlp_int8"))
    assert [(r.layer, r.relu) for r in relu_layers(model)] == [
        ("fc1", "fc1.relu_QuantizeLinear"), ("fc2", "fc2.relu_QuantizeLinear")]  # not logits
    x, _ = load_dataset("digits", input_shape=["N", 64])
    act_max = profile_act_max(model, x)
    # ACT_max is a grid value: T_int keeps it (a plain float floor(T / s) may land one low)
    clipped = clip_activations(model, act_max)
    np.testing.assert_array_equal(_run(clipped, x), _run(model, x))


def test_search_objective_with_reuse_equals_the_naive_whole_model_run(tmp_path):
    # the prefix computed once and the patterns drawn once give the naive search's numbers
    from host.mitigation.tune import LayerObjective, TuneSettings

    model = onnx.load(resolve_model("digits_cnn"))
    x, y = load_dataset("digits", input_shape=["N", 1, 8, 8], samples=80)
    act_max = profile_act_max(model, x)
    tune = TuneSettings(rates="1e-3,1e-2", trials=2, seed=4)
    fast = LayerObjective(model, act_max, "conv2", x, y, tune, tmp_path)
    naive = LayerObjective(model, act_max, "conv2", x, y, tune, tmp_path, reuse=False)
    assert fast.split and not naive.split
    for t in (act_max["conv2"] / 3, act_max["conv2"]):
        assert fast.curve(t) == naive.curve(t)
    curve = fast.curve(act_max["conv2"])
    assert list(curve) == [0.0, 1e-3, 1e-2] and [len(v) for v in curve.values()] == [1, 2, 2]


@pytest.mark.parametrize("form", ["fused", "where"])
def test_objective_clean_point_is_the_clipped_models_own_accuracy(tmp_path, form):
    # independent truth: the candidate model run whole in onnxruntime, no FlipLab in between
    # (the fused form's correction holds T in a Conv's weight and bias: were they taken for
    # weights, every candidate would run with the ACT_max model's T)
    from host.mitigation.tune import LayerObjective, TuneSettings

    model = onnx.load(resolve_model("digits_cnn"))
    x, y = load_dataset("digits", input_shape=["N", 1, 8, 8], samples=200)
    act_max = profile_act_max(model, x)
    tune = TuneSettings(rates="1e-3", trials=1, seed=4)
    objective = LayerObjective(model, act_max, "conv1", x, y, tune, tmp_path, form=form)
    for t in (act_max["conv1"] / 3, act_max["conv1"]):
        own = _run(clip_activations(model, {**act_max, "conv1": t}, form=form), x)
        assert objective.curve(t)[0.0] == [float((own.argmax(1) == y).mean())]


def test_the_clips_constants_are_not_weights_of_the_model(tmp_path):
    from host.model import load_model

    model = onnx.load(resolve_model("digits_cnn"))
    path = tmp_path / "c.onnx"
    onnx.save(clip_activations(model, {"conv1": 1.0, "conv2": 2.0}), path)
    assert [t.name for t in load_model(path).tensors] == \
        [t.name for t in load_model(resolve_model("digits_cnn")).tensors]


def test_a_float16_model_is_profiled_clipped_and_tuned_in_float16(tmp_path):
    # the data reaches the model in its input type; the clip compares as float32 (what
    # onnxruntime's CPU provider computes a float16 graph in) and writes float16 zeros
    from host.data import DataSpec
    from host.mitigation.tune import ClipSettings, TuneSettings, clip_model
    from tests.host.activations.helpers import as_float16

    path = tmp_path / "half.onnx"
    onnx.save(as_float16(onnx.load(resolve_model("digits_mlp"))), path)
    settings = ClipSettings(DataSpec("digits", None, None), profile_samples=200)
    result = clip_model(path, tmp_path / "clipped.onnx", settings)
    clipped = onnx.load(tmp_path / "clipped.onnx")
    types = {t.name: t.data_type for t in clipped.graph.initializer}
    assert {types["fc1.relu/T"], types["fc1.relu/zero"]} == {TensorProto.FLOAT,
                                                            TensorProto.FLOAT16}
    x, _ = load_dataset("digits", input_shape=["N", 64], samples=200)
    x = x.astype(np.float16)
    # T = ACT_max: no profiled activation is above T, so every output is the original's
    np.testing.assert_array_equal(_run(clipped, x), _run(onnx.load(path), x))
    assert [r["layer"] for r in result["layers"]] == ["fc1", "fc2"]
    tuned = clip_model(path, tmp_path / "tuned.onnx", settings,
                       TuneSettings(codec="float16", rates="1e-3", trials=1, n=2, m=1))
    assert all(r["t"] > 0 for r in tuned["layers"])
