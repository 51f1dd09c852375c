"""Write Keras 2-era HDF5 files byte by byte with h5py, quirks included.

No installable Keras writes the 2017-2019 variants any more (fixed-length byte names,
split attributes, Sequential configs stored as bare lists), so tests build them here the
way Keras 2.0 to 2.3's ``save_model`` did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def bn_config(name: str, axis: Any = -1, epsilon: float = 1e-3, center: bool = True, scale: bool = True) -> dict:
    return {"class_name": "BatchNormalization", "config": {
        "name": name, "trainable": True, "axis": axis, "momentum": 0.99, "epsilon": epsilon,
        "center": center, "scale": scale, "beta_initializer": {"class_name": "Zeros", "config": {}},
    }}


def bn_weights(scope: str, channels: int, seed: int, *, suffix: str = ":0", center: bool = True,
               scale: bool = True) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    weights = []
    if scale:
        weights.append((f"{scope}/gamma{suffix}", rng.normal(1, 0.2, channels).astype("float32")))
    if center:
        weights.append((f"{scope}/beta{suffix}", rng.normal(0, 0.2, channels).astype("float32")))
    weights.append((f"{scope}/moving_mean{suffix}", rng.normal(0, 1, channels).astype("float32")))
    weights.append((f"{scope}/moving_variance{suffix}", rng.uniform(0.1, 2, channels).astype("float32")))
    return weights


def _names(values: list[str], fixed_length: bool) -> np.ndarray:
    if fixed_length:
        return np.array([v.encode("utf8") for v in values], dtype=f"S{max([len(v) for v in values] + [1])}")
    return np.array(values, dtype=h5py.string_dtype())


def _set_names(node: h5py.Group, key: str, values: list[str], fixed_length: bool, split: int) -> None:
    if split <= 1:
        node.attrs[key] = _names(values, fixed_length) if values else np.array([], dtype="float64")
        return
    size = -(-len(values) // split)
    for index in range(split):
        node.attrs[f"{key}{index}"] = _names(values[index * size:(index + 1) * size], fixed_length)


def write_legacy(
    path: Path,
    groups: list[tuple[str, list[tuple[str, np.ndarray]]]],
    *,
    config: dict | None,
    version: str = "2.1.6",
    fixed_length: bool = True,
    split: int = 1,
    layer_order: list[str] | None = None,
    extra_root_attrs: dict[str, Any] | None = None,
    optimizer: bool = False,
) -> Path:
    """A full-model file (``config`` given) or a weights-only one (``config=None``)."""
    with h5py.File(path, "w") as h5:
        if config is not None:
            h5.attrs["keras_version"] = version.encode("utf8")
            h5.attrs["backend"] = b"tensorflow"
            h5.attrs["model_config"] = json.dumps(config).encode("utf8")
            root = h5.create_group("model_weights")
        else:
            root = h5
        for key, value in (extra_root_attrs or {}).items():
            h5.attrs[key] = value
        root.attrs["keras_version"] = version.encode("utf8")
        root.attrs["backend"] = b"tensorflow"
        _set_names(root, "layer_names", layer_order or [name for name, _ in groups], fixed_length, split)
        for group_name, weights in groups:
            group = root.create_group(group_name)
            _set_names(group, "weight_names", [name for name, _ in weights], fixed_length, split)
            for weight_name, value in weights:
                group.create_dataset(weight_name, data=value)
        if optimizer:
            opt = h5.create_group("optimizer_weights")
            opt.attrs["weight_names"] = _names(["Adam/iterations:0"], fixed_length)
            opt.create_dataset("Adam/iterations:0", data=np.int64(10))
    return path
