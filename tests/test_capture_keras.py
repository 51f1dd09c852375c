"""Capture on real Keras files: a whole shape for long inputs, clean one-line errors, and the
tf_keras fallback that loads only what passed the JSON safety check (or anything with --unsafe)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT

from bntui import tf_bridge
from bntui.tf_bridge.capturing import capture

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def long_input_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """A Keras 3 sequence model that needs at least 64 steps (a valid Conv1D of width 64)."""
    import keras

    inputs = keras.Input((None, 4), name="signal")
    conv = keras.layers.Conv1D(6, 64, name="conv")(inputs)
    outputs = keras.layers.BatchNormalization(name="bn")(conv)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(0, 1, 6), rng.normal(0, 1, 6), rng.uniform(0.5, 2, 6)])
    path = tmp_path_factory.mktemp("capture_long") / "long.keras"
    model.save(path)
    return path, keras.Model(inputs, [conv, outputs]), model


def test_a_whole_shape_reaches_a_model_that_needs_long_inputs(long_input_model: tuple[Path, Any, Any]) -> None:
    path, reference, _ = long_input_model
    captured = capture(path, "bn", "normal:3:1x300x4")
    # The spec's data, written out independently: numpy's standard normal, float32, seed 3.
    x = np.random.default_rng(3).standard_normal((1, 300, 4), dtype=np.float32)
    np.testing.assert_array_equal(captured.model_input, x)
    conv, out = (np.asarray(t) for t in reference(x, training=False))
    np.testing.assert_array_equal(captured.layer_input, conv.astype(np.float64))
    np.testing.assert_array_equal(captured.layer_output, out)


def test_without_a_shape_the_error_names_the_input_shape_in_one_clean_line(
        long_input_model: tuple[Path, Any, Any]) -> None:
    path = long_input_model[0]
    with pytest.raises(tf_bridge.CaptureUnavailable, match=r"input shape \(None, None, 4\)") as caught:
        capture(path, "bn", "normal:0")
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message and "normal:0:1x15000x4" in message
    with pytest.raises(Exception, match=r"model's input shape \(None, None, 4\)"):
        capture(path, "bn", "zeros:1x300x3")
    result = subprocess.run([sys.executable, "-m", "bntui", str(path), "--layer", "bn", "--model-input", "ones"],
                            capture_output=True, text=True, cwd=ROOT, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("bntui: capture failed: the model (input shape (None, None, 4))")
    assert "\x1b" not in result.stderr and "WARNING" not in result.stderr


@pytest.fixture(scope="module")
def tf_keras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tf.keras 2 .h5 files Keras 3 rejects: a clean nested one, one with a TF-op layer, and
    one whose Lambda writes a marker file when it runs."""
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("capture_tfk")
    marker = folder / "MARKER"

    def nested(name: str, middle: Any = None) -> Any:
        inputs = tf_keras.Input((5,), name="features")
        encoder = tf_keras.Sequential([tf_keras.layers.Dense(3, name="dense_a", input_shape=(5,)),
                                       tf_keras.layers.BatchNormalization(name="bn_1")], name="encoder")
        hidden = encoder(inputs)
        if middle is not None:
            hidden = middle(hidden)
        return tf_keras.Model(inputs, tf_keras.layers.BatchNormalization(name="top_bn")(hidden), name=name)

    clean = nested("clean")
    rng = np.random.default_rng(1)
    for layer in (clean.get_layer("encoder").get_layer("bn_1"), clean.get_layer("top_bn")):
        layer.set_weights([rng.uniform(0.5, 2, 3), rng.normal(0, 1, 3), rng.normal(0, 1, 3), rng.uniform(0.5, 2, 3)])
    code = f"lambda t: (open({str(marker)!r}, 'w').write('ran'), t)[1]"
    with_lambda = nested("with_lambda", tf_keras.layers.Lambda(eval(code), name="writes_marker"))
    with_op = nested("with_op", lambda t: tf.nn.relu(t))  # tf_keras records this as a TFOpLambda layer
    paths = {"clean": folder / "clean.h5", "lambda": folder / "lambda.h5", "op": folder / "op.h5"}
    clean.save(paths["clean"])
    with_lambda.save(paths["lambda"])
    with_op.save(paths["op"])
    marker.unlink(missing_ok=True)  # building the graph ran the lambda once; from here on it must not
    return {**paths, "marker": marker, "model": clean}  # type: ignore[dict-item]


def test_tf_keras_fallback_captures_what_tf_keras_computes(tf_keras_files: dict[str, Any]) -> None:
    import keras
    import tf_keras

    with pytest.raises(Exception):  # noqa: B017 - the premise: Keras 3 rejects this file
        keras.models.load_model(tf_keras_files["clean"], compile=False)
    captured = capture(tf_keras_files["clean"], "encoder/bn_1", "uniform:2:6x5")
    model = tf_keras_files["model"]
    x = np.random.default_rng(2).uniform(-1.0, 1.0, (6, 5)).astype(np.float32)
    reference = tf_keras.Model(model.inputs, model.get_layer("encoder").get_layer("dense_a")(model.inputs[0]))
    np.testing.assert_array_equal(captured.layer_input, np.asarray(reference(x)).astype(np.float64))


def test_tf_keras_fallback_refuses_code_and_unsafe_allows_it(tf_keras_files: dict[str, Any]) -> None:
    marker = tf_keras_files["marker"]
    with pytest.raises(tf_bridge.CaptureUnavailable, match="Lambda") as caught:
        capture(tf_keras_files["lambda"], "top_bn", "zeros")
    assert "\n" not in str(caught.value)
    with pytest.raises(tf_bridge.CaptureUnavailable, match="TF-op layer"):
        capture(tf_keras_files["op"], "top_bn", "zeros")
    assert not marker.exists(), "a refused file ran its Lambda"
    captured = capture(tf_keras_files["lambda"], "top_bn", "ones:2x5", unsafe=True)
    assert captured.layer_input.shape == (2, 3) and marker.exists()
    marker.unlink()
