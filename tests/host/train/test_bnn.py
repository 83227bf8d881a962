"""Flip-regularised BNN training of seed 004 (the train extra): eq. 1's gradients, E_p's flip
rate, eq. 7's hinge, checkpoints and the export FlipLab reads back."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional train extra (pip install -e .[train])")

import onnxruntime as ort  # noqa: E402
from scipy.stats import binom  # noqa: E402

from host.cli import main  # noqa: E402
from host.errors import FlipLabError  # noqa: E402
from host.train.bnn import (  # noqa: E402
    BNN,
    FlipSTE,
    TrainConfig,
    apply_flip,
    flip_mask,
    hinge,
    load_split,
    to_onnx,
    train,
)


def _grad(mask, gradient, b, g):
    b = b.clone().requires_grad_(True)
    (apply_flip(b, mask, gradient) * g).sum().backward()
    return b.grad


def test_ste_gradient_does_not_depend_on_the_mask_naive_is_mask_times_it():
    gen = torch.Generator().manual_seed(0)
    b = torch.where(torch.rand(50, 30, generator=gen) < 0.5, -1.0, 1.0)
    g = torch.randn(50, 30, generator=gen)
    m1, m2 = flip_mask(b.shape, 0.3, gen), flip_mask(b.shape, 0.3, gen)
    assert not torch.equal(m1, m2)
    ste1, ste2 = _grad(m1, "ste", b, g), _grad(m2, "ste", b, g)
    torch.testing.assert_close(ste1, g, rtol=0, atol=0)           # passes unchanged (eq. 1)
    torch.testing.assert_close(ste2, g, rtol=0, atol=0)
    torch.testing.assert_close(_grad(m1, "naive", b, g), m1 * ste1, rtol=0, atol=0)
    # both forward passes are E_p(b) = b * mask
    torch.testing.assert_close(FlipSTE.apply(b, m1), b * m1)
    with pytest.raises(FlipLabError):
        apply_flip(b, m1, "other")


def test_flip_fraction_per_forward_is_binomial_and_fresh():
    torch.manual_seed(1)
    p = 0.1
    model = BNN("fcnn", (100,), width=100)
    model.set_flip(p)
    model.train()
    layer = model.linears[1]                          # 100 x 100 weights
    n = layer.weight.numel()
    lo, hi = binom.ppf(0.0005, n, p), binom.ppf(0.9995, n, p)
    x = torch.rand(8, 100)
    masks = []
    for _ in range(20):
        model(x)
        flips = int((layer.last_mask == -1).sum())
        assert lo <= flips <= hi
        masks.append(layer.last_mask.clone())
    assert all(not torch.equal(masks[0], m) for m in masks[1:])   # a fresh mask per forward
    model.eval()
    torch.testing.assert_close(model(x), model(x))                # no flips in eval mode


def test_hinge_is_zero_where_t_reaches_b_and_hand_value_otherwise():
    assert float(hinge([torch.tensor([64.0, 70.5]), torch.tensor([[100.0]])], 64)) == 0.0
    # mean(max(0, 2 - [0, 1, 5])) = (2 + 1 + 0) / 3
    assert float(hinge([torch.tensor([0.0, 1.0, 5.0])], 2)) == pytest.approx(1.0)


def test_margins_in_eval_mode_are_the_tolerance_distance():
    """|h - c| from BatchNorm's formula equals |h - c| computed from h and c directly."""
    torch.manual_seed(2)
    model = BNN("fcnn", (20,), width=12)
    for norm in model.norms:
        norm.running_mean.uniform_(-3, 3)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.data.uniform_(-2, 2)
        norm.bias.data.uniform_(-1, 1)
    model.eval()
    margins: list = []
    x = torch.rand(5, 20)
    model(x, margins)
    xb = torch.where(x >= 0.5, 1.0, -1.0)
    lin, norm = model.linears[0], model.norms[0]
    h = xb @ torch.where(lin.weight >= 0, 1.0, -1.0).t()
    sigma = torch.sqrt(norm.running_var + norm.eps)
    c = norm.running_mean - norm.bias * sigma / norm.weight
    torch.testing.assert_close(margins[0], (h - c).abs(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("arch", ["fcnn", "cnn"])
def test_export_predicts_like_torch_eval(arch):
    config = TrainConfig(arch=arch, epochs=1, width=16, channels=4, batch=64, lr=1e-2,
                         samples=128, flip_p=0.1, lam=1e-3, b=4)
    model, _ = train(config, progress=False)
    x, _ = load_split(config, "test", 200)
    with torch.no_grad():
        want = model(x).argmax(1).numpy()
    onnx_model = to_onnx(model)
    got = ort.InferenceSession(onnx_model.SerializeToString()).run(None, {"input": x.numpy()})[0]
    np.testing.assert_array_equal(got.argmax(1), want)


def test_cli_trains_resumes_and_the_accelerator_runs_it(tmp_path, capsys):
    out = tmp_path / "bnn.onnx"
    args = ["train-bnn", "--epochs", "1", "--width", "16", "--batch", "64", "--lr", "0.01",
            "--samples", "256", "--flip-p", "0.1", "-o", str(out), "--json"]
    assert main(args) == 0
    capsys.readouterr()
    # resuming to 2 epochs gives the weights of an uninterrupted 2-epoch run
    assert main(args[:2] + ["2"] + args[3:]) == 0
    config = TrainConfig(epochs=2, width=16, batch=64, lr=1e-2, samples=256, flip_p=0.1)
    straight, _ = train(config, progress=False)
    assert out.read_bytes() == to_onnx(straight, out_doc(config)).SerializeToString()
    # the checkpoint refuses other settings
    assert main(args[:-3] + ["--lam", "0.5", "-o", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err
    # FlipLab reads it back with the sign codec and the accelerator's lowering
    image = tmp_path / "bnn.img"
    assert main(["export", str(out), "--lower", "accel", "-o", str(image)]) == 0
    capsys.readouterr()
    x, y = load_split(config, "test", 100)
    with torch.no_grad():
        torch_acc = float((straight(x).argmax(1) == y).float().mean())
    for backend in ("onnxruntime", "reference"):
        assert main(["eval", "--image", str(image), "--samples", "100", "--backend", backend,
                     "--json"]) == 0
        import json
        assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(torch_acc)


def out_doc(config: TrainConfig) -> str:
    import json
    from dataclasses import asdict
    return "seed 004 flip-regularised BNN: " + json.dumps(asdict(config))


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    for extra in (["--flip-p", "0.7"], ["--arch", "cnn", "--data", "nope.npz"]):
        assert main(["train-bnn", "--epochs", "1", "-o", str(tmp_path / "m.onnx"), *extra]) == 2
        assert capsys.readouterr().err.startswith("host: error:")
    assert not (tmp_path / "m.onnx").exists()
