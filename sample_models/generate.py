"""Write the sample models with real Keras (Keras 3, and tf_keras for the Keras 2 layout).

Run from the repository root: ``python sample_models/generate.py``. Every file is small
(under 1 MB) and committed, so tests and the demo never need TensorFlow to have them.
The seed model is also copied into the package as the demo that ``bntui`` opens alone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "bntui" / "demo" / "seed.h5"

SEED = {"gamma": 0.22297101, "beta": 0.49253803, "moving_mean": 0.36868709, "moving_variance": 0.41429576}


def seed_models(keras) -> None:  # type: ignore[no-untyped-def]
    """The user's layer from the README story, kept in float64 so its numbers are exact."""
    inputs = keras.Input((2, 1), name="x")
    layer = keras.layers.BatchNormalization(epsilon=0.001, name="bn", dtype="float64")
    model = keras.Model(inputs, layer(inputs), name="seed")
    layer.set_weights([np.array([SEED[k]]) for k in ("gamma", "beta", "moving_mean", "moving_variance")])
    model.save(HERE / "seed.h5")
    model.save(HERE / "seed.keras")
    shutil.copyfile(HERE / "seed.h5", DEMO)

    inputs = keras.Input((2, 1), name="x")
    layer = keras.layers.BatchNormalization(center=False, name="bn_no_center")
    model = keras.Model(inputs, layer(inputs), name="seed_center_false")
    layer.set_weights([np.array([SEED["gamma"]]), np.array([SEED["moving_mean"]]), np.array([SEED["moving_variance"]])])
    model.save(HERE / "seed_center_false.h5")


def _random_stats(layer, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    """Give a BN layer distinct, realistic statistics so no channel looks like another."""
    channels = layer.get_weights()[-1].shape
    values = {
        "gamma": rng.normal(1.0, 0.3, channels),
        "beta": rng.normal(0.0, 0.5, channels),
        "moving_mean": rng.normal(0.0, 0.8, channels),
        "moving_variance": rng.uniform(0.05, 2.0, channels),
    }
    names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
    layer.set_weights([values[name] for name in names])


def conv_channels_first(keras, rng) -> None:  # type: ignore[no-untyped-def]
    inputs = keras.Input((3, 8, 8), name="image")
    x = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv")(inputs)
    bn = keras.layers.BatchNormalization(axis=1, name="bn_cf")
    model = keras.Model(inputs, bn(x), name="conv_channels_first")
    _random_stats(bn, rng)
    model.save(HERE / "conv_channels_first.h5")


def nested(keras, rng) -> None:  # type: ignore[no-untyped-def]
    """A Functional holding two Sequentials with a BN named ``bn_1`` each, and a Functional head."""
    head_in = keras.Input((3,))
    head = keras.Model(head_in, keras.layers.BatchNormalization(name="bn_head")(keras.layers.Dense(3)(head_in)), name="head")
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="enc_dense"),
                                keras.layers.BatchNormalization(name="bn_1")], name="encoder")
    decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="dec_dense"),
                                keras.layers.BatchNormalization(name="bn_1"), head], name="decoder")
    inputs = keras.Input((4,), name="features")
    outputs = keras.layers.BatchNormalization(center=False, name="top_bn")(decoder(encoder(inputs)))
    model = keras.Model(inputs, outputs, name="nested")
    for layer in (encoder.layers[1], decoder.layers[1], head.layers[-1], model.layers[-1]):
        _random_stats(layer, rng)
    model.save(HERE / "nested.h5")
    model.save(HERE / "nested.keras")
    model.save_weights(HERE / "nested.weights.h5")


def trained_convnet(keras, rng, path: Path) -> None:  # type: ignore[no-untyped-def]
    """A small conv net fitted a few steps, so its moving statistics are real ones."""
    model = keras.Sequential([
        keras.Input((12, 12, 3), name="image"),
        keras.layers.Conv2D(8, 3, name="conv1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.ReLU(),
        keras.layers.Conv2D(16, 3, name="conv2"),
        keras.layers.BatchNormalization(name="bn2", momentum=0.5),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, name="logits"),
    ], name="convnet")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = rng.normal(2.0, 3.0, (64, 12, 12, 3)).astype("float32")
    labels = rng.integers(0, 2, 64)
    model.fit(images, labels, batch_size=16, epochs=2, verbose=0)
    model.save(path)


def custom_layer(keras, rng) -> None:  # type: ignore[no-untyped-def]
    """A model with a custom layer class that only this script defines: bntui must still list
    its BN layers without the class (Keras itself cannot load it without ``custom_objects``)."""

    @keras.saving.register_keras_serializable(package="bntui_samples")
    class LearnedScale(keras.layers.Layer):
        def build(self, input_shape):  # type: ignore[no-untyped-def]
            self.factor = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="factor")

        def call(self, inputs):  # type: ignore[no-untyped-def]
            return inputs * self.factor

    inputs = keras.Input((5,), name="features")
    x = keras.layers.Dense(4, name="dense")(inputs)
    x = LearnedScale(name="learned_scale")(x)
    bn = keras.layers.BatchNormalization(name="bn_after_custom")
    model = keras.Model(inputs, bn(x), name="custom_layer")
    _random_stats(bn, rng)
    model.save(HERE / "custom_layer.keras")
    model.save(HERE / "custom_layer.h5")


def keras2_samples(rng) -> None:  # type: ignore[no-untyped-def]
    """The Keras 2 layout (``:0`` weight names, ``axis`` as a list), written by tf_keras."""
    import tf_keras

    trained_convnet(tf_keras, rng, HERE / "keras2_convnet.h5")
    head = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="dense_a"),
                                tf_keras.layers.BatchNormalization(name="bn_1")], name="encoder")
    inputs = tf_keras.Input((4,), name="features")
    outputs = tf_keras.layers.BatchNormalization(scale=False, name="top_bn")(head(inputs))
    model = tf_keras.Model(inputs, outputs, name="keras2_nested")
    for layer in (head.layers[-1], model.layers[-1]):
        _random_stats(layer, rng)
    model.save(HERE / "keras2_nested.h5")
    model.save_weights(HERE / "keras2_nested_weights.h5")


def main() -> None:
    rng = np.random.default_rng(20261125)
    import keras

    keras.utils.set_random_seed(7)
    seed_models(keras)
    conv_channels_first(keras, rng)
    nested(keras, rng)
    trained_convnet(keras, rng, HERE / "convnet_trained.keras")
    keras2_samples(rng)
    custom_layer(keras, rng)
    for path in sorted(HERE.glob("*.*")):
        if path.suffix in (".h5", ".keras"):
            print(f"{path.name:32} {path.stat().st_size:>8} bytes")


if __name__ == "__main__":
    main()
