"""The object graph inside every TF2 checkpoint, and BN layers found by their variables.

A TF2 checkpoint (and a SavedModel's ``variables/``) stores, under the key
``_CHECKPOINTABLE_OBJECT_GRAPH``, a ``TrackableObjectGraph``: node 0 is the saved root, every
node lists its children by local name (``layer_with_weights-1``, ``gamma``...) and a variable
node names its tensor's key. The keys themselves (``variables/2/.ATTRIBUTES/VARIABLE_VALUE``)
say nothing reliable about which layer owns a tensor: the graph does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.io.protobuf_wire import Message, WireError
from bntui.core.io.tensor_bundle import TensorBundle
from bntui.core.layer_builder import ALL_ROLES, build_unconfigured
from bntui.core.model import BNLayer

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


@dataclass(frozen=True)
class GraphNode:
    """One trackable object: its children by local name, and its tensor if it is a variable."""

    children: dict[str, int]
    value_key: str | None
    full_name: str | None


class ObjectGraph(Sequence[GraphNode]):
    """The nodes of an object graph, each decoded when first asked for: a SavedModel's graph
    holds thousands of nodes (functions, signatures...), and a BN layer needs five of them."""

    def __init__(self, data: bytes, where: str) -> None:
        self._where = where
        try:
            self._raw = Message(data).raw(1)
        except WireError as err:
            raise ModelFileError(f"{where}: damaged checkpoint object graph ({err})") from None
        self._decoded: dict[int, GraphNode] = {}

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> GraphNode: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[GraphNode]: ...

    def __getitem__(self, index: int | slice) -> GraphNode | Sequence[GraphNode]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        node = self._decoded.get(index)
        if node is None:
            node = self._decoded[index] = self._decode(index)
        return node

    def _decode(self, index: int) -> GraphNode:
        try:
            proto = Message(self._raw[index])
            children: dict[str, int] = {}
            for reference in proto.messages(1):
                children.setdefault(reference.text(2), reference.varint(1))
            value_key = full_name = None
            for attribute in proto.messages(2):
                if attribute.text(1) == "VARIABLE_VALUE":
                    value_key, full_name = attribute.text(3), attribute.text(2)
        except WireError as err:
            raise ModelFileError(f"{self._where}: damaged checkpoint object graph ({err})") from None
        if any(child >= len(self._raw) for child in children.values()):
            raise ModelFileError(f"{self._where}: the checkpoint object graph refers to a node it does not have")
        return GraphNode(children=children, value_key=value_key, full_name=full_name)


def read_object_graph(bundle: TensorBundle) -> ObjectGraph | None:
    """The checkpoint's object graph, or None for a name-based (TF1) checkpoint."""
    if OBJECT_GRAPH_KEY not in bundle:
        return None
    values = bundle.strings(OBJECT_GRAPH_KEY)
    if len(values) != 1:
        raise ModelFileError(f"{bundle.prefix}: the object graph tensor holds {len(values)} values, not 1")
    return ObjectGraph(values[0], str(bundle.prefix))


def variable_keys(nodes: Sequence[GraphNode], node_id: int) -> dict[str, str]:
    """Role -> tensor key for the BN variables that are children of one node."""
    children = nodes[node_id].children
    keys: dict[str, str] = {}
    for role in ALL_ROLES:
        child = children.get(role)
        if child is not None and nodes[child].value_key:
            keys[role] = nodes[child].value_key  # type: ignore[assignment]
    return keys


def read_roles(bundle: TensorBundle, keys: dict[str, str]) -> dict[str, np.ndarray]:
    """The tensors of one layer, read by key (only these bytes of the shards are touched)."""
    return {role: bundle.tensor(key) for role, key in keys.items()}


def object_paths(nodes: Sequence[GraphNode]) -> dict[int, str]:
    """Each node's first path of local names from the root, depth first in the order children
    are listed, which is the order of a model's layers (the dict keeps that order)."""
    paths: dict[int, str] = {}
    stack = [(0, "")] if nodes else []
    while stack:
        node_id, path = stack.pop()
        if node_id in paths:
            continue
        paths[node_id] = path
        children = [(child, f"{path}/{name}".lstrip("/")) for name, child in nodes[node_id].children.items()]
        stack.extend(reversed(children))
    return paths


def bn_layers_from_graph(bundle: TensorBundle, nodes: Sequence[GraphNode], note: str) -> list[BNLayer]:
    """BN layers of an object-based checkpoint without a config: every node with a moving mean
    and a moving variance among its children, named after its variables (``bn_1/gamma``)."""
    candidates = [(node_id, keys) for node_id in range(len(nodes))
                  if {"moving_mean", "moving_variance"} <= (keys := variable_keys(nodes, node_id)).keys()]
    if not candidates:
        return bn_layers_by_name(bundle, _named_variables(nodes), note)
    paths = object_paths(nodes)
    order = {node_id: index for index, node_id in enumerate(paths)}
    candidates.sort(key=lambda candidate: order.get(candidate[0], len(order) + candidate[0]))
    names = [_layer_name(nodes, node_id) or paths.get(node_id, str(node_id)) for node_id, _ in candidates]
    layers = []
    for (node_id, keys), name in zip(candidates, names):
        path = name if names.count(name) == 1 else paths.get(node_id, str(node_id))
        layers.append(build_unconfigured(path, read_roles(bundle, keys), notes=(note,)))
    return layers


def _layer_name(nodes: Sequence[GraphNode], node_id: int) -> str | None:
    """``bn_1`` from the full name ``bn_1/moving_mean`` of the layer's moving mean."""
    child = nodes[node_id].children["moving_mean"]
    full_name = nodes[child].full_name or ""
    prefix, _, role = full_name.rpartition("/")
    return prefix if prefix and role == "moving_mean" else None


def _named_variables(nodes: Sequence[GraphNode]) -> dict[str, str]:
    """Full variable name -> key, once per variable (Keras 3 exports list each one twice)."""
    named: dict[str, str] = {}
    for node in nodes:
        if node.value_key and node.full_name:
            named.setdefault(node.full_name, node.value_key)
    return named


def group_by_name(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Layer prefix -> role -> variable name, for prefixes with a moving mean and variance.

    Variable names end in their role (``block1/bn/gamma``, ``bn/moving_mean:0``); anything else
    (kernels, optimizer slots such as ``bn/gamma/Adam``) is left alone."""
    groups: dict[str, dict[str, str]] = {}
    for name in names:
        prefix, _, role = name.removesuffix(":0").rpartition("/")
        if role in ALL_ROLES and prefix:
            groups.setdefault(prefix, {})[role] = name
    return {prefix: roles for prefix, roles in groups.items() if {"moving_mean", "moving_variance"} <= roles.keys()}


def bn_layers_by_name(bundle: TensorBundle, named: dict[str, str], note: str) -> list[BNLayer]:
    """BN layers recognised by their variables' names alone, settings assumed."""
    layers = []
    for prefix, roles in group_by_name(named).items():
        keys = {role: named[name] for role, name in roles.items()}
        layers.append(build_unconfigured(prefix, read_roles(bundle, keys), notes=(note,)))
    return layers
