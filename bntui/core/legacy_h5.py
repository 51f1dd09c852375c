"""The HDF5 layout of Keras 2.x, tf.keras and Keras 3's ``model.save("m.h5")``.

Weights live under ``model_weights/<layer>/`` (or the root, for ``save_weights``), listed
by the ``layer_names`` and ``weight_names`` attributes. Each weight name ends in its role
(``gamma``, ``beta``, ``moving_mean``, ``moving_variance``, with ``:0`` in Keras 2); the
part before the role says which sub-layer owns it. We match those names to the config's BN
layers by name, and fall back to order only inside one layer group when names disagree
(Keras 2 files where group ``batch_normalization_1`` holds ``batch_normalization_1_1/...``).
"""

from __future__ import annotations

import re
from typing import Any

import h5py

from bntui.core.errors import ModelFileError
from bntui.core.hdf5_attrs import name_list_attr, text_attr
from bntui.core.keras_config import ConfigLayer, bn_settings, build_tree, parse_config_json
from bntui.core.layer_builder import ALL_ROLES, build_layer, build_unconfigured
from bntui.core.model import BNLayer

_INDEX_SUFFIX = re.compile(r":\d+$")

WeightSet = dict[str, Any]  # role -> h5py.Dataset


def read_legacy(h5: h5py.File) -> tuple[list[BNLayer], str | None, str | None, bool]:
    """Return (layers, keras_version, model name, has_config) for a legacy-layout file."""
    root = h5.get("model_weights", h5)
    config_text = text_attr(h5, "model_config")
    tree = build_tree(parse_config_json(config_text)) if config_text else None
    version = text_attr(root, "keras_version") or text_attr(h5, "keras_version")
    top = {child.name: child for child in tree.children} if tree else {}
    layers: list[BNLayer] = []
    for group_name in name_list_attr(root, "layer_names"):
        node = top.get(group_name)
        if node is not None and node.is_plain_leaf:
            continue  # a Conv2D or Dense: its (large) group is never opened
        group = _child(root, group_name)
        if not isinstance(group, h5py.Group):
            raise ModelFileError(f"layer_names lists {group_name!r} but the file has no such group")
        sets = _weight_sets(group, group_name)
        layers.extend(_match_group(group, group_name, node, sets, version))
    if tree is not None:
        found = {layer.path for layer in layers}
        for path, node in _all_bn(tree):
            if path not in found:
                raise ModelFileError(f"BN layer {path!r} is in the config but its weights are not in the file")
    model_name = tree.name if tree else None
    return layers, version, model_name, tree is not None


def _child(group: h5py.Group, name: str) -> h5py.HLObject | None:
    """``group[name]`` or None: one lookup instead of ``in`` followed by ``[]`` (it adds up
    over thousands of weights)."""
    try:
        return group[name]
    except KeyError:
        return None


def _all_bn(tree: ConfigLayer) -> list[tuple[str, ConfigLayer]]:
    return [("/".join(path), node) for path, node in tree.walk_bn()]


def _weight_sets(group: h5py.Group, group_name: str) -> dict[str, WeightSet]:
    """Group a layer's weights by owning sub-layer, keeping only BN-like sets."""
    sets: dict[str, WeightSet] = {}
    for weight_name in name_list_attr(group, "weight_names"):
        prefix, _, role = _INDEX_SUFFIX.sub("", weight_name).rpartition("/")
        if role not in ALL_ROLES:
            continue  # other layers' weights (kernels...) are never touched
        dataset = _child(group, weight_name)
        if dataset is None:
            raise ModelFileError(f"layer {group_name!r} lists weight {weight_name!r} that is not in the file")
        sets.setdefault(prefix, {})[role] = dataset
    return {prefix: found for prefix, found in sets.items() if "moving_mean" in found or "moving_variance" in found}


def _match_group(
    group: h5py.Group, group_name: str, node: ConfigLayer | None, sets: dict[str, WeightSet], version: str | None
) -> list[BNLayer]:
    """Pair the BN configs under one top-level layer with that layer's weight sets."""
    wanted: list[tuple[tuple[str, ...], ConfigLayer]]
    if node is not None and node.is_bn:
        wanted = [((group_name,), node)]
    elif node is not None:
        wanted = [((group_name, *path), bn) for path, bn in node.walk_bn()]
    else:
        wanted = []
    remaining = dict(sets)
    pairs: list[tuple[tuple[str, ...], ConfigLayer, WeightSet | None]] = []
    for path, bn in wanted:
        keys = ("/".join(path), "/".join(path[1:]), bn.name)
        prefix = next((key for key in keys if key in remaining), None)
        pairs.append((path, bn, remaining.pop(prefix) if prefix is not None else None))
    leftovers = list(remaining.items())
    layers: list[BNLayer] = []
    for path, bn, found in pairs:
        if found is None and leftovers:
            found = leftovers.pop(0)[1]  # same group, other scope name: order decides
        settings, sources = bn_settings(bn.config)
        layers.append(
            build_layer(
                name=bn.name,
                path="/".join(path),
                settings=settings,
                sources=sources,
                datasets=found or {},
                inbound=bn.inbound,
                keras_version=version,
                call_training=bn.call_training,
            )
        )
    for prefix, found in leftovers:
        single = len(sets) == 1 and "/" not in prefix and _only_bn_weights(found, group)
        layers.append(_unconfigured(group_name, prefix, found, single=single))
    return layers


def _only_bn_weights(found: WeightSet, group: h5py.Group) -> bool:
    """True when the group holds this BN's weights and nothing else (the group is the BN)."""
    return len(name_list_attr(group, "weight_names")) == len(found)


def _unconfigured(group_name: str, prefix: str, found: WeightSet, *, single: bool) -> BNLayer:
    """A BN recognised by its weights alone (weights-only file, or inside a custom layer)."""
    if single or prefix == "":
        path = group_name
    elif prefix.startswith(group_name + "/"):
        path = prefix
    else:
        path = f"{group_name}/{prefix}"
    return build_unconfigured(path, found)
