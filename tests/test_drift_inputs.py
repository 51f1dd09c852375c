"""A layer's input on the first samples of the drift data (what the Data tab opens the Steps
with): nested layers found by their path, a shared layer by its call, and the values the same
as Keras' own, and as the drift pass measured for the same samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bntui.core.analysis.drift import Moments
from bntui.core.errors import BntuiError
from bntui.core.reader import open_model

SAMPLES_IN_DATA = 40


@pytest.fixture(scope="module")
def nested_shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """x -> encoder (dense, bn_1) -> two dense branches through one shared BN -> add."""
    from bntui.tf_bridge.keras_loader import import_keras

    keras = import_keras()
    folder = tmp_path_factory.mktemp("drift_inputs")
    inner_in = keras.Input((4,))
    inner_dense = keras.layers.Dense(3, name="dense_in")(inner_in)
    encoder = keras.Model(inner_in, keras.layers.BatchNormalization(name="bn_1")(inner_dense), name="encoder")
    x = keras.Input((4,))
    encoded = encoder(x)
    left = keras.layers.Dense(2, name="left")(encoded)
    right = keras.layers.Dense(2, name="right")(encoded)
    shared = keras.layers.BatchNormalization(name="shared_bn")
    model = keras.Model(x, keras.layers.Add()([shared(left), shared(right)]), name="nested_shared")
    path = folder / "nested_shared.keras"
    model.save(path)
    data = np.random.default_rng(5).normal(1.0, 2.0, (SAMPLES_IN_DATA, 4)).astype(np.float32)
    npy = folder / "x.npy"
    np.save(npy, data)
    probe = keras.Model(x, [encoder.get_layer("dense_in")(x), left, right])
    scaled = data * np.float32(0.5)
    dense_in, left_out, right_out = (np.asarray(a, dtype=np.float64) for a in probe(scaled))
    return {"model": path, "data": str(npy), "dense_in": dense_in, "branches": (left_out, right_out)}


@pytest.mark.tensorflow
def test_nested_and_shared_layers_get_their_own_input(nested_shared: dict[str, object]) -> None:
    from bntui.tf_bridge.drift import measure_drift
    from bntui.tf_bridge.drift_inputs import layer_input_from_data
    from bntui.tf_bridge.keras_loader import load_whole_model

    model = load_whole_model(nested_shared["model"])  # type: ignore[arg-type]
    data: str = nested_shared["data"]  # type: ignore[assignment]
    dense_in: np.ndarray = nested_shared["dense_in"]  # type: ignore[assignment]
    branches: tuple[np.ndarray, np.ndarray] = nested_shared["branches"]  # type: ignore[assignment]

    # Float32 activations of one model on the same samples: equal but for the last bit or so
    # of a few values (a batch of 8 against one of 40 may be blocked differently), so 1e-6.
    nested = layer_input_from_data(model, "encoder/bn_1", "bn_1", data, scale=0.5, samples=8)
    np.testing.assert_allclose(nested, dense_in[:8], rtol=1e-6, atol=1e-6)

    calls = [layer_input_from_data(model, "shared_bn", "shared_bn", data, call=call, scale=0.5,
                                   samples=SAMPLES_IN_DATA) for call in (0, 1)]
    matched = sorted(range(2), key=lambda call: float(np.abs(calls[call] - branches[0]).max()))
    np.testing.assert_allclose(calls[matched[0]], branches[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(calls[matched[1]], branches[1], rtol=1e-6, atol=1e-6)

    # Each call is the one the drift pass measured under the same index (the same samples:
    # the whole data, there in batches of 32 and 8): float32 activations as above, their
    # moments summed in float64, so 1e-6 again. The two calls' statistics differ by far more.
    result = measure_drift(open_model(Path(nested_shared["model"])), data, scale=0.5)  # type: ignore[arg-type]
    shared_entries = [entry for entry in result.layers if entry.path == "shared_bn"]
    assert sorted(entry.call for entry in shared_entries) == [0, 1]
    for entry in shared_entries:
        moments = Moments.of(calls[entry.call], -1)
        np.testing.assert_allclose(entry.moments.mean, moments.mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(entry.moments.variance, moments.variance, rtol=1e-6)
    assert not np.allclose(Moments.of(calls[0], -1).mean, Moments.of(calls[1], -1).mean, rtol=1e-3)

    # The wrapped call is gone again (the TUI's process reuses this model for the next layer).
    assert "call" not in vars(model.get_layer("shared_bn"))
    with pytest.raises(BntuiError, match="called 2 time"):
        layer_input_from_data(model, "shared_bn", "shared_bn", data, call=2)
    with pytest.raises(BntuiError, match="no BN layer 'missing'"):
        layer_input_from_data(model, "missing", "missing", data)
