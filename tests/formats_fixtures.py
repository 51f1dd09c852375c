"""Real TensorFlow-written files in the formats of issue 11, built once per test session.

Everything is written by TensorFlow or Keras themselves (tf_keras ``model.save(dir)`` and
``save_weights``, Keras 3 ``model.export``, a TF1 ``Saver``), except two forms no installed
package writes any more, made here from real files following their documented format:

- the TF 2.4 SavedModel, whose Keras metadata sat in ``saved_model.pb``'s object graph
  (``SavedUserObject.metadata``) instead of ``keras_metadata.pb``: made by moving each record
  of a real ``keras_metadata.pb`` into the object graph node it names, with TF's own protobuf
  classes, and deleting ``keras_metadata.pb``;
- TF.js layers models: the ``tensorflowjs`` converter pulls in TensorFlow Decision Forests and
  JAX, so :func:`write_tfjs` follows its ``keras_h5_conversion`` and ``write_weights``: topology
  ``{"keras_version", "backend", "model_config"}``, weights named as in the .h5 without
  ``:0``, concatenated little-endian and cut into shards, optionally quantized.

The expected values come from Keras (the weights set on the layers) or from TensorFlow's own
readers (``tf.train.load_checkpoint`` and protobuf classes), never from bntui.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BN_ROLES = ("gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev")


@dataclass(frozen=True)
class Built:
    """The files, and what Keras holds for every BN layer: path -> role -> array."""

    folder: Path
    expected: dict[str, dict[str, np.ndarray]]
    k3_expected: dict[str, dict[str, np.ndarray]]
    tf1_expected: dict[str, dict[str, np.ndarray]]

    def path(self, name: str) -> Path:
        return self.folder / name


def _bn_weights(layer: object) -> dict[str, np.ndarray]:
    return {w.name.split("/")[-1].removesuffix(":0"): np.array(w.numpy()) for w in layer.weights}  # type: ignore[attr-defined]


def _randomise(layer: object, rng: np.random.Generator) -> None:
    """Distinct, non-default values in every weight, so a swapped role cannot go unnoticed."""
    layer.set_weights([rng.uniform(0.25, 3.0, w.shape).astype(w.dtype) for w in layer.get_weights()])  # type: ignore[attr-defined]


def _tf_keras_model(folder: Path, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """A Functional with a nested Sequential, a renorm BN without center, a TimeDistributed BN
    and a channels-first conv BN: saved as SavedModel, .h5 and TF2 checkpoint."""
    import tf_keras as k

    encoder = k.Sequential([k.layers.Dense(3, input_shape=(4,)), k.layers.BatchNormalization(name="bn_1", epsilon=0.01)],
                           name="encoder")
    inputs = k.Input((4,))
    x = encoder(inputs)
    x = k.layers.BatchNormalization(name="top_bn", center=False, renorm=True, momentum=0.9)(x)
    x = k.layers.Reshape((3, 1))(x)
    x = k.layers.TimeDistributed(k.layers.BatchNormalization(name="td_bn", epsilon=0.005))(x)
    x = k.layers.Reshape((3, 1, 1))(x)
    x = k.layers.BatchNormalization(name="cf_bn", axis=1)(x)
    model = k.Model(inputs, x, name="outer")
    layers = {"encoder/bn_1": encoder.get_layer("bn_1"), "top_bn": model.get_layer("top_bn"),
              "time_distributed/td_bn": model.get_layer("time_distributed").layer, "cf_bn": model.get_layer("cf_bn")}
    for layer in layers.values():
        _randomise(layer, rng)
    model.save(folder / "sm")
    with warnings.catch_warnings():  # "HDF5 is legacy": the twin is wanted in exactly that format
        warnings.simplefilter("ignore", UserWarning)
        model.save(folder / "twin.h5")
    model.save_weights(str(folder / "ckpt" / "w"))
    return {path: _bn_weights(layer) for path, layer in layers.items()}


def tf24_form(source: Path, target: Path) -> None:
    """The TF 2.4 layout: keras_metadata.pb's records moved into saved_model.pb's object graph."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tf_keras.protobuf import saved_metadata_pb2

    shutil.copytree(source, target)
    metadata = saved_metadata_pb2.SavedMetadata()
    metadata.ParseFromString((target / "keras_metadata.pb").read_bytes())
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((target / "saved_model.pb").read_bytes())
    nodes = saved.meta_graphs[0].object_graph_def.nodes
    for record in metadata.nodes:
        user = nodes[record.node_id].user_object
        user.identifier = record.identifier
        user.metadata = record.metadata
        user.version.ParseFromString(record.version.SerializeToString())
    (target / "saved_model.pb").write_bytes(saved.SerializeToString())
    (target / "keras_metadata.pb").unlink()


def _keras3_export(folder: Path, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    import keras

    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(name="bn_1")],
                               name="encoder")
    inputs = keras.Input((4,))
    outputs = keras.layers.BatchNormalization(name="top_bn", center=False)(encoder(inputs))
    model = keras.Model(inputs, outputs)
    layers = {"encoder/bn_1": encoder.get_layer("bn_1"), "top_bn": model.get_layer("top_bn")}
    for layer in layers.values():
        _randomise(layer, rng)
    model.export(str(folder / "k3export"), format="tf_saved_model", verbose=False)
    return {path: {w.name: np.array(w.numpy()) for w in layer.weights} for path, layer in layers.items()}


def _tf1_checkpoint(folder: Path, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """A TF1 Saver checkpoint (name-based, with .meta): two fused BN ops, one NCHW."""
    import tensorflow as tf

    v1 = tf.compat.v1
    expected: dict[str, dict[str, np.ndarray]] = {}
    graph = tf.Graph()
    with graph.as_default():
        for scope, epsilon, layout in (("batch_normalization", 0.002, "NHWC"), ("block1/bn", 1e-5, "NCHW")):
            x = v1.placeholder(tf.float32, [None, 4, 4, 3] if layout == "NHWC" else [None, 3, 4, 4])
            with v1.variable_scope(scope):
                values = {role: rng.uniform(0.25, 3.0, 3).astype(np.float32) for role in BN_ROLES[:4]}
                variables = [v1.get_variable(role, initializer=values[role]) for role in BN_ROLES[:4]]
                y, _, _ = v1.nn.fused_batch_norm(x, *variables, epsilon=epsilon, is_training=False, data_format=layout)
            expected[scope] = values
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            saver.save(session, str(folder / "tf1" / "model.ckpt"))
            v1.saved_model.simple_save(session, str(folder / "tf1_savedmodel"), inputs={"x": x}, outputs={"y": y})
    return expected


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def write_tfjs(h5_path: Path, target: Path, *, quantize: str | None = None, shard_bytes: int = 40,
               bare_topology: bool = False) -> Path:
    """A TF.js layers model from a Keras .h5, as tensorflowjs' converter writes it."""
    target.mkdir(parents=True)
    with h5py.File(h5_path, "r") as h5:
        model_config = json.loads(h5.attrs["model_config"])
        version = str(h5.attrs["keras_version"])
        weights = []
        group = h5["model_weights"]
        for layer_name in group.attrs["layer_names"]:
            layer = group[_text(layer_name)]
            for name in layer.attrs["weight_names"]:
                weights.append((_text(name).removesuffix(":0"), np.array(layer[_text(name)])))
    entries, chunks = [], []
    for name, value in weights:
        entry: dict[str, object] = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        data = value.astype("<f4")
        if quantize == "float16":
            data = value.astype("<f2")
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        elif quantize in ("uint8", "uint16"):
            top = np.iinfo(quantize).max
            low, high = float(value.min()), float(value.max())
            scale = (high - low) / top if high > low else 1.0
            data = np.round((value - low) / scale).astype("<u1" if quantize == "uint8" else "<u2")
            entry["quantization"] = {"dtype": quantize, "min": low, "scale": scale, "original_dtype": "float32"}
        entries.append(entry)
        chunks.append(data.tobytes())
    blob = b"".join(chunks)
    count = max(1, -(-len(blob) // shard_bytes))
    paths = [f"group1-shard{i + 1}of{count}.bin" for i in range(count)]
    for index, name in enumerate(paths):
        (target / name).write_bytes(blob[index * shard_bytes:(index + 1) * shard_bytes])
    topology: dict[str, object] = {"keras_version": version, "backend": "tensorflow", "model_config": model_config}
    if bare_topology:
        topology = {**model_config, "keras_version": "tfjs-layers 4.22.0", "backend": "tensor_flow.js"}
    document = {"format": "layers-model", "generatedBy": f"keras v{version}", "convertedBy": "TensorFlow.js Converter",
                "modelTopology": topology, "weightsManifest": [{"paths": paths, "weights": entries}]}
    (target / "model.json").write_text(json.dumps(document))
    return target


@functools.cache
def build(folder: Path) -> Built:
    """Write every file once per session (several test modules share them): pass the same
    folder, such as ``tmp_path_factory.getbasetemp() / "formats"``."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(11)
    expected = _tf_keras_model(folder, rng)
    tf24_form(folder / "sm", folder / "sm_tf24")
    k3_expected = _keras3_export(folder, rng)
    tf1_expected = _tf1_checkpoint(folder, rng)
    write_tfjs(folder / "twin.h5", folder / "tfjs")
    for kind in ("uint8", "uint16", "float16"):
        write_tfjs(folder / "twin.h5", folder / f"tfjs_{kind}", quantize=kind)
    write_tfjs(folder / "twin.h5", folder / "tfjs_bare", bare_topology=True)
    return Built(folder, expected, k3_expected, tf1_expected)


def checkpoint_tensors(prefix: Path, node_ids: dict[str, int]) -> dict[str, dict[str, np.ndarray]]:
    """What TensorFlow reads for each layer: the object graph decoded by TF's own protobuf
    classes, node -> children named by role -> tensor key -> ``tf.train.load_checkpoint``."""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(str(prefix))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    found: dict[str, dict[str, np.ndarray]] = {}
    for path, node_id in node_ids.items():
        roles = {}
        for child in graph.nodes[node_id].children:
            if child.local_name in BN_ROLES:
                key = next(a.checkpoint_key for a in graph.nodes[child.node_id].attributes if a.name == "VARIABLE_VALUE")
                roles[child.local_name] = reader.get_tensor(key)
        found[path] = roles
    return found


def keras_metadata_node_ids(directory: Path) -> dict[str, int]:
    """Layer name -> node id of every BN record in keras_metadata.pb, decoded by tf_keras' protobuf class."""
    from tf_keras.protobuf import saved_metadata_pb2

    metadata = saved_metadata_pb2.SavedMetadata()
    metadata.ParseFromString((directory / "keras_metadata.pb").read_bytes())
    ids = {}
    for record in metadata.nodes:
        data = json.loads(record.metadata)
        if data.get("class_name") == "BatchNormalization":
            ids[data["name"]] = record.node_id
    return ids


def bundle_entries(prefix: Path) -> dict[str, Any]:
    """Tensor key -> ``BundleEntryProto`` of a bundle (``PREFIX.index``), each decoded by
    TensorFlow's own message class. TensorFlow has no Python reader of the LevelDB table around
    them, so that layer is bntui's ``read_table``."""
    from tensorflow.core.protobuf import tensor_bundle_pb2

    from bntui.core.io.tensor_bundle import read_table

    entries: dict[str, Any] = {}
    for key, value in read_table(prefix.with_name(prefix.name + ".index").read_bytes()).items():
        if key:
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(bytes(value))
            entries[key] = entry
    return entries


def flip_byte(path: Path, position: int) -> None:
    """Invert every bit of one byte of a file, in place."""
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))
