"""TF checkpoints: TF2 object-based (tf_keras ``save_weights``) and TF1 name-based (a Saver
with its ``.meta`` graph), read without TensorFlow and checked against ``tf.train.load_checkpoint``;
their checksums verified as TensorFlow verifies them."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import Built, build, bundle_entries, checkpoint_tensors, flip_byte

from bntui.core.guarded_open import open_model_guarded
from bntui.core.io.tensor_bundle import DT_STRING, BundleError, TensorBundle, masked_crc32c
from bntui.core.reader import open_model

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.getbasetemp() / "formats")


def _arrays(layer: object) -> dict[str, np.ndarray]:
    roles = ("gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev")
    return {role: getattr(layer, role) for role in roles if getattr(layer, role) is not None}


def _same_bits(actual: np.ndarray, expected: np.ndarray) -> bool:
    return actual.dtype == expected.dtype and actual.shape == expected.shape and actual.tobytes() == expected.tobytes()


@pytest.mark.parametrize("name", ["ckpt", "ckpt/w", "ckpt/w.index", "ckpt/w.data-00000-of-00001"])
def test_tf2_checkpoint_opens_by_prefix_index_data_or_folder(built: Built, name: str) -> None:
    model = open_model_guarded(built.path(name))
    assert model.format == "TF2 checkpoint (object-based)"
    # in the model's order: the object graph lists a model's layers in order, depth first
    assert [layer.path for layer in model.layers] == ["bn_1", "top_bn", "time_distributed", "cf_bn"]


def test_tf2_checkpoint_values_equal_keras_and_load_checkpoint(built: Built) -> None:
    """Layer names come from the variables' full names; a TimeDistributed BN's variables are
    named after the wrapper. Every tensor equals Keras' weight and TensorFlow's own read."""
    model = open_model(built.path("ckpt"))
    keras_path = {"bn_1": "encoder/bn_1", "top_bn": "top_bn", "time_distributed": "time_distributed/td_bn", "cf_bn": "cf_bn"}
    for layer in model.layers:
        expected = built.expected[keras_path[layer.path]]
        assert _arrays(layer).keys() == expected.keys()
        assert all(_same_bits(_arrays(layer)[role], array) for role, array in expected.items()), layer.path
        assert {"axis", "epsilon", "momentum"} <= set(layer.assumed)
    assert model.find("top_bn").renorm and model.find("top_bn").beta is None
    # node ids of the four BN layers in the object graph, found by TF's own protobuf classes
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(str(built.path("ckpt/w"))).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    ids = {}
    for node_id, node in enumerate(graph.nodes):
        names = {child.local_name: child.node_id for child in node.children}
        if "moving_mean" in names:
            full = next(a.full_name for a in graph.nodes[names["moving_mean"]].attributes)
            ids[full.rsplit("/", 1)[0]] = node_id
    reference = checkpoint_tensors(built.path("ckpt/w"), ids)
    for layer in model.layers:
        assert reference[layer.path].keys() == _arrays(layer).keys()
        assert all(_same_bits(array, reference[layer.path][role]) for role, array in _arrays(layer).items())


@pytest.mark.parametrize("name", ["tf1", "tf1/model.ckpt", "tf1/model.ckpt.index", "tf1/model.ckpt.meta"])
def test_tf1_checkpoint_takes_epsilon_and_layout_from_the_meta_graph(built: Built, name: str) -> None:
    import tensorflow as tf

    model = open_model(built.path(name))
    assert model.format == "TF1 checkpoint (name-based)"
    reader = tf.train.load_checkpoint(str(built.path("tf1/model.ckpt")))
    assert sorted(layer.path for layer in model.layers) == sorted(built.tf1_expected)
    for layer in model.layers:
        for role, array in built.tf1_expected[layer.path].items():
            assert _same_bits(_arrays(layer)[role], array)
            assert _same_bits(_arrays(layer)[role], reader.get_tensor(f"{layer.path}/{role}"))
    # the op stores epsilon as float32; bntui shows the decimal that was written
    settings = {layer.path: (layer.epsilon, layer.axis, "epsilon" in layer.assumed) for layer in model.layers}
    assert settings == {"batch_normalization": (0.002, -1, False), "block1/bn": (1e-5, 1, False)}


def test_tf1_checkpoint_without_meta_assumes_defaults(built: Built, tmp_path: Path) -> None:
    for path in built.path("tf1").iterdir():
        if path.suffix != ".meta":
            shutil.copy(path, tmp_path / path.name)
    model = open_model(tmp_path / "model.ckpt")
    assert {layer.epsilon for layer in model.layers} == {0.001}
    assert all("epsilon" in layer.assumed for layer in model.layers)
    assert any("no .meta graph" in note for note in model.notes)


@pytest.mark.parametrize("name, layer_path", [("tf1/model.ckpt", "block1/bn"), ("ckpt", "top_bn"), ("tfjs_uint8", "cf_bn")])
def test_verify_works_for_the_new_formats(built: Built, name: str, layer_path: str) -> None:
    """TensorFlow's own BatchNormalization, built from what was read (axis 1 for the NCHW op,
    renorm for top_bn, dequantized weights), agrees with the core's steps."""
    from bntui import tf_bridge
    from bntui.core.input_parse import parse_for_layer
    from bntui.core.steps import compute

    layer = open_model(built.path(name)).find(layer_path)
    x = parse_for_layer("0.5, -1.25, 3", layer.channels, layer.axis)
    assert tf_bridge.verify(compute(layer, x)).agrees


def test_tf1_savedmodel_lists_by_name_with_the_graph_settings(built: Built) -> None:
    """A TF1 SavedModel (simple_save) has no object graph and no Keras metadata: variables by
    name scope, epsilon and layout from the FusedBatchNorm ops in saved_model.pb's graph."""
    import tensorflow as tf

    model = open_model(built.path("tf1_savedmodel"))
    assert model.format == "TF SavedModel (TF1, no Keras config)"
    reader = tf.train.load_checkpoint(str(built.path("tf1_savedmodel/variables/variables")))
    settings = {layer.path: (layer.epsilon, layer.axis) for layer in model.layers}
    assert settings == {"batch_normalization": (0.002, -1), "block1/bn": (1e-5, 1)}
    for layer in model.layers:
        for role, array in _arrays(layer).items():
            assert _same_bits(array, reader.get_tensor(f"{layer.path}/{role}"))
            assert _same_bits(array, built.tf1_expected[layer.path][role])


def test_folder_with_several_checkpoints_opens_the_one_its_state_file_names(built: Built, tmp_path: Path) -> None:
    """save_weights wrote ``checkpoint`` (model_checkpoint_path: "w"); an older, damaged
    checkpoint next to it is not the one opened."""
    shutil.copytree(built.path("ckpt"), tmp_path / "ckpt")
    (tmp_path / "ckpt" / "old.index").write_bytes(b"not a bundle")
    assert 'model_checkpoint_path: "w"' in (tmp_path / "ckpt" / "checkpoint").read_text()
    assert len(open_model(tmp_path / "ckpt").layers) == 4


def assert_every_tensor_reads_as_tensorflow_reads_it(prefix: Path) -> None:
    """Every tensor of a bundle, numbers and strings, through bntui's checksummed reads: bit for
    bit what ``tf.train.load_checkpoint`` returns (so verification refuses no real file)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    with TensorBundle(prefix) as bundle:
        assert sorted(bundle) == sorted(reader.get_variable_to_dtype_map())
        for key in bundle:
            expected = reader.get_tensor(key)
            if bundle.entry(key).dtype == DT_STRING:
                # a scalar comes back as bytes; np.ravel would make it np.bytes_, which drops trailing NULs
                assert bundle.strings(key) == ([expected] if isinstance(expected, bytes) else list(expected.ravel())), key
            else:
                assert _same_bits(bundle.tensor(key), expected), key


@pytest.mark.parametrize("prefix", ["ckpt/w", "tf1/model.ckpt"])
def test_every_checkpoint_tensor_reads_as_tensorflow_reads_it(built: Built, prefix: str) -> None:
    assert_every_tensor_reads_as_tensorflow_reads_it(built.path(prefix))


@pytest.mark.parametrize("payload", [b"", b"a", b"123456789", bytes(range(256)) * 40])
def test_masked_crc32c_is_the_one_tensorflow_writes(tmp_path: Path, payload: bytes) -> None:
    """An independent computation of TensorFlow's masked crc32c: a TFRecord, whose writer (C++)
    follows the 8-byte length with its masked crc32c and the data with the data's."""
    import tensorflow as tf

    path = tmp_path / "one.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(payload)
    record = path.read_bytes()
    assert len(record) == 8 + 4 + len(payload) + 4
    assert masked_crc32c(record[:8]) == int.from_bytes(record[8:12], "little")
    assert masked_crc32c(payload) == int.from_bytes(record[-4:], "little")


def test_a_flipped_byte_in_a_bn_tensor_is_refused_naming_it(built: Built, tmp_path: Path) -> None:
    """One byte of top_bn's gamma changed in a copy of the shard: bntui refuses it with one line
    naming the shard and the tensor, as TensorFlow's own reader refuses that tensor (and only
    that one); the original file is untouched and still reads."""
    import tensorflow as tf

    source = built.path("ckpt/w.data-00000-of-00001")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    shutil.copytree(built.path("ckpt"), tmp_path / "ckpt")
    shard = tmp_path / "ckpt" / "w.data-00000-of-00001"
    entries = bundle_entries(tmp_path / "ckpt" / "w")
    key = "layer_with_weights-1/gamma/.ATTRIBUTES/VARIABLE_VALUE"
    assert entries[key].size == 12  # top_bn's three float32 gammas
    flip_byte(shard, entries[key].offset + 5)
    with pytest.raises(BundleError) as caught:
        open_model(tmp_path / "ckpt")
    assert str(caught.value) == f"{shard}: the bytes of {key!r} do not match their checksum (the file is damaged)"
    reader = tf.train.load_checkpoint(str(tmp_path / "ckpt" / "w"))
    with pytest.raises(tf.errors.OpError, match="Checksum does not match"):
        reader.get_tensor(key)
    for other in entries:
        if other != key:
            reader.get_tensor(other)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    assert _same_bits(open_model(built.path("ckpt")).find("top_bn").gamma, built.expected["top_bn"]["gamma"])
