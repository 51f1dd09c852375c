"""TensorFlow.js layers models, plain and quantized, written from a real tf_keras .h5 by the
converter's layout (see formats_fixtures.write_tfjs), and the refusal of graph models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import Built, build

from bntui.core.errors import ModelFileError
from bntui.core.reader import open_model


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.getbasetemp() / "formats")


def _arrays(layer: object) -> dict[str, np.ndarray]:
    roles = ("gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev")
    return {role: getattr(layer, role) for role in roles if getattr(layer, role) is not None}


@pytest.mark.tensorflow
@pytest.mark.parametrize("folder", ["tfjs", "tfjs/model.json", "tfjs_bare"])
def test_tfjs_weights_equal_keras_bit_for_bit(built: Built, folder: str) -> None:
    """40-byte shards, so most BN weights straddle two shard files."""
    model = open_model(built.path(folder))
    assert model.format == "TensorFlow.js layers model"
    assert [layer.path for layer in model.layers] == list(built.expected)
    for layer in model.layers:
        expected = built.expected[layer.path]
        assert _arrays(layer).keys() == expected.keys()
        for role, array in expected.items():
            assert _arrays(layer)[role].tobytes() == array.tobytes(), f"{layer.path}/{role}"
        assert layer.assumed == [] and not layer.notes
    assert model.find("encoder/bn_1").epsilon == 0.01 and model.find("top_bn").renorm


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind, bits", [("uint8", 8), ("uint16", 16)])
def test_affine_quantized_weights_are_dequantized(built: Built, kind: str, bits: int) -> None:
    model = open_model(built.path(f"tfjs_{kind}"))
    assert any(f"quantized weights ({kind})" in note for note in model.notes)
    for layer in model.layers:
        assert any("dequantized" in note for note in layer.notes)
        for role, original in built.expected[layer.path].items():
            value = _arrays(layer)[role]
            assert value.dtype == np.float32
            # q = round((x - min) / scale) is off by at most half a step, scale = (max - min) / (2^bits - 1);
            # the float32 multiply-add adds at most a few ulps of the largest value.
            step = (float(original.max()) - float(original.min())) / (2**bits - 1)
            slack = step / 2 + 4 * np.spacing(np.float32(np.abs(original).max()))
            assert np.all(np.abs(value.astype(np.float64) - original.astype(np.float64)) <= slack), (layer.path, role)


@pytest.mark.tensorflow
def test_float16_weights_are_widened(built: Built) -> None:
    model = open_model(built.path("tfjs_float16"))
    for layer in model.layers:
        for role, original in built.expected[layer.path].items():
            # float16 -> float32 is exact: the value is the original rounded to float16, nothing else
            assert _arrays(layer)[role].tobytes() == original.astype(np.float16).astype(np.float32).tobytes()


def test_graph_model_is_refused_with_what_it_is(tmp_path: Path) -> None:
    document = {"format": "graph-model", "modelTopology": {"node": [{"name": "x", "op": "Placeholder"}]},
                "weightsManifest": []}
    (tmp_path / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="a TensorFlow.js graph model"):
        open_model(tmp_path)


@pytest.mark.parametrize("sample", ["nested.h5", "keras2_nested.h5"])
def test_two_nested_models_with_a_bn_1_each_keep_their_own_weights(tmp_path: Path, sample: str) -> None:
    """The converter names both sub-models' weights ``bn_1/gamma``...: the manifest's order
    tells them apart. Each layer equals its twin in the .h5 the TF.js model was made from."""
    from conftest import SAMPLES
    from formats_fixtures import write_tfjs

    twin = open_model(SAMPLES / sample)
    model = open_model(write_tfjs(SAMPLES / sample, tmp_path / "tfjs"))
    assert [layer.path for layer in model.layers] == [layer.path for layer in twin.layers]
    for ours, theirs in zip(model.layers, twin.layers):
        assert _arrays(ours).keys() == _arrays(theirs).keys()
        for role, array in _arrays(theirs).items():
            assert _arrays(ours)[role].tobytes() == array.tobytes(), f"{ours.path}/{role}"
