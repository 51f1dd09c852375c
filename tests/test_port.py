"""The port view against PyTorch's documented semantics, written out here.

PyTorch itself is not installed in CI (its Linux wheel brings several GB of CUDA libraries),
so the formulas of ``torch.nn.BatchNorm{1,2,3}d``'s documentation stand in for it:

- inference: ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias``,
  with ``weight = 1, bias = 0`` when ``affine=False``;
- running update: ``running = (1 - momentum) * running + momentum * batch_statistic``,
  the variance unbiased (divide by n - 1);
- inputs ``(N, C)`` / ``(N, C, L)`` for BatchNorm1d, ``(N, C, H, W)`` for 2d, ``(N, C, D, H, W)`` for 3d.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED
from test_steps import make_layer

from bntui.cli.main import main
from bntui.core.analysis.port import LayerPort, epsilon_shift
from bntui.core.model import BNLayer


def torch_inference(x: np.ndarray, state: dict[str, np.ndarray], eps: float) -> np.ndarray:
    """PyTorch's documented inference formula, channels on axis 1."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    weight = state.get("weight", np.ones_like(state["running_mean"])).astype(np.float64).reshape(shape)
    bias = state.get("bias", np.zeros_like(state["running_mean"])).astype(np.float64).reshape(shape)
    mean = state["running_mean"].astype(np.float64).reshape(shape)
    var = state["running_var"].astype(np.float64).reshape(shape)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def keras_inference(x: np.ndarray, layer: BNLayer) -> np.ndarray:
    """Keras' formula, channels last."""
    gamma = layer.gamma.astype(np.float64) if layer.gamma is not None else 1.0
    beta = layer.beta.astype(np.float64) if layer.beta is not None else 0.0
    return gamma * (x - layer.moving_mean.astype(np.float64)) / np.sqrt(layer.moving_variance.astype(np.float64) + layer.epsilon) + beta


@pytest.mark.parametrize(("center", "scale"), [(True, True), (False, True), (True, False), (False, False)])
def test_state_dict_and_module_give_keras_outputs_in_pytorch(center: bool, scale: bool) -> None:
    layer = make_layer(5, -1, np.random.default_rng(2), center=center, scale=scale)
    port = LayerPort(layer, input_rank=4)
    data = port.to_dict()["pytorch"]
    assert data["module"] == "torch.nn.BatchNorm2d" and data["num_features"] == 5
    assert data["affine"] == (center or scale)  # PyTorch has one switch for both
    state = port.torch_tensors()
    assert set(state) == ({"weight", "bias"} if center or scale else set()) | {"running_mean", "running_var", "num_batches_tracked"}
    assert data["state_dict"]["running_var"] == "moving_variance" and data["state_dict"]["running_mean"] == "moving_mean"
    if center or scale:
        assert data["state_dict"]["weight"] == ("gamma" if scale else "constant 1 (scale=False)")
        assert data["state_dict"]["bias"] == ("beta" if center else "constant 0 (center=False)")
    x_keras = np.random.default_rng(3).normal(0, 2, (2, 3, 4, 5))
    x_torch = np.transpose(x_keras, [int(a) for a in data["layout"]["how"].split("permute(")[1].split(")")[0].split(", ")])
    assert x_torch.shape == (2, 5, 3, 4)  # the permutation the layout names puts channels on axis 1
    got = np.moveaxis(torch_inference(x_torch, state, data["eps"]), 1, -1)
    np.testing.assert_allclose(got, keras_inference(x_keras, layer), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize(("rank", "module"), [(2, "BatchNorm1d"), (3, "BatchNorm1d"), (4, "BatchNorm2d"),
                                              (5, "BatchNorm3d"), (None, None)])
def test_module_follows_the_input_rank(rank: int | None, module: str | None) -> None:
    port = LayerPort(make_layer(3, -1, np.random.default_rng(0)), input_rank=rank)
    assert port.torch_module == (f"torch.nn.{module}" if module else None)
    assert (rank is None) == any("input rank unknown" in note for note in port.notes())


def test_momentum_runs_the_same_update_in_both_directions() -> None:
    layer = make_layer(3, -1, np.random.default_rng(4))
    port = LayerPort(layer, input_rank=2)
    running, batch = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.0, -3.0])
    keras_update = running * layer.momentum + batch * (1 - layer.momentum)  # Keras' moving average
    torch_update = (1 - port.torch_momentum) * running + port.torch_momentum * batch  # PyTorch's documented one
    np.testing.assert_allclose(torch_update, keras_update, rtol=1e-15)
    wrong = (1 - layer.momentum) * running + layer.momentum * batch  # Keras' number passed as is
    assert np.abs(wrong - keras_update).min() > 0.5
    assert port.to_dict()["onnx"]["momentum"] == layer.momentum  # ONNX goes Keras' way
    assert port.torch_momentum == 0.01
    assert "forget almost at once" in port.notes()[0]


def test_momentum_note_says_what_passing_keras_number_would_do() -> None:
    """At 0.5 the two conventions meet: no warning that contradicts itself; below it, passing
    Keras' number would make PyTorch's running statistics move too little, not forget."""
    from dataclasses import replace

    layer = make_layer(3, -1, np.random.default_rng(4))
    half = LayerPort(replace(layer, momentum=0.5), input_rank=2).notes()[0]
    assert "same number" in half and "forget" not in half
    low = LayerPort(replace(layer, momentum=0.1), input_rank=2).notes()[0]
    assert "hardly move" in low and "forget" not in low


def test_epsilon_shift_is_the_output_difference_at_three_sigma() -> None:
    layer = make_layer(4, -1, np.random.default_rng(5))
    variance = np.array([1.0, 2e-3, 1e-5, 4.0], dtype=np.float32)  # channel 2 comparable to 1e-5
    layer = BNLayer(**{**layer.__dict__, "moving_variance": variance})
    data = LayerPort(layer, input_rank=2).to_dict()["epsilon_sensitivity"]
    state = LayerPort(layer, input_rank=2).torch_tensors()
    shifts = []
    for sign in (-1.0, 1.0):
        x = (layer.moving_mean.astype(np.float64) + sign * 3 * np.sqrt(variance.astype(np.float64)))[None, :]
        shifts.append(np.abs(keras_inference(x, layer) - torch_inference(x, state, 1e-5))[0])
    expected = np.maximum(*shifts)
    np.testing.assert_allclose(data["output_shift"], expected, rtol=1e-9)
    assert data["max_output_shift"] == pytest.approx(expected.max(), rel=1e-9)
    assert data["worst_channels"][0] == int(np.argmax(expected))
    assert data["target_epsilon"] == 1e-5


def test_same_epsilon_means_no_shift_and_no_worst_channels() -> None:
    layer = make_layer(3, -1, np.random.default_rng(6), epsilon=1e-5)
    assert not epsilon_shift(layer).any()
    assert LayerPort(layer, 2).to_dict()["epsilon_sensitivity"]["worst_channels"] == []


def test_channels_first_layout_does_not_move() -> None:
    layout = LayerPort(make_layer(3, 1, np.random.default_rng(0)), input_rank=4).layout()
    assert layout["moves"] is False and layout["torch_axis"] == 1


def test_cli_port_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SEED), "--port", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (layer,) = data["layers"]
    assert set(layer) >= {"path", "pytorch", "onnx", "folded", "epsilon_sensitivity", "notes"}
    assert set(layer["pytorch"]) >= {"module", "num_features", "eps", "momentum", "affine", "state_dict", "layout"}
    assert set(layer["pytorch"]["state_dict"]) >= {"weight", "bias", "running_mean", "running_var"}
    assert layer["onnx"]["inputs_opset13"][3:] == ["mean", "var"]
    assert layer["onnx"]["inputs_opset14"][3:] == ["input_mean", "input_var"]
    # The seed layer's folded float32 form, as TensorFlow computes it (README: 0.71096909 for x = 1).
    assert np.float32(1) * np.float32(layer["folded"]["scale"][0]) + np.float32(layer["folded"]["offset"][0]) == np.float32(0.71096909)


def test_cli_port_usage_errors(tmp_path: Path) -> None:
    existing = tmp_path / "there.onnx"
    existing.write_bytes(b"")
    for argv in (["--port", "--input", "1"], ["--export-onnx", str(existing)], ["--export-torch", str(tmp_path / "x.pt")],
                 ["--export-onnx", str(tmp_path / "missing" / "x.onnx")], ["--port", "--fold"]):
        with pytest.raises(SystemExit) as exc:
            main([str(SEED), *argv])
        assert exc.value.code == 2
    assert existing.read_bytes() == b""


def test_a_missing_export_package_is_one_line_saying_how_to_install_it() -> None:
    from bntui.core.errors import BntuiError
    from bntui.core.export_torch import import_writer

    with pytest.raises(BntuiError, match=r"pip install no-such-writer \(or pip install 'bntui\[port\]'"):
        import_writer("bntui_no_such_writer_module", "no-such-writer")
