"""TF SavedModel directories written by tf.keras' ``model.save('dir')`` (TF 2.0 to 2.15).

The Keras config of every layer is stored as JSON metadata, one record per object of the
SavedModel's object graph: in ``keras_metadata.pb`` (TF 2.5 and later, with each object's
``node_path``), or inside ``saved_model.pb``'s object graph (TF 2.4 and earlier). The
variables are a tensor bundle under ``variables/``, whose object graph has the same node ids:
metadata node id -> node -> children ``gamma``/``beta``/``moving_mean``/``moving_variance``
-> tensor keys. Keras 3's ``model.export()`` writes no Keras metadata at all; its BN layers
are then found by their variables' names and their settings marked assumed.

Nothing here loads or runs the SavedModel: its graph functions are never touched, which is
also why capturing a layer's real input from a SavedModel is refused (:data:`CAPTURE_REFUSAL`).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bntui.core.errors import ModelFileError
from bntui.core.io.checkpoint import TF1_NOTE, FusedOps, fused_note, fused_ops, name_based_layers
from bntui.core.io.object_graph import (
    GraphNode,
    bn_layers_from_graph,
    read_object_graph,
    read_roles,
    variable_keys,
)
from bntui.core.io.protobuf_wire import LENGTH_DELIMITED, Message, WireError
from bntui.core.io.tensor_bundle import TensorBundle
from bntui.core.keras_config import BN_CLASS_NAMES, bn_settings, build_tree
from bntui.core.layer_builder import build_layer
from bntui.core.model import BNLayer, ModelInfo

#: Every SavedModel's ModelInfo.format starts with this.
FORMAT = "TF SavedModel"
CAPTURE_REFUSAL = (
    "capturing a layer's input needs the model itself, and loading a SavedModel runs the graph "
    "functions stored in it; bntui reads SavedModels without running them"
)
EXPORT_NOTE = (
    "no Keras config in this SavedModel (Keras 3 model.export() and tf.saved_model.save keep only the "
    "graph and the variables): BN layers are found by their variables' names; axis, epsilon and momentum "
    "are Keras defaults"
)

KERAS_METADATA = "keras_metadata.pb"
SAVED_MODEL = "saved_model.pb"
#: Children every Keras object has that are never layers (variable lists, functions, the
#: ``keras_api`` helper): the walk of TF 2.4's object graph need not decode them.
_NOT_LAYERS = frozenset({
    "variables", "trainable_variables", "non_trainable_variables", "regularization_losses", "keras_api", "__call__",
    "_default_save_signature", "signatures", "layer_metrics", "layer_regularization_losses", "metrics",
})
#: Largest keras_metadata.pb / object graph read (a config per layer; ResNet50's is ~1 MB).
MAX_METADATA_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class MetadataNode:
    """One Keras object's metadata record: its node id, its path from the root, its JSON."""

    node_id: int
    node_path: str
    identifier: str
    metadata: dict[str, Any]


def savedmodel_dir(path: Path) -> Path | None:
    """The SavedModel directory ``path`` names (the directory, its saved_model.pb or its
    keras_metadata.pb), or None."""
    if path.is_dir():
        return path if (path / SAVED_MODEL).is_file() else None
    if path.name in (SAVED_MODEL, KERAS_METADATA) and (path.parent / "variables").is_dir():
        return path.parent
    return None


def read_savedmodel(directory: Path, shown_path: str) -> ModelInfo:
    """Every BN layer of a SavedModel directory, with its config where Keras stored one."""
    nodes, form = _metadata_nodes(directory)
    variables = directory / "variables" / "variables"
    with TensorBundle(variables) as bundle:
        graph = read_object_graph(bundle)
        if graph is None:  # a TF1 SavedModel: name-based variables, no object graph, no Keras metadata
            fused = _tf1_fused_ops(directory / SAVED_MODEL)
            note = fused_note(fused, "saved_model.pb")
            layers = name_based_layers(bundle, fused, note)
            return ModelInfo(path=shown_path, format=f"{FORMAT} (TF1, no Keras config)", keras_version=None,
                             layers=tuple(layers), notes=(TF1_NOTE, note))
        bn_nodes = [node for node in nodes if node.metadata.get("class_name") in BN_CLASS_NAMES]
        root = next((node.metadata for node in nodes if node.node_id == 0), {})
        if not nodes:
            layers = bn_layers_from_graph(bundle, graph, EXPORT_NOTE)
            return ModelInfo(path=shown_path, format=f"{FORMAT} (no Keras config)", keras_version=None,
                             layers=tuple(layers), notes=(EXPORT_NOTE,))
        layers = _configured_layers(bundle, graph, nodes, bn_nodes, root)
    model_name = root.get("name") if isinstance(root.get("name"), str) else None
    version = root.get("keras_version")
    return ModelInfo(path=shown_path, format=f"{FORMAT} ({form})", keras_version=str(version) if version else None,
                     layers=tuple(layers), model_name=model_name)


def _configured_layers(bundle: TensorBundle, graph: Sequence[GraphNode], nodes: list[MetadataNode],
                       bn_nodes: list[MetadataNode], root: dict[str, Any]) -> list[BNLayer]:
    names = {node.node_path: str(node.metadata.get("name", "")) for node in nodes}
    tree_order: dict[str, tuple[int, str | None]] = {}
    model_config = root.get("model_config")
    if not isinstance(model_config, dict) and isinstance(root.get("config"), dict) and "layers" in root["config"]:
        model_config = {"class_name": root.get("class_name"), "config": root["config"]}  # before TF 2.5: no model_config
    if isinstance(model_config, dict):
        for index, (names_path, config_layer) in enumerate(build_tree(model_config).walk_bn()):
            tree_order.setdefault("/".join(names_path), (index, config_layer.inbound))
    version = root.get("keras_version")
    built: list[tuple[int, BNLayer]] = []
    for position, node in enumerate(bn_nodes):
        parts = node.node_path.split(".")
        path = "/".join(names[prefix] for i in range(2, len(parts) + 1)
                        if (prefix := ".".join(parts[:i])) in names and names[prefix])
        config = node.metadata.get("config")
        config = config if isinstance(config, dict) else {}
        if not 0 <= node.node_id < len(graph):
            raise ModelFileError(f"BN layer {path!r}: metadata node {node.node_id} is not in the variables' object graph")
        keys = variable_keys(graph, node.node_id)
        settings, sources = bn_settings(config)
        order, inbound = tree_order.get(path, (len(tree_order) + position, None))
        layer = build_layer(name=path.rsplit("/", 1)[-1], path=path, settings=settings, sources=sources,
                            datasets=read_roles(bundle, keys), inbound=inbound,
                            keras_version=str(version) if version else None)
        built.append((order, layer))
    return [layer for _, layer in sorted(built, key=lambda pair: pair[0])]


def _tf1_fused_ops(model_file: Path) -> FusedOps:
    """The FusedBatchNorm ops of a TF1 SavedModel's first graph (a TF1 graph holds variables,
    not constants, so saved_model.pb stays small; a huge one is not read)."""
    try:
        if model_file.stat().st_size > MAX_METADATA_BYTES:
            return {}
        return fused_ops(Message(model_file.read_bytes()).message(2))
    except WireError as err:
        raise ModelFileError(f"{model_file}: damaged SavedModel graph ({err})") from None
    except OSError as err:
        raise ModelFileError(f"{model_file}: cannot read ({err.strerror or err})") from None


def _metadata_nodes(directory: Path) -> tuple[list[MetadataNode], str]:
    """The Keras metadata records, from keras_metadata.pb or else saved_model.pb, and the form."""
    metadata_file = directory / KERAS_METADATA
    try:
        if metadata_file.is_file():
            if metadata_file.stat().st_size > MAX_METADATA_BYTES:
                raise ModelFileError(f"{metadata_file}: over {MAX_METADATA_BYTES} bytes; refusing to read it")
            records = Message(metadata_file.read_bytes()).messages(1)
            nodes = [_node(record.varint(2), record.text(3), record.text(4), record.raw(5)) for record in records]
            return [node for node in nodes if node is not None], "keras_metadata.pb"
        model_file = directory / SAVED_MODEL
        with open(model_file, "rb") as handle:
            graph_bytes = _object_graph_bytes(handle, model_file.stat().st_size)
        if graph_bytes is None:
            return [], "no object graph"
        return _nodes_from_object_graph(Message(graph_bytes)), "metadata in saved_model.pb"
    except WireError as err:
        raise ModelFileError(f"{directory}: damaged SavedModel metadata ({err})") from None
    except FileNotFoundError as err:
        raise ModelFileError(f"{err.filename}: no such file") from None
    except OSError as err:
        raise ModelFileError(f"{directory}: cannot read ({err.strerror or err})") from None


def _node(node_id: int, node_path: str, identifier: str, metadata: list[Any]) -> MetadataNode | None:
    """A record whose metadata is a Keras layer's JSON, or None for other objects."""
    if not identifier.startswith("_tf_keras") or not metadata:
        return None
    text = bytes(metadata[-1]).decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ModelFileError(f"the Keras metadata of {node_path or node_id} is not valid JSON ({err})") from None
    return MetadataNode(node_id, node_path, identifier, data) if isinstance(data, dict) else None


def _nodes_from_object_graph(graph: Message) -> list[MetadataNode]:
    """TF 2.4's form: ``SavedObject.user_object`` holds identifier and metadata; there is no
    node_path, so paths are walked from the root through Keras objects, breadth first."""
    objects = graph.raw(1)
    users: dict[int, Message] = {}

    def user(node_id: int) -> Message:
        """An object's user_object, decoded once and only when reached: the graph also holds
        thousands of functions and signatures that no walk through layers gets to."""
        if node_id not in users:
            users[node_id] = Message(objects[node_id]).message(4)
        return users[node_id]

    paths = {0: "root"} if objects else {}
    queue = deque(paths)
    while queue:
        node_id = queue.popleft()
        for reference in Message(objects[node_id]).messages(1):
            child, name = reference.varint(1), reference.text(2)
            if name in _NOT_LAYERS or name.startswith(("call_and_return", "trace_")):
                continue
            if child < len(objects) and child not in paths and user(child).text(1).startswith("_tf_keras"):
                paths[child] = f"{paths[node_id]}.{name}"
                queue.append(child)
    found = [_node(node_id, path, user(node_id).text(1), user(node_id).raw(3)) for node_id, path in paths.items()]
    return [record for record in found if record is not None]


def _object_graph_bytes(handle: BinaryIO, size: int) -> bytes | None:
    """``SavedModel.meta_graphs[0].object_graph_def``, read without reading the (large) graph:
    the fields around it are skipped by seeking, so memory stays flat in the file's size."""
    end = size
    for wanted in (2, 7):  # SavedModel.meta_graphs, then MetaGraphDef.object_graph_def
        found = _find_field(handle, handle.tell(), end, wanted)
        if found is None:
            return None
        start, length = found
        if length > MAX_METADATA_BYTES:
            raise ModelFileError(f"the SavedModel's object graph claims {length} bytes; refusing to read it")
        handle.seek(start)
        end = start + length
    data = handle.read(end - handle.tell())
    return data


def _find_field(handle: BinaryIO, pos: int, end: int, wanted: int) -> tuple[int, int] | None:
    """Start and length of the first length-delimited field ``wanted`` between pos and end."""
    while pos < end:
        handle.seek(pos)
        key, pos = _file_varint(handle, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == LENGTH_DELIMITED:
            length, pos = _file_varint(handle, pos)
            if pos + length > end:
                raise WireError(f"field {number} claims {length} bytes; {end - pos} are left")
            if number == wanted:
                return pos, length
            pos += length
        elif wire_type == 0:
            _, pos = _file_varint(handle, pos)
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        else:
            raise WireError(f"field {number} has wire type {wire_type}")
    return None


def _file_varint(handle: BinaryIO, pos: int) -> tuple[int, int]:
    data = handle.read(10)
    result = 0
    for index, byte in enumerate(data):
        result |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            handle.seek(pos + index + 1)
            return result, pos + index + 1
    raise WireError("saved_model.pb is cut off inside a number")
