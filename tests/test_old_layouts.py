"""Keras 2.0 to 2.3 and tf.keras quirks, on files written byte by byte the way they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from legacy_writer import bn_config, bn_weights, write_legacy

from bntui.core import open_model


def _values(weights: list[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name.split("/")[-1].split(":")[0]: value for name, value in weights}


def _check(layer, weights) -> None:  # type: ignore[no-untyped-def]
    for role, value in _values(weights).items():
        np.testing.assert_array_equal(getattr(layer, role), value)


def test_keras_2_0_sequential_bare_list_config_fixed_length_names(tmp_path: Path) -> None:
    weights = bn_weights("batch_normalization_1", 4, seed=1)
    config = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 4, "batch_input_shape": [None, 3]}},
        bn_config("batch_normalization_1", axis=-1),
    ]}
    path = write_legacy(tmp_path / "k20.h5", [("dense_1", []), ("batch_normalization_1", weights)],
                        config=config, version="2.0.8")
    info = open_model(path)
    assert info.keras_version == "2.0.8" and info.format == "Keras 2 HDF5"
    [layer] = info.layers
    assert layer.path == "batch_normalization_1" and layer.inbound == "dense_1"
    _check(layer, weights)


def test_weight_scope_differs_from_group_name(tmp_path: Path) -> None:
    weights = bn_weights("batch_normalization_1_1", 3, seed=2)
    config = {"class_name": "Model", "config": {"name": "model_1", "layers": [
        {**bn_config("batch_normalization_1"), "name": "batch_normalization_1", "inbound_nodes": [[["input_1", 0, 0, {}]]]},
    ]}}
    path = write_legacy(tmp_path / "scope.h5", [("batch_normalization_1", weights)], config=config)
    [layer] = open_model(path).layers
    assert layer.path == "batch_normalization_1" and layer.inbound == "input_1"
    _check(layer, weights)


@pytest.mark.parametrize("axis, expected", [(-1, -1), ([3], 3), (3, 3), ([1], 1)])
def test_axis_forms(tmp_path: Path, axis, expected) -> None:  # type: ignore[no-untyped-def]
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [bn_config("bn", axis=axis)]}}
    path = write_legacy(tmp_path / "axis.h5", [("bn", bn_weights("bn", 2, seed=3))], config=config)
    assert open_model(path).layers[0].axis == expected


def test_split_attributes_and_unordered_layer_names(tmp_path: Path) -> None:
    names = ["bn_10", "bn_2", "bn_1"]
    groups = [(name, bn_weights(name, 5, seed=i)) for i, name in enumerate(names)]
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [bn_config(n) for n in sorted(names)]}}
    path = write_legacy(tmp_path / "split.h5", groups, config=config, split=2, layer_order=names)
    info = open_model(path)
    assert [layer.path for layer in info.layers] == names
    for (name, weights), layer in zip(groups, info.layers):
        _check(layer, weights)


def test_tf_version_string_extra_attributes_and_optimizer_weights(tmp_path: Path) -> None:
    weights = bn_weights("bn", 2, seed=4)
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [bn_config("bn", axis=[1])]}}
    path = write_legacy(tmp_path / "tf.h5", [("bn", weights)], config=config, version="2.2.4-tf",
                        fixed_length=False, extra_root_attrs={"training_config": b"{}", "custom": 7}, optimizer=True)
    info = open_model(path)
    assert info.format == "tf.keras HDF5" and info.keras_version == "2.2.4-tf"
    _check(info.layers[0], weights)


def test_keras2_weights_only_with_fixed_length_names(tmp_path: Path) -> None:
    weights = bn_weights("batch_normalization_3", 6, seed=5, center=False)
    path = write_legacy(tmp_path / "w.h5", [("conv", []), ("batch_normalization_3", weights)], config=None)
    [layer] = open_model(path).layers
    assert layer.path == "batch_normalization_3"
    assert layer.beta is None and not layer.center and layer.scale
    assert {"axis", "epsilon", "momentum"} <= set(layer.assumed)
    _check(layer, weights)


def test_nested_keras2_sub_model_with_deeper_nesting(tmp_path: Path) -> None:
    inner = {"class_name": "Model", "config": {"name": "inner", "layers": [bn_config("bn_deep")]}}
    outer = {"class_name": "Model", "config": {"name": "outer", "layers": [
        {"class_name": "Sequential", "name": "block", "config": {"name": "block", "layers": [bn_config("bn_a"), inner]}},
    ]}}
    weights = bn_weights("bn_a", 2, seed=6) + bn_weights("bn_deep", 2, seed=7)
    path = write_legacy(tmp_path / "deep.h5", [("block", weights)], config=outer)
    info = open_model(path)
    assert [layer.path for layer in info.layers] == ["block/bn_a", "block/inner/bn_deep"]
    _check(info.layers[1], bn_weights("bn_deep", 2, seed=7))


def test_keras_3_zip_without_vars_name_attributes(tmp_path: Path) -> None:
    """Early Keras 3 releases did not write the layer's name on ``vars``: groups are then paired
    with config layers by Keras' class-name counter (batch_normalization, batch_normalization_1...)."""
    import zipfile

    import h5py
    from conftest import SAMPLES

    source = SAMPLES / "nested.keras"
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    weights = tmp_path / "w.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as h5:
        stripped = []
        h5.visititems(lambda name, obj: stripped.append(name) if name.endswith("vars") and "name" in obj.attrs else None)
        for name in stripped:
            del h5[name].attrs["name"]
    assert stripped
    members["model.weights.h5"] = weights.read_bytes()
    rebuilt = tmp_path / "early.keras"
    with zipfile.ZipFile(rebuilt, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    original = {layer.path: layer for layer in open_model(source).layers}
    early = {layer.path: layer for layer in open_model(rebuilt).layers}
    assert list(early) == list(original)
    for path, layer in early.items():
        np.testing.assert_array_equal(layer.moving_variance, original[path].moving_variance)
        np.testing.assert_array_equal(layer.gamma, original[path].gamma)
