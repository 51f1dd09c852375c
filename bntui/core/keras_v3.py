"""The Keras 3 weights layout: ``model.weights.h5`` inside a ``.keras`` zip, and ``.weights.h5``.

Here weights have no names: each layer's group holds ``vars/0``, ``vars/1``, ... in the
order the layer created them (gamma if ``scale``, beta if ``center``, moving_mean,
moving_variance). Groups are named after the layer's class (``batch_normalization``,
``batch_normalization_1``, ... in config order), and recent Keras writes the real layer
name in the ``name`` attribute of ``vars``. We pair groups with config layers by that name,
and by Keras' own class-name counter where the attribute is missing.
"""

from __future__ import annotations

import re

import h5py
import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.hdf5_attrs import text_attr
from bntui.core.keras_config import ConfigLayer, bn_settings, dtype_name, snake_case
from bntui.core.layer_builder import build_layer
from bntui.core.model import KERAS_DEFAULTS, BNLayer

_BN_GROUP = re.compile(r"^(sync_)?batch_normalization(_v[12])?(_\d+)?$")


def read_v3_weights(h5: h5py.File, tree: ConfigLayer | None) -> list[BNLayer]:
    """Every BN layer in a Keras 3 weights file, in config order where there is a config."""
    layers: list[BNLayer] = []
    _walk(h5, tree, (), layers)
    if tree is not None:
        found = {layer.path for layer in layers}
        for path, _node in tree.walk_bn():
            if "/".join(path) not in found:
                raise ModelFileError(f"BN layer {'/'.join(path)!r} is in the config but its weights are not in the file")
    return layers


def _natural(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("_")
    return (base, int(number)) if number.isdigit() else (name, -1)


def _vars_name(group: h5py.Group) -> str | None:
    holder = group.get("vars")
    return text_attr(holder, "name") if isinstance(holder, h5py.Group) else None


def _pair_children(layers_group: h5py.Group, node: ConfigLayer | None) -> list[tuple[str, ConfigLayer | None]]:
    """(h5 group name, config layer) pairs: config order first, then unclaimed groups."""
    names = sorted((key for key in layers_group if isinstance(layers_group[key], h5py.Group)), key=_natural)
    by_attr = {}
    for key in names:
        attr = _vars_name(layers_group[key])
        if attr is not None:
            by_attr.setdefault(attr, key)
    pairs: list[tuple[str, ConfigLayer | None]] = []
    claimed: set[str] = set()
    counters: dict[str, int] = {}
    for child in node.children if node else []:
        snake = snake_case(child.class_name)
        count = counters.get(snake, -1) + 1
        counters[snake] = count
        expected = snake if count == 0 else f"{snake}_{count}"
        key = by_attr.get(child.name)
        if key is None or key in claimed:
            key = expected if expected in layers_group and expected not in claimed else None
        if key is not None:
            claimed.add(key)
            pairs.append((key, child))
    pairs.extend((key, None) for key in names if key not in claimed)
    return pairs


def _walk(group: h5py.Group, node: ConfigLayer | None, prefix: tuple[str, ...], out: list[BNLayer]) -> None:
    layers_group = group.get("layers")
    if not isinstance(layers_group, h5py.Group):
        return
    for key, child in _pair_children(layers_group, node):
        if child is not None and child.is_plain_leaf:
            continue  # never open the groups of Conv2D, Dense...
        sub = layers_group[key]
        name = child.name if child else (_vars_name(sub) or key)
        path = (*prefix, name)
        if child is not None and child.is_bn:
            out.append(_configured(sub, child, path))
        elif child is None and _BN_GROUP.match(key) and isinstance(sub.get("vars"), h5py.Group):
            out.append(_unconfigured(sub, path))
        else:
            _walk(sub, child if child is not None and child.is_container else None, path, out)


def _vars(group: h5py.Group) -> list[h5py.Dataset]:
    holder = group.get("vars")
    if not isinstance(holder, h5py.Group):
        return []
    keys = sorted((key for key in holder if key.isdigit()), key=int)
    return [holder[key] for key in keys]


def _configured(group: h5py.Group, node: ConfigLayer, path: tuple[str, ...]) -> BNLayer:
    settings, sources = bn_settings(node.config)
    roles = (["gamma"] if settings["scale"] else []) + (["beta"] if settings["center"] else [])
    roles += ["moving_mean", "moving_variance"]
    variables = _vars(group)
    if len(variables) != len(roles):
        raise ModelFileError(
            f"BN layer {'/'.join(path)!r} has {len(variables)} variables; its config needs {len(roles)} ({', '.join(roles)})"
        )
    return build_layer(
        name=node.name,
        path="/".join(path),
        settings=settings,
        sources=sources,
        datasets=dict(zip(roles, variables)),
        dtype=dtype_name(node.config),
        inbound=node.inbound,
    )


def _gamma_or_beta(dataset: h5py.Dataset) -> str:
    """Guess which of gamma (initialised to 1) or beta (to 0) a lone unnamed variable is."""
    values = np.asarray(dataset[()], dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "gamma"
    return "gamma" if np.median(np.abs(finite - 1.0)) < np.median(np.abs(finite)) else "beta"


def _unconfigured(group: h5py.Group, path: tuple[str, ...]) -> BNLayer:
    """A BN group with no config: the variable count tells which weights exist."""
    variables = _vars(group)
    notes = ["no config for this layer: axis, epsilon and momentum are Keras defaults"]
    if len(variables) == 4:
        roles = ["gamma", "beta", "moving_mean", "moving_variance"]
    elif len(variables) == 3:
        roles = [_gamma_or_beta(variables[0]), "moving_mean", "moving_variance"]
        notes.append(
            f"3 unnamed variables and no config: the first was taken as {roles[0]} because its values lie "
            f"closer to {'1' if roles[0] == 'gamma' else '0'} (gamma starts at 1, beta at 0)"
        )
    elif len(variables) == 2:
        roles = ["moving_mean", "moving_variance"]
    else:
        raise ModelFileError(f"BN group {'/'.join(path)!r} has {len(variables)} variables; expected 2 to 4")
    settings = dict(KERAS_DEFAULTS)
    settings["scale"] = "gamma" in roles
    settings["center"] = "beta" in roles
    sources = {"axis": "default", "epsilon": "default", "momentum": "default", "center": "weights", "scale": "weights"}
    return build_layer(
        name=path[-1],
        path="/".join(path),
        settings=settings,
        sources=sources,
        datasets=dict(zip(roles, variables)),
        notes=tuple(notes),
    )
