"""Build the benchmark models offline with real Keras, into a cache folder outside the repo.

keras.applications with ``weights=None`` (no download), BN statistics set to non-default
values so they look trained, saved as ``.h5`` and ``.keras``; plus a generated model with
500 BN layers and one layer with 4096 channels. Files are reused when already built.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_CACHE = Path(os.environ.get("BNTUI_BENCH_CACHE", Path.home() / ".cache" / "bntui-bench"))
APPLICATIONS = ("ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121")


def _set_statistics(model, seed: int) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if type(layer).__name__ != "BatchNormalization":
            continue
        values = []
        for weight in layer.weights:
            name = weight.name.split("/")[-1].split(":")[0]
            shape = tuple(weight.shape)
            values.append({
                "gamma": lambda: rng.normal(1.0, 0.2, shape),
                "beta": lambda: rng.normal(0.0, 0.3, shape),
                "moving_mean": lambda: rng.normal(0.0, 1.0, shape),
                "moving_variance": lambda: rng.uniform(0.1, 3.0, shape),
            }[name]())
        layer.set_weights(values)


def _all_layers(model):  # type: ignore[no-untyped-def]
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def build(cache: Path = DEFAULT_CACHE, names: tuple[str, ...] = APPLICATIONS, extras: bool = True) -> dict[str, Path]:
    """Build (or reuse) every model; return name -> path."""
    cache.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    wanted = {f"{name}.{ext}": name for name in names for ext in ("h5", "keras")}
    if extras:
        wanted |= {"bn500.h5": "bn500", "wide4096.h5": "wide4096"}
    missing = [file for file in wanted if not (cache / file).exists()]
    if missing:
        import keras

        for file in missing:
            name = wanted[file]
            if name == "bn500":
                inputs = keras.Input((8,))
                x = inputs
                for index in range(500):
                    x = keras.layers.BatchNormalization(name=f"bn_{index}")(x)
                model = keras.Model(inputs, x, name="bn500")
            elif name == "wide4096":
                inputs = keras.Input((4096,))
                model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn_wide")(inputs), name="wide4096")
            else:
                model = getattr(keras.applications, name)(weights=None)
            _set_statistics(model, seed=len(file))
            model.save(cache / file)
    for file in wanted:
        paths[file] = cache / file
    return paths


if __name__ == "__main__":
    for file, path in build().items():
        print(f"{file:24} {path.stat().st_size / 1e6:8.1f} MB  {path}")
