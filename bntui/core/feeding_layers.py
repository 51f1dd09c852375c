"""The layer that feeds a BN layer: its config, who else reads its output, its kernel and bias.

Folding a BN into the conv or dense before it needs that layer's weights, which the readers
deliberately never open (a ResNet's kernels are most of its file). This module opens them
only for the feeding layers asked about, read-only, with h5py, from both layouts:

- legacy HDF5 (Keras 2, tf.keras, Keras 3's ``.h5``): ``model_weights/<top layer>/`` lists
  ``weight_names`` such as ``conv/kernel:0`` or ``inner/conv/kernel``;
- Keras 3 (``model.weights.h5`` inside a ``.keras`` zip): unnamed ``vars/0``, ``vars/1`` in
  creation order, under groups named after the class and paired with the config by
  :func:`bntui.core.keras_v3.pair_children`, the readers' own pairing.

The config is parsed as JSON; nothing it names is imported or run. Like every read of HDF5,
call this inside the fork guard (see :mod:`bntui.cli.fold`).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.guarded_open import PendingRead
from bntui.core.hdf5_attrs import name_list_attr, text_attr
from bntui.core.keras_config import ConfigLayer, build_tree, parse_config_json
from bntui.core.keras_v3 import pair_children
from bntui.core.model import BNLayer, FeedingLayer, ModelInfo
from bntui.core.zip_member import open_member, read_small_member

#: The weights of each layer class that can take a folded BN, in the order Keras creates them.
#: ``bias`` is dropped when the config says ``use_bias: false``.
KERNEL_ROLES: dict[str, tuple[str, ...]] = {
    "Conv1D": ("kernel", "bias"),
    "Conv2D": ("kernel", "bias"),
    "Conv3D": ("kernel", "bias"),
    "Conv1DTranspose": ("kernel", "bias"),
    "Conv2DTranspose": ("kernel", "bias"),
    "Conv3DTranspose": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "DepthwiseConv1D": ("depthwise_kernel", "bias"),
    "DepthwiseConv2D": ("depthwise_kernel", "bias"),
    "SeparableConv1D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
}

_INDEX_SUFFIX = re.compile(r":\d+$")


#: What h5py and zipfile raise on damaged files (as in :mod:`bntui.core.reader`).
_DAMAGE = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, EOFError, zipfile.BadZipFile)


def read_feeding_layers(
    path: str | os.PathLike[str], bn_paths: list[str], *, with_weights: bool = True
) -> dict[str, FeedingLayer]:
    """The feeding layer of each BN path, with its weights where its class has a kernel
    (unless ``with_weights`` is False: the port view needs only the config)."""
    try:
        return _read(Path(path), bn_paths, with_weights)
    except ModelFileError:
        raise
    except _DAMAGE as err:
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise ModelFileError(f"{path}: damaged file, reading the layers that feed BN layers ({detail})") from None


def _read(file_path: Path, bn_paths: list[str], with_weights: bool) -> dict[str, FeedingLayer]:
    if file_path.is_dir() or not (_has_signature(file_path, b"PK\x03\x04") or h5py.is_hdf5(file_path)):
        return {bn: _unknown(bn, "feeding layers are read from .keras and HDF5 files only") for bn in bn_paths}
    with open(file_path, "rb") as raw:
        if _has_signature(file_path, b"PK\x03\x04"):
            with zipfile.ZipFile(raw) as archive:
                top = parse_config_json(read_small_member(archive, "config.json"))
                with h5py.File(open_member(archive, raw, "model.weights.h5"), "r") as h5:
                    read = (lambda found: _v3_weights(h5, found)) if with_weights else _no_weights
                    return {bn: _find(top, bn, read) for bn in bn_paths}
    with h5py.File(file_path, "r") as h5:
        config_text = text_attr(h5, "model_config")
        if config_text is None:
            return {bn: _unknown(bn, "the file holds weights only, no config: which layer feeds a BN is unknown")
                    for bn in bn_paths}
        top = parse_config_json(config_text)
        root = h5.get("model_weights", h5)
        read = (lambda found: _legacy_weights(root, found)) if with_weights else _no_weights
        return {bn: _find(top, bn, read) for bn in bn_paths}


def _has_signature(file_path: Path, signature: bytes) -> bool:
    with open(file_path, "rb") as handle:
        return handle.read(len(signature)) == signature


def _unknown(bn_path: str, problem: str) -> FeedingLayer:
    return FeedingLayer(bn_path=bn_path, name=None, path=None, class_name=None, problem=problem)


@dataclass
class _Located:
    """A feeding layer found in the config: its names from the top and its raw dict."""

    names: tuple[str, ...]
    layer_dict: dict[str, Any]
    #: The ConfigLayer nodes of the containers from the top down to the feeding layer's.
    containers: list[ConfigLayer]
    class_name: str
    config: dict[str, Any]


def _members(layer_dict: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The member dicts of a model config (Keras 2.0 stores a Sequential as a bare list)."""
    raw = layer_dict.get("config")
    members = raw if isinstance(raw, list) else raw.get("layers") if isinstance(raw, dict) else None
    if not isinstance(members, list):
        return None
    return [member for member in members if isinstance(member, dict)]


def _name(layer_dict: dict[str, Any]) -> str:
    config = layer_dict.get("config")
    inner = config.get("name") if isinstance(config, dict) else None
    return str(layer_dict.get("name") or inner or layer_dict.get("class_name", "?"))


def _find(top: dict[str, Any], bn_path: str, read_weights: Callable[[_Located], dict[str, np.ndarray]]) -> FeedingLayer:
    """Walk the config to the BN, then to the layer feeding it, and describe that layer."""
    names = tuple(bn_path.split("/"))
    container = top
    nodes = [build_tree(top)]
    for depth, name in enumerate(names[:-1]):
        members = _members(container)
        child = next((m for m in members or [] if _name(m) == name), None)
        if child is None or _members(child) is None:
            where = "a wrapper or custom layer" if child is not None else "not a model of the config"
            return _unknown(bn_path, f"{'/'.join(names[: depth + 1])} is {where}: the BN's input is not in the config")
        container = child
        nodes.append(next(node for node in nodes[-1].children if node.name == name))
    members = _members(container) or []
    bn_dict = next((m for m in members if _name(m) == names[-1]), None)
    if bn_dict is None:
        return _unknown(bn_path, "the BN layer is not in the config")
    sequential = _is_sequential(container)
    rank = _build_rank(bn_dict)
    inbound = _inbound_names(bn_dict.get("inbound_nodes"))
    if sequential:
        position = members.index(bn_dict)
        before = [m for m in members[:position] if m.get("class_name") != "InputLayer"]
        inbound = [_name(before[-1])] if before else []
    if not inbound:
        return replace(_unknown(bn_path, "the BN is the first layer of its model: its input comes from outside"),
                       bn_input_rank=rank)
    if len(set(inbound)) > 1:
        return replace(_unknown(bn_path, f"the BN has several inputs ({', '.join(sorted(set(inbound)))})"),
                       bn_input_rank=rank)
    feeder = next((m for m in members if _name(m) == inbound[0]), None)
    if feeder is None:
        return replace(_unknown(bn_path, f"the layer feeding the BN ({inbound[0]}) is not in its model's config"),
                       bn_input_rank=rank)
    raw_config = feeder.get("config")
    config = raw_config if isinstance(raw_config, dict) else {}
    class_name = str(feeder.get("class_name", "?"))
    consumers, outputs = _readers(container, members, _name(feeder), sequential)
    calls = len(feeder.get("inbound_nodes") or []) if not sequential else 1
    found = _Located(names=(*names[:-1], _name(feeder)), layer_dict=feeder, containers=nodes,
                     class_name=class_name, config=config)
    weights = read_weights(found) if class_name in KERNEL_ROLES and _members(feeder) is None else {}
    return FeedingLayer(
        bn_path=bn_path,
        name=_name(feeder),
        path="/".join(found.names),
        class_name=class_name,
        config=config,
        consumers=tuple(consumers),
        calls=max(calls, 1),
        is_model_output=outputs,
        weights=weights,
        bn_input_rank=next((r for r in (rank, _conv_rank(class_name), _declared_rank(config)) if r is not None), None),
    )


def _build_rank(layer_dict: dict[str, Any]) -> int | None:
    """The input rank recorded in Keras 3's ``build_config``, where there is one."""
    build = layer_dict.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None
    return len(shape) if isinstance(shape, list) else None


def _declared_rank(config: dict[str, Any]) -> int | None:
    """An InputLayer's rank, from ``batch_shape`` (Keras 3) or ``batch_input_shape`` (Keras 2)."""
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    return len(shape) if isinstance(shape, list) else None


def _conv_rank(class_name: str) -> int | None:
    """A conv's output rank from its class name (``Conv2D`` -> 4), None for other classes."""
    match = re.search(r"([123])D(Transpose)?$", class_name)
    return int(match.group(1)) + 2 if match and class_name in KERNEL_ROLES else None


def _is_sequential(container: dict[str, Any]) -> bool:
    """Sequential models (and Keras 2.0's bare member lists) chain members in order."""
    return container.get("class_name") == "Sequential" or isinstance(container.get("config"), list)


def _inbound_names(nodes: Any) -> list[str]:
    """Every layer name an ``inbound_nodes`` entry refers to, in either Keras format."""
    found: list[str] = []
    if isinstance(nodes, dict):
        history = nodes.get("keras_history")
        if isinstance(history, list) and history and isinstance(history[0], str):
            return [history[0]]
        for value in nodes.values():
            found.extend(_inbound_names(value))
    elif isinstance(nodes, list):
        if len(nodes) >= 3 and isinstance(nodes[0], str) and isinstance(nodes[1], int):
            return [nodes[0]]
        for value in nodes:
            found.extend(_inbound_names(value))
    return found


def _readers(container: dict[str, Any], members: list[dict[str, Any]], name: str, sequential: bool) -> tuple[list[str], bool]:
    """The layers that read ``name``'s output, and whether it is also an output of the model."""
    chained = [m for m in members if m.get("class_name") != "InputLayer"]
    if sequential:
        names = [_name(m) for m in chained]
        position = names.index(name)
        return names[position + 1 : position + 2], position == len(names) - 1
    readers = [_name(m) for m in members for ref in _inbound_names(m.get("inbound_nodes")) if ref == name]
    raw = container.get("config")
    outputs = _inbound_names(raw.get("output_layers")) if isinstance(raw, dict) else []
    return readers, name in outputs


def _roles(found: _Located) -> tuple[str, ...]:
    roles = KERNEL_ROLES[found.class_name]
    return roles if found.config.get("use_bias", True) else tuple(role for role in roles if role != "bias")


def _read_array(dataset: Any, where: str) -> np.ndarray:
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{where} is not a dataset")
    array = np.asarray(dataset[()])
    if array.dtype.kind not in "fiu":
        raise ModelFileError(f"{where} holds {array.dtype}, not numbers")
    return array


def _legacy_weights(root: h5py.Group, found: _Located) -> dict[str, np.ndarray]:
    """Weights under ``model_weights/<top layer>``, whose names start with the layer's scope."""
    group = root.get(found.names[0])
    if not isinstance(group, h5py.Group):
        raise ModelFileError(f"layer {found.names[0]!r} is in the config but its weights are not in the file")
    scopes = {"/".join(found.names), "/".join(found.names[1:]), found.names[-1]}
    listed = [name for name in name_list_attr(group, "weight_names")
              if _INDEX_SUFFIX.sub("", name).rpartition("/")[0] in scopes]
    roles = _roles(found)
    if len(listed) != len(roles):
        raise ModelFileError(
            f"{'/'.join(found.names)} has {len(listed)} weights in the file; its config needs {len(roles)} ({', '.join(roles)})"
        )
    return {role: _read_array(group.get(name), f"{'/'.join(found.names)}/{role}") for role, name in zip(roles, listed)}


def _no_weights(found: _Located) -> dict[str, np.ndarray]:
    return {}


def _v3_weights(h5: h5py.File, found: _Located) -> dict[str, np.ndarray]:
    """Weights of a Keras 3 file: ``layers/<group>/.../vars/<i>``, groups paired as the reader does."""
    group: h5py.Group = h5
    node = found.containers[0]
    for depth, name in enumerate(found.names):
        layers_group = group.get("layers")
        if not isinstance(layers_group, h5py.Group):
            raise ModelFileError(f"{'/'.join(found.names[: depth + 1])}: no weights group in the file")
        key = next((key for key, child in pair_children(layers_group, node) if child is not None and child.name == name), None)
        if key is None:
            raise ModelFileError(f"{'/'.join(found.names[: depth + 1])} is in the config but its weights are not in the file")
        group = layers_group[key]
        if depth + 1 < len(found.names):
            node = found.containers[depth + 1]
    holder = group.get("vars")
    keys = sorted((key for key in holder if key.isdigit()), key=int) if isinstance(holder, h5py.Group) else []
    roles = _roles(found)
    if len(keys) != len(roles):
        raise ModelFileError(
            f"{'/'.join(found.names)} has {len(keys)} variables; its config needs {len(roles)} ({', '.join(roles)})"
        )
    return {role: _read_array(holder[key], f"{'/'.join(found.names)}/{role}") for role, key in zip(roles, keys)}


class _ReadWithFeeding(PendingRead):
    """The fork-guarded read of the model, extended to the feeding layers of some BN layers:
    their weights are HDF5 too, so they are read under the same deadline."""

    def __init__(self, path: str | os.PathLike[str], layer: str | None, with_weights: bool) -> None:
        self.layer, self.with_weights = layer, with_weights
        super().__init__(path)

    def _run(self) -> tuple[ModelInfo, list[BNLayer], dict[str, FeedingLayer]]:
        model = super()._run()
        layers = [model.find(self.layer)] if self.layer else list(model.layers)
        return model, layers, read_feeding_layers(self.path, [layer.path for layer in layers],
                                                  with_weights=self.with_weights)


def open_with_feeding(
    path: str | os.PathLike[str], layer: str | None = None, *, with_weights: bool = True
) -> tuple[ModelInfo, list[BNLayer], dict[str, FeedingLayer]]:
    """The model, its BN layers (or the one named ``layer``) and what feeds each, read in a
    forked child with a deadline (see :mod:`bntui.core.guarded_open`)."""
    result: tuple[ModelInfo, list[BNLayer], dict[str, FeedingLayer]] = _ReadWithFeeding(path, layer, with_weights).result()
    return result
