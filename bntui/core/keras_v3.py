"""The Keras 3 weights layout: ``model.weights.h5`` inside a ``.keras`` zip, and ``.weights.h5``.

Here weights have no names: each layer's group holds ``vars/0``, ``vars/1``, ... in the
order the layer created them (gamma if ``scale``, beta if ``center``, moving_mean,
moving_variance). Groups are named after the layer's class (``batch_normalization``,
``batch_normalization_1``, ... in config order), and recent Keras writes the real layer
name in the ``name`` attribute of ``vars``. We pair groups with config layers by that name,
and by Keras' own class-name counter where the attribute is missing.

Sub-layers that a layer holds as attributes (``self.bn = BatchNormalization()`` in a custom
block or a subclassed model, TimeDistributed's ``layer``, an RNN cell inside Bidirectional's
``forward_layer/cell``) are stored under their attribute names, outside ``layers``: every
group is walked, and a group with no config is taken as a BN when its variables look like
one (see :func:`_looks_like_bn`), with its settings marked assumed.
"""

from __future__ import annotations

import re

import h5py
import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.hdf5_attrs import text_attr
from bntui.core.keras_config import ConfigLayer, bn_settings, snake_case
from bntui.core.layer_builder import RENORM_ROLES, build_layer, build_unconfigured
from bntui.core.model import BNLayer

_BN_GROUP = re.compile(r"^(sync_)?batch_normalization(_v[12])?(_\d+)?$")


def read_v3_weights(h5: h5py.File, tree: ConfigLayer | None, keras_version: str | None = None) -> list[BNLayer]:
    """Every BN layer in a Keras 3 weights file, in config order where there is a config."""
    layers: list[BNLayer] = []
    _walk(h5, tree, (), layers, keras_version)
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


def pair_children(layers_group: h5py.Group, node: ConfigLayer | None) -> list[tuple[str, ConfigLayer | None]]:
    """(h5 group name, config layer) pairs: config order first, then unclaimed groups."""
    names = sorted((key for key in layers_group if isinstance(layers_group[key], h5py.Group)), key=_natural)
    by_attr: dict[str, str] = {}
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


def _attribute_children(group: h5py.Group, node: ConfigLayer | None) -> list[tuple[str, ConfigLayer | None]]:
    """Sub-layers held as attributes: every subgroup but ``vars`` and ``layers``. A wrapper's
    ``layer`` (TimeDistributed, Bidirectional) is its config's wrapped layer."""
    wrapped = node.children[0] if node is not None and not node.is_container and node.children else None
    pairs: list[tuple[str, ConfigLayer | None]] = []
    for key in sorted(group, key=_natural):
        if key in ("vars", "layers") or not isinstance(group[key], h5py.Group):
            continue
        pairs.append((key, wrapped if key == "layer" else None))
    return pairs


def _walk(group: h5py.Group, node: ConfigLayer | None, prefix: tuple[str, ...], out: list[BNLayer],
          version: str | None) -> None:
    layers_group = group.get("layers")
    children = pair_children(layers_group, node) if isinstance(layers_group, h5py.Group) else []
    for key, child in children:
        sub = layers_group[key]
        _visit(sub, key, child, (*prefix, child.name if child else (_vars_name(sub) or key)), out, version)
    for key, child in _attribute_children(group, node):
        sub = group[key]
        # An attribute name (``bn`` of ``self.bn``) says more than Keras' generated layer name,
        # except a wrapper's generic ``layer`` slot.
        name = child.name if child else (_vars_name(sub) or key if key == "layer" else key)
        _visit(sub, key, child, (*prefix, name), out, version)


def _visit(sub: h5py.Group, key: str, child: ConfigLayer | None, path: tuple[str, ...], out: list[BNLayer],
           version: str | None) -> None:
    if child is not None and child.is_plain_leaf:
        return  # never open the groups of Conv2D, Dense...
    if child is not None and child.is_bn:
        out.append(_configured(sub, child, path, version))
    elif child is None and _looks_like_bn(sub, key):
        out.append(_unconfigured(sub, path))
    else:
        _walk(sub, child if child is not None and (child.is_container or child.children) else None, path, out, version)


def _vars(group: h5py.Group) -> list[h5py.Dataset]:
    holder = group.get("vars")
    if not isinstance(holder, h5py.Group):
        return []
    keys = sorted((key for key in holder if key.isdigit()), key=int)
    return [holder[key] for key in keys]


def _looks_like_bn(group: h5py.Group, key: str) -> bool:
    """A group with no config is a BN when its variables are 2 to 4 (or renorm's 7) vectors of
    one length and its name says BN, or when they are exactly four such vectors, the last one
    (the variance) never negative: nothing else in Keras stores that."""
    variables = _vars(group)
    if not 2 <= len(variables) <= 7 or len(variables) in (5, 6):
        return False
    shapes = {dataset.shape for dataset in variables}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        return False
    named = bool(_BN_GROUP.match(key) or _BN_GROUP.match(_vars_name(group) or ""))
    if named:
        return True
    if len(variables) != 4:
        return False
    last = np.asarray(variables[3][()], dtype=np.float64)
    return bool(np.all(last >= 0))


def _roles(settings: dict[str, object]) -> list[str]:
    roles = (["gamma"] if settings["scale"] else []) + (["beta"] if settings["center"] else [])
    roles += ["moving_mean", "moving_variance"]
    return roles + list(RENORM_ROLES) if settings.get("renorm") else roles


def _configured(group: h5py.Group, node: ConfigLayer, path: tuple[str, ...], version: str | None) -> BNLayer:
    settings, sources = bn_settings(node.config)
    roles = _roles(settings)
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
        inbound=node.inbound,
        keras_version=version,
        call_training=node.call_training,
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
    notes: list[str] = []
    if len(variables) == 7:
        roles = ["gamma", "beta", "moving_mean", "moving_variance", *RENORM_ROLES]
    elif len(variables) == 4:
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
    if not _BN_GROUP.match(path[-1]) and not _BN_GROUP.match(_vars_name(group) or ""):
        notes.append("recognised by its four per-channel arrays (no config names it a BatchNormalization)")
    return build_unconfigured("/".join(path), dict(zip(roles, variables)), tuple(notes))
