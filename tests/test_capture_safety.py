"""Capture's pure parts: the input spec with a shape, clean one-line errors, and the JSON check
that decides whether tf_keras (which has no safe mode) may load a file."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES

from bntui.core.config_safety import unsafe_objects
from bntui.core.errors import InputValueError
from bntui.tf_bridge.capturing import GeneratedSpec, parse_generated, resolve_shape
from bntui.tf_bridge.keras_loader import one_line


@pytest.mark.parametrize("spec, expected", [
    ("normal:0:1x15000x4", GeneratedSpec("normal", 0, (1, 15000, 4))),
    ("normal:7", GeneratedSpec("normal", 7, None)),
    ("uniform", GeneratedSpec("uniform", 0, None)),
    ("random::2x3", GeneratedSpec("random", 0, (2, 3))),
    ("zeros:1x15000x4", GeneratedSpec("zeros", 0, (1, 15000, 4))),
    ("ones", GeneratedSpec("ones", 0, None)),
    ("x.npy", None),
    ("data/normal:0.npy", None),
])
def test_generated_specs(spec: str, expected: GeneratedSpec | None) -> None:
    assert parse_generated(spec) == expected


@pytest.mark.parametrize("spec", ["normal:x", "normal:0:1x0x4", "normal:0:1by4", "zeros:3:1x4", "normal:-1"])
def test_malformed_specs_say_what_to_write(spec: str) -> None:
    with pytest.raises(InputValueError, match="seed|shape|too many"):
        parse_generated(spec)


def test_shapes_are_checked_against_the_models_fixed_dimensions() -> None:
    assert resolve_shape((None, None, 4), None) == (1, 1, 4)
    assert resolve_shape((None, None, 4), None, default_batch=32) == (32, 1, 4)
    assert resolve_shape((None, None, 4), (1, 15000, 4)) == (1, 15000, 4)
    for wrong in ((1, 15000, 3), (1, 4), (7,)):  # one number cannot be a count where a length is None too
        with pytest.raises(InputValueError, match=r"the model's input shape \(None, None, 4\)"):
            resolve_shape((None, None, 4), wrong)
    # Where the batch is the only None, one number is the sample count.
    assert resolve_shape((None, 12, 12, 3), (512,)) == (512, 12, 12, 3)
    assert resolve_shape((None, 3), (5,)) == (5, 3)


def test_one_line_strips_escape_codes_and_keeps_the_first_line() -> None:
    err = ValueError("\n\x1b[1;31mInvalid input\x1b[0m: length 1 < 64\x07\nTraceback detail\n")
    assert one_line(err) == "Invalid input: length 1 < 64"
    assert one_line("x" * 300).endswith("…") and len(one_line("x" * 300)) == 161


def _v3_config(name: str) -> dict[str, object]:
    import zipfile

    with zipfile.ZipFile(SAMPLES / name) as archive:
        return json.loads(archive.read("config.json"))


def _h5_config(name: str) -> dict[str, object]:
    import h5py

    with h5py.File(SAMPLES / name, "r") as h5:
        raw = h5.attrs["model_config"]
    return json.loads(raw if isinstance(raw, str) else raw.decode())


def test_configs_of_built_in_layers_are_safe() -> None:
    for config in (_v3_config("nested.keras"), _v3_config("convnet_trained.keras"), _h5_config("keras2_nested.h5"),
                   _h5_config("keras2_convnet.h5"), _h5_config("nested.h5")):
        assert unsafe_objects(config) == ()


def test_custom_classes_are_reported_by_name() -> None:
    found = unsafe_objects(_v3_config("custom_layer.keras"))
    assert found and all("not a built-in Keras class" in item or "not Keras" in item for item in found)
    assert any("LearnedScale" in item for item in found)


def test_code_carrying_layers_and_impostors_are_reported() -> None:
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Lambda", "config": {"name": "writes_marker", "function": ["4wEAAA==", None, None],
                                            "function_type": "lambda"}},
        {"class_name": "TFOpLambda", "config": {"name": "tf.io.write_file", "function": "io.write_file"}},
        {"module": "my_package.layers", "class_name": "Dense", "config": {"name": "fake_dense"}},
        {"module": "keras.layers", "class_name": "Dense", "registered_name": "Custom>Dense", "config": {}},
        {"class_name": "Dense", "config": {"kernel_initializer": {"class_name": "MyInit", "config": {}}}},
    ]}}
    found = unsafe_objects(config)
    assert "Lambda layer 'writes_marker'" in found
    assert "TF-op layer 'tf.io.write_file'" in found
    assert "a function stored as bytecode" in found
    assert any("'my_package.layers'" in item for item in found)
    assert any("'Custom>Dense'" in item for item in found)
    assert any("'MyInit'" in item for item in found)


def test_a_deeply_nested_config_does_not_exhaust_the_stack() -> None:
    config: dict[str, object] = {"class_name": "Lambda", "config": {"name": "deep"}}
    for _ in range(100_000):
        config = {"class_name": "Sequential", "config": {"layers": [config]}}
    assert unsafe_objects(config) == ("Lambda layer 'deep'",)
