"""Every value bntui reads from a sample equals what Keras itself loads from that file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES

from bntui.core import open_model

#: Weights-only files, with the full model whose architecture Keras needs to load them.
WEIGHTS_ONLY = {"nested.weights.h5": "nested.keras", "keras2_nested_weights.h5": "keras2_nested.h5"}


def _custom_objects() -> dict[str, object]:
    """The custom layer of custom_layer.*, defined here as its user would have it installed."""
    import keras

    class LearnedScale(keras.layers.Layer):
        def build(self, input_shape):  # type: ignore[no-untyped-def]
            self.factor = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="factor")

        def call(self, inputs):  # type: ignore[no-untyped-def]
            return inputs * self.factor

    return {"bntui_samples>LearnedScale": LearnedScale, "LearnedScale": LearnedScale}


def _load_with_keras(path: Path):  # type: ignore[no-untyped-def]
    if path.name.startswith("keras2_"):
        tf_keras = pytest.importorskip("tf_keras", reason="tf-keras is installed by the README's test command")
        architecture = SAMPLES / WEIGHTS_ONLY.get(path.name, path.name)
        model = tf_keras.models.load_model(architecture, compile=False)
    else:
        import keras

        architecture = SAMPLES / WEIGHTS_ONLY.get(path.name, path.name)
        model = keras.models.load_model(architecture, compile=False, safe_mode=True, custom_objects=_custom_objects())
    if path.name in WEIGHTS_ONLY:
        model.load_weights(path)
    return model


def _keras_layer(model, path: str):  # type: ignore[no-untyped-def]
    layer = model
    for part in path.split("/"):
        layer = layer.get_layer(part)
    return layer


def test_every_value_equals_keras_get_weights(sample_file: Path) -> None:
    info = open_model(sample_file)
    assert info.layers, f"{sample_file.name} should hold BN layers"
    model = _load_with_keras(sample_file)
    for layer in info.layers:
        keras_layer = _keras_layer(model, layer.path)
        assert type(keras_layer).__name__ == "BatchNormalization"
        names = [w.name.split("/")[-1].split(":")[0] for w in keras_layer.weights]
        weights = dict(zip(names, keras_layer.get_weights()))
        for role in ("gamma", "beta", "moving_mean", "moving_variance"):
            ours = getattr(layer, role)
            if role not in weights:
                assert ours is None, f"{layer.path}: {role} should be absent"
                continue
            np.testing.assert_array_equal(ours, weights[role], err_msg=f"{sample_file.name} {layer.path} {role}")
        if not layer.assumed:
            config = keras_layer.get_config()
            assert layer.epsilon == config["epsilon"]
            assert layer.center == config["center"] and layer.scale == config["scale"]
            axis = config["axis"]
            assert layer.axis == (axis[0] if isinstance(axis, list) else axis)


def test_paths_are_unique_and_nested(sample_file: Path) -> None:
    paths = [layer.path for layer in open_model(sample_file).layers]
    assert len(paths) == len(set(paths))


def test_nested_sample_has_same_named_layers_in_two_submodels() -> None:
    for name in ("nested.h5", "nested.keras", "nested.weights.h5"):
        paths = {layer.path for layer in open_model(SAMPLES / name).layers}
        assert {"encoder/bn_1", "decoder/bn_1", "decoder/head/bn_head", "top_bn"} == paths


def test_weights_only_marks_settings_assumed() -> None:
    for name in WEIGHTS_ONLY:
        for layer in open_model(SAMPLES / name).layers:
            assert {"axis", "epsilon", "momentum"} <= set(layer.assumed)
            assert layer.sources["epsilon"] == "default"


def test_custom_layer_model_lists_its_bn_without_the_class() -> None:
    import subprocess
    import sys

    from conftest import ROOT

    for name in ("custom_layer.keras", "custom_layer.h5"):
        # a fresh process where the custom class was never defined
        code = f"from bntui.core import open_model; print([l.path for l in open_model({str(SAMPLES / name)!r}).layers])"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        assert out.stdout.strip() == "['bn_after_custom']"
        assert open_model(SAMPLES / name).layers[0].inbound == "learned_scale"
