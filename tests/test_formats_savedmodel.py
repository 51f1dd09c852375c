"""SavedModel directories (tf_keras ``model.save(dir)`` in both metadata forms, Keras 3
``model.export``) read without TensorFlow, checked against Keras and TensorFlow's own readers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from formats_fixtures import Built, build, bundle_entries, checkpoint_tensors, flip_byte, keras_metadata_node_ids
from test_formats_checkpoint import assert_every_tensor_reads_as_tensorflow_reads_it

from bntui.core.errors import ModelFileError
from bntui.core.guarded_open import open_model_guarded
from bntui.core.io.savedmodel import CAPTURE_REFUSAL, FORMAT
from bntui.core.io.tensor_bundle import BundleError
from bntui.core.reader import open_model

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.getbasetemp() / "formats")


def _assert_same_bits(actual: np.ndarray | None, expected: np.ndarray, where: str) -> None:
    assert actual is not None, where
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, where
    assert actual.tobytes() == expected.tobytes(), where


def _arrays(layer: object) -> dict[str, np.ndarray]:
    roles = ("gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev")
    return {role: getattr(layer, role) for role in roles if getattr(layer, role) is not None}


@pytest.mark.parametrize("form, folder", [("keras_metadata.pb", "sm"), ("metadata in saved_model.pb", "sm_tf24")])
def test_savedmodel_layers_equal_keras(built: Built, form: str, folder: str) -> None:
    model = open_model(built.path(folder))
    assert model.format == f"{FORMAT} ({form})" and model.keras_version == "2.21.0" and model.model_name == "outer"
    assert [layer.path for layer in model.layers] == list(built.expected)
    for layer in model.layers:
        expected = built.expected[layer.path]
        assert _arrays(layer).keys() == expected.keys(), layer.path
        for role, array in expected.items():
            _assert_same_bits(_arrays(layer)[role], array, f"{layer.path}/{role}")
        assert layer.assumed == []
    settings = {layer.path: (layer.axis, layer.epsilon, layer.momentum, layer.center, layer.renorm) for layer in model.layers}
    # tf_keras stores axes as positive numbers: [1] for a (batch, 3) input
    assert settings == {"encoder/bn_1": (1, 0.01, 0.99, True, False), "top_bn": (1, 0.001, 0.9, False, True),
                        "time_distributed/td_bn": (1, 0.005, 0.99, True, False), "cf_bn": (1, 0.001, 0.99, True, False)}
    assert model.find("td_bn").inbound is None and model.find("top_bn").inbound == "encoder"


def test_savedmodel_tensors_equal_load_checkpoint(built: Built) -> None:
    """Node ids from keras_metadata.pb and the object graph decoded by TF's protobuf classes,
    tensors by tf.train.load_checkpoint: bit for bit what bntui's own decoders read."""
    directory = built.path("sm")
    ids = keras_metadata_node_ids(directory)
    tensors = checkpoint_tensors(directory / "variables" / "variables", ids)
    model = open_model(directory)
    for layer in model.layers:
        reference = tensors[layer.name]
        assert _arrays(layer).keys() == reference.keys()
        for role, array in _arrays(layer).items():
            _assert_same_bits(array, reference[role], f"{layer.path}/{role}")


def test_savedmodel_equals_its_h5_twin(built: Built) -> None:
    saved, twin = open_model(built.path("sm")), open_model(built.path("twin.h5"))
    assert [layer.path for layer in saved.layers] == [layer.path for layer in twin.layers]
    for ours, theirs in zip(saved.layers, twin.layers):
        assert (ours.axis, ours.epsilon, ours.center, ours.scale) == (theirs.axis, theirs.epsilon, theirs.center, theirs.scale)
        for role, array in _arrays(theirs).items():
            _assert_same_bits(_arrays(ours)[role], array, f"{ours.path}/{role}")


@pytest.mark.parametrize("member", ["", "saved_model.pb", "keras_metadata.pb"])
def test_directory_and_its_files_open_it(built: Built, member: str) -> None:
    path = built.path("sm") / member if member else built.path("sm")
    model = open_model_guarded(path)
    assert model.format.startswith(FORMAT) and len(model.layers) == 4


def test_keras3_export_lists_layers_by_variable_names(built: Built) -> None:
    model = open_model(built.path("k3export"))
    assert model.format == f"{FORMAT} (no Keras config)"
    assert any("model.export()" in note for note in model.notes)
    assert sorted(layer.path for layer in model.layers) == sorted(built.k3_expected)
    for layer in model.layers:
        assert "epsilon" in layer.assumed and layer.sources["epsilon"] == "default"
        for role, array in built.k3_expected[layer.path].items():
            _assert_same_bits(_arrays(layer)[role], array, f"{layer.path}/{role}")
    assert model.find("top_bn").beta is None


def test_capture_refusal_names_the_reason() -> None:
    assert "runs the graph functions" in CAPTURE_REFUSAL and "\n" not in CAPTURE_REFUSAL


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bntui", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, check=False)


def test_cli_lists_and_verifies_a_savedmodel(built: Built) -> None:
    listed = _cli(str(built.path("sm_tf24")), "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["format"].startswith(FORMAT) and [layer["path"] for layer in data["layers"]] == list(built.expected)
    verified = _cli(str(built.path("sm")), "--layer", "encoder/bn_1", "--input", "1, 2, 3", "--verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["verification"]["inference"]["agrees"] is True


def test_a_directory_without_a_model_says_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is a directory, not a model file .no saved_model.pb, model.json or TF checkpoint"):
        open_model(tmp_path)


def test_reading_every_new_format_imports_neither_tensorflow_nor_protobuf(built: Built) -> None:
    paths = [built.path(name) for name in ("sm", "sm_tf24", "k3export", "ckpt", "tf1", "tfjs_uint8")]
    code = ("import sys\nfrom bntui.core.reader import open_model\n"
            f"for path in {[str(p) for p in paths]!r}:\n    assert open_model(path).layers\n"
            "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert "numpy" in loaded and not loaded & {"tensorflow", "keras", "tf_keras", "google", "textual"}


def test_root_metadata_without_model_config_uses_its_config(built: Built, tmp_path: Path) -> None:
    """Before TF 2.5 the root record had no ``model_config``: its ``config`` holds the layers."""
    import shutil

    from tf_keras.protobuf import saved_metadata_pb2

    folder = tmp_path / "old"
    shutil.copytree(built.path("sm"), folder)
    metadata = saved_metadata_pb2.SavedMetadata()
    metadata.ParseFromString((folder / "keras_metadata.pb").read_bytes())
    for record in metadata.nodes:
        if record.node_path == "root":
            data = json.loads(record.metadata)
            del data["model_config"]
            record.metadata = json.dumps(data)
    (folder / "keras_metadata.pb").write_bytes(metadata.SerializeToString())
    model = open_model(folder)
    assert [layer.path for layer in model.layers] == list(built.expected)
    assert model.find("top_bn").inbound == "encoder"


@pytest.mark.parametrize("folder", ["sm", "sm_tf24", "k3export", "tf1_savedmodel"])
def test_every_savedmodel_tensor_reads_as_tensorflow_reads_it(built: Built, folder: str) -> None:
    """Every variable, and the object graph (a string tensor, whose checksum covers its lengths
    as 4-byte integers), read and verified by bntui: bit for bit TensorFlow's read."""
    assert_every_tensor_reads_as_tensorflow_reads_it(built.path(folder) / "variables" / "variables")


@pytest.mark.parametrize("where", ["strings", "lengths"])
def test_a_flipped_byte_in_the_object_graph_is_refused_as_tensorflow_refuses_it(built: Built, tmp_path: Path,
                                                                                where: str) -> None:
    """The object graph's checksum is computed differently from a number tensor's: a byte
    changed in its serialized graph, or in its length prefix, is refused by bntui (naming the
    tensor) and by TensorFlow alike, through the CLI as one line."""
    import tensorflow as tf

    folder = tmp_path / "sm"
    shutil.copytree(built.path("sm"), folder)
    shard = folder / "variables" / "variables.data-00000-of-00001"
    entry = bundle_entries(folder / "variables" / "variables")["_CHECKPOINTABLE_OBJECT_GRAPH"]
    flip_byte(shard, entry.offset + (entry.size // 2 if where == "strings" else 0))
    message = f"{shard}: the bytes of '_CHECKPOINTABLE_OBJECT_GRAPH' do not match their checksum (the file is damaged)"
    with pytest.raises(BundleError) as caught:
        open_model(folder)
    assert str(caught.value) == message
    with pytest.raises(tf.errors.OpError, match="does not match"):
        tf.train.load_checkpoint(str(folder / "variables" / "variables")).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    result = _cli(str(folder), "--list")
    assert result.returncode == 1 and result.stderr == f"bntui: {message}\n"


def test_a_flipped_byte_in_a_savedmodel_bn_tensor_is_refused(built: Built, tmp_path: Path) -> None:
    """cf_bn's moving variance changed in a copy of the shard: refused, naming the tensor."""
    folder = tmp_path / "sm"
    shutil.copytree(built.path("sm"), folder)
    shard = folder / "variables" / "variables.data-00000-of-00001"
    key = "layer_with_weights-3/moving_variance/.ATTRIBUTES/VARIABLE_VALUE"
    entry = bundle_entries(folder / "variables" / "variables")[key]
    assert shard.read_bytes()[entry.offset : entry.offset + entry.size] == built.expected["cf_bn"]["moving_variance"].tobytes()
    flip_byte(shard, entry.offset + entry.size - 1)
    with pytest.raises(BundleError, match=f"the bytes of '{key}' do not match their checksum"):
        open_model(folder)
    assert len(open_model(built.path("sm")).layers) == 4
