"""The mode audit against what Keras 3 and tf_keras really do with a saved model.

Each case builds a small model (a plain layer, a frozen one, ``BatchNormalization()(x,
training=True)`` and ``training=False``), saves it, reads it back with bntui, and then watches
the live model: which statistics ``predict``, a ``fit`` step, ``model(x, training=True)`` and
``model(x)`` use, whether they move the moving statistics, and with which variance.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bntui.core.analysis.explain_modes import CALLS, audit_modes, call_training_from_config
from bntui.core.reader import open_model

pytestmark = pytest.mark.tensorflow

X = np.random.default_rng(5).normal(2.0, 3.0, size=(4, 3)).astype(np.float32)


def _observe(model: Any, bn: Any) -> dict[str, dict[str, Any]]:
    """Each call on a fresh copy of the weights: statistics used, update, variance estimator."""
    start = [np.array(w) for w in bn.get_weights()]
    gamma, beta, mean, variance = (w.astype(np.float64) for w in start)
    x = X.astype(np.float64)
    moving = gamma * (x - mean) / np.sqrt(variance + bn.epsilon) + beta
    batch = gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + bn.epsilon) + beta
    calls = {
        "predict": lambda: model.predict(X, verbose=0),
        "call_training_true": lambda: model(X, training=True),
        "call": lambda: model(X),
        # A step with learning rate 0: the loss, mean(y^2), shows which output the step computed.
        "fit": lambda: model.train_on_batch(X, np.zeros_like(X)),
    }
    seen = {}
    for name, run in calls.items():
        bn.set_weights(start)
        out = np.asarray(run(), dtype=np.float64)
        if name == "fit":
            used = "moving" if np.isclose(out, np.mean(moving**2), rtol=1e-4) else "batch"
        else:
            used = "moving" if np.allclose(out, moving, atol=1e-4) else "batch"
        after = np.asarray(bn.get_weights()[3], dtype=np.float64)
        updated = not np.allclose(after, variance)
        kind = None
        if updated:
            m = bn.momentum
            kind = "biased" if np.allclose(after, m * variance + (1 - m) * x.var(0), rtol=1e-5) else "unbiased"
        if name != "fit":  # the output is one of the two, never something else
            assert np.allclose(out, batch if used == "batch" else moving, atol=1e-4)
        seen[name] = {"statistics": used, "updates_moving_statistics": updated, "variance_update": kind}
    return seen


def _build(library: str, hard: bool | None, trainable: bool, path: Path) -> tuple[Any, Any]:
    if library == "keras":
        import keras as k
    else:
        import tf_keras as k  # type: ignore[no-redef]
    inputs = k.Input((3,))
    bn = k.layers.BatchNormalization(name="bn")
    outputs = bn(inputs) if hard is None else bn(inputs, training=hard)
    bn.set_weights([np.array([1.5, 0.5, 2.0], np.float32), np.array([0.1, -0.2, 0.3], np.float32),
                    np.array([0.5, 1.0, -1.0], np.float32), np.array([2.0, 0.5, 1.0], np.float32)])
    bn.trainable = trainable
    model = k.Model(inputs, outputs)
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.0), loss="mse")
    model.save(path)
    return model, bn


def _layer_config(path: Path) -> dict[str, Any]:
    """The BN layer's entry of the saved model config, read as JSON (as the reader does)."""
    if path.suffix == ".keras":
        config = json.loads(zipfile.ZipFile(path).read("config.json"))
    else:
        import h5py

        with h5py.File(path, "r") as handle:
            config = json.loads(handle.attrs["model_config"])
    return next(entry for entry in config["config"]["layers"] if entry["class_name"] == "BatchNormalization")


@pytest.mark.parametrize("library, hard, trainable", [
    ("keras", None, True), ("keras", None, False), ("keras", True, True), ("keras", False, True),
    ("tf_keras", None, True), ("tf_keras", None, False), ("tf_keras", True, True), ("tf_keras", False, True),
])
def test_audit_matches_what_keras_does(tmp_path: Path, library: str, hard: bool | None, trainable: bool) -> None:
    path = tmp_path / ("m.keras" if library == "keras" else "m.h5")
    model, bn = _build(library, hard, trainable, path)
    layer = open_model(path).find("bn")
    call_training = call_training_from_config(_layer_config(path))
    assert call_training is hard
    audit = audit_modes(layer, call_training)
    observed = _observe(model, bn)
    claimed = audit.behaviour if library == "keras" or audit.behaviour_when_written is None else audit.behaviour_when_written
    assert {call: claimed[call].to_dict() for call in CALLS} == observed
    data = audit.to_dict()
    assert data["trainable"] is trainable and data["call_training"] is hard
    if hard is not None:
        assert any(note.startswith("WARNING") for note in data["notes"])
    if library == "tf_keras" and hard is True:
        assert data["behaviour_when_written"]["predict"]["statistics"] == "batch"  # loudly different from today


def test_tf_keras_fused_kernel_updates_with_the_unbiased_variance(tmp_path: Path) -> None:
    import tf_keras

    inputs = tf_keras.Input((2, 2, 3))
    bn = tf_keras.layers.BatchNormalization(name="bn")
    model = tf_keras.Model(inputs, bn(inputs))
    model.save(tmp_path / "conv.h5")
    layer = open_model(tmp_path / "conv.h5").find("bn")
    audit = audit_modes(layer)
    x = np.random.default_rng(2).normal(1.0, 2.0, size=(2, 2, 2, 3)).astype(np.float32)
    before = np.asarray(bn.moving_variance, dtype=np.float64)
    model(x, training=True)
    after = np.asarray(bn.moving_variance, dtype=np.float64)
    flat = x.reshape(-1, 3).astype(np.float64)
    assert np.allclose(after, 0.99 * before + 0.01 * flat.var(0, ddof=1), rtol=1e-5)
    assert audit.behaviour_when_written is not None
    assert audit.behaviour_when_written["fit"].variance_update == "unbiased"
    assert audit.behaviour["fit"].variance_update == "biased"  # Keras 3 today


def test_call_training_from_config_without_call_kwargs() -> None:
    assert call_training_from_config({"inbound_nodes": []}) is None
    assert call_training_from_config({}) is None
    assert call_training_from_config({"inbound_nodes": [[["a", 0, 0, {"training": True}]],
                                                        [["b", 0, 0, {"training": False}]]]}) is None
