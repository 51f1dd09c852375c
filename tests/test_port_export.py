"""The exports against Keras: every ONNX node run in onnxruntime, the safetensors file read back.

One Keras model holds BN layers of every shape the exports must handle: after a Conv2D (4-D,
one channel with a variance near epsilon), after a Dense with ``center=False``, after a Conv1D
with ``scale=False`` and epsilon 1e-5, one with neither gamma nor beta, and one inside a
nested Sequential (its path has a slash).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bntui.cli.main import main
from bntui.core.numerics import term_scaled_ulp

pytestmark = pytest.mark.tensorflow

#: Layer path -> (Keras input shape without batch, its path in PyTorch/ONNX names).
LAYERS = {
    "bn4d": ((5, 5, 4), "bn4d"),
    "bn_no_center": ((6,), "bn_no_center"),
    "bn_no_scale": ((7, 3), "bn_no_scale"),
    "bn_plain": ((6,), "bn_plain"),
    "inner/bn_inner": ((6,), "inner.bn_inner"),
}

#: onnxruntime against Keras, both float32. Keras computes x·s + (beta − mean·s) with
#: s = rsqrt(var + eps)·gamma; onnxruntime's kernel the same folded form. Each side rounds
#: s (rsqrt: up to 1 ulp, then ·gamma: 0.5), x·s, mean·s, the subtraction and the sum
#: (0.5 each): at most about 3.5 ulps of the largest term per side, so the two differ by at
#: most 7 ulps at that term (term-scaled, bntui's one ulp). 8 leaves that room.
ONNX_ULP = 8.0


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras = _keras()
    layers = keras.layers
    img, vec, seq = keras.Input((7, 7, 3)), keras.Input((6,)), keras.Input((7, 3))
    inner = keras.Sequential([keras.Input((6,)), layers.BatchNormalization(name="bn_inner")], name="inner")
    outputs = [
        layers.BatchNormalization(name="bn4d")(layers.Conv2D(4, 3)(img)),
        layers.BatchNormalization(center=False, name="bn_no_center")(layers.Dense(6)(vec)),
        layers.BatchNormalization(scale=False, epsilon=1e-5, name="bn_no_scale")(layers.Conv1D(3, 1)(seq)),
        layers.BatchNormalization(center=False, scale=False, name="bn_plain")(vec),
        inner(vec),
    ]
    model = keras.Model([img, vec, seq], outputs)
    rng = np.random.default_rng(11)
    for bn in [*(layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)),
               inner.get_layer("bn_inner")]:
        weights = bn.get_weights()
        channels = weights[0].shape[0]
        values = {"gamma": rng.uniform(0.5, 2, channels), "beta": rng.normal(0, 1, channels),
                  "moving_mean": rng.normal(0, 1, channels), "moving_variance": rng.uniform(0.1, 3, channels)}
        if bn.name == "bn4d":
            values["moving_variance"][2] = 2e-3  # comparable to epsilon: the channel that breaks
        names = [w.path.split("/")[-1] for w in bn.weights]
        bn.set_weights([values[name] for name in names])
    path = tmp_path_factory.mktemp("port") / "port.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def exported(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exports")
    paths = {"torch": folder / "bn.safetensors", "onnx": folder / "bn.onnx"}
    assert main([str(model_file), "--export-torch", str(paths["torch"]), "--export-onnx", str(paths["onnx"])]) == 0
    return paths


def _keras_layer(model: Any, path: str) -> Any:
    names = path.split("/")
    layer = model.get_layer(names[0])
    for name in names[1:]:
        layer = layer.get_layer(name)
    return layer


def test_every_onnx_node_matches_keras_in_onnxruntime(model_file: Path, exported: dict[str, Path]) -> None:
    import onnxruntime

    model = _keras().saving.load_model(model_file)
    session = onnxruntime.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(12)
    inputs = {path: rng.normal(0, 2, (3, *shape)).astype(np.float32) for path, (shape, _) in LAYERS.items()}
    # The graph's inputs are all required: one run computes every layer.
    feed = {f"{prefix}.X": np.ascontiguousarray(np.moveaxis(inputs[path], -1, 1)) for path, (_, prefix) in LAYERS.items()}
    outputs = dict(zip(LAYERS, session.run([f"{prefix}.Y" for _, prefix in LAYERS.values()], feed)))
    for path, x in inputs.items():
        bn = _keras_layer(model, path)
        expected = np.asarray(bn(x, training=False))
        got = np.moveaxis(outputs[path], 1, -1)
        weights = {w.path.split("/")[-1]: w.numpy().astype(np.float64) for w in bn.weights}
        s = weights.get("gamma", 1.0) / np.sqrt(weights["moving_variance"] + bn.epsilon)
        terms = np.maximum.reduce([np.abs(x * s), np.abs(weights["moving_mean"] * s) + 0 * x,
                                   np.abs(weights.get("beta", 0.0)) + 0 * x])
        ulps = term_scaled_ulp(got, expected, terms)
        assert ulps.max() <= ONNX_ULP, (path, ulps.max())


def test_safetensors_read_back_equal_the_models_weights(model_file: Path, exported: dict[str, Path]) -> None:
    from safetensors.numpy import load_file

    model = _keras().saving.load_model(model_file)
    tensors = load_file(str(exported["torch"]))
    sidecar = json.loads(Path(str(exported["torch"]) + ".json").read_text())
    expected_keys = set()
    for path, (_, prefix) in LAYERS.items():
        bn = _keras_layer(model, path)
        weights = {w.path.split("/")[-1]: w.numpy() for w in bn.weights}
        torch_names = {"running_mean": "moving_mean", "running_var": "moving_variance"}
        if bn.center or bn.scale:
            torch_names |= {"weight": "gamma", "bias": "beta"}
        for torch_name, keras_name in torch_names.items():
            key = f"{prefix}.{torch_name}"
            expected_keys.add(key)
            default = np.ones if keras_name == "gamma" else np.zeros
            np.testing.assert_array_equal(tensors[key], weights.get(keras_name, default(bn.weights[-1].shape)))
        expected_keys.add(f"{prefix}.num_batches_tracked")
        settings = sidecar["layers"][prefix]
        assert settings["eps"] == pytest.approx(bn.epsilon, rel=1e-15) and settings["affine"] == (bn.center or bn.scale)
        assert settings["momentum"] == pytest.approx(1 - bn.momentum, rel=1e-12)
    assert set(tensors) == expected_keys
    assert not tensors["bn_no_center.bias"].any()  # affine PyTorch needs a bias: zeros
    for key, digest in sidecar["sha256"].items():
        assert hashlib.sha256(np.ascontiguousarray(tensors[key]).tobytes()).hexdigest() == digest


def test_port_text_names_the_channel_near_epsilon(model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(model_file), "--port", "--layer", "bn4d", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["layers"][0]
    assert data["pytorch"]["module"] == "torch.nn.BatchNorm2d"
    assert data["epsilon_sensitivity"]["worst_channels"][0] == 2
