"""Reading a Keras model config (the JSON stored in every full-model file) as a layer tree.

Keras has written this JSON in several shapes since 2017: Keras 2.0's Sequential stores its
layers as a bare list, later versions as ``{"name": ..., "layers": [...]}``; Keras 2 writes
inbound nodes as nested lists, Keras 3 as ``keras_history`` records; wrappers such as
TimeDistributed hold one layer under ``"layer"``. This module hides all of that behind
:class:`ConfigLayer`, and never imports or runs anything the config names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bntui.core.errors import ModelFileError
from bntui.core.model import KERAS_DEFAULTS

#: Keras layers that hold no sub-layers: their weight groups can be skipped unread. In Keras 3
#: configs every built-in layer also says ``"module": "keras.layers"``.
LEAF_CLASS_NAMES = frozenset({
    "Activation", "Add", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "Concatenate",
    "Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose", "Cropping2D", "Dense",
    "DepthwiseConv2D", "Dropout", "ELU", "Embedding", "Flatten", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "InputLayer", "LayerNormalization", "LeakyReLU", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "Multiply", "PReLU", "ReLU", "Rescaling", "Reshape", "SeparableConv1D", "SeparableConv2D",
    "Softmax", "SpatialDropout2D", "Subtract", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "Normalization", "Permute", "RepeatVector", "Average", "Maximum", "Minimum",
})

BN_CLASS_NAMES = frozenset(
    {"BatchNormalization", "BatchNormalizationV1", "BatchNormalizationV2", "SyncBatchNormalization"}
)


@dataclass
class ConfigLayer:
    """One layer of a config, with its sub-layers when it is a model or a wrapper."""

    name: str
    class_name: str
    config: dict[str, Any]
    inbound: str | None = None
    children: list[ConfigLayer] = field(default_factory=list)
    is_container: bool = False
    module: str | None = None
    #: A ``training`` argument hard-coded where the model calls this layer, if any.
    call_training: bool | None = None

    @property
    def is_plain_leaf(self) -> bool:
        """A built-in Keras layer that cannot hold a BN layer: its weights need not be read."""
        if self.children or self.is_bn:
            return False
        return self.class_name in LEAF_CLASS_NAMES and (self.module is None or self.module.startswith("keras"))

    @property
    def is_bn(self) -> bool:
        """True for Keras' BatchNormalization classes, whatever the Keras version."""
        return self.class_name in BN_CLASS_NAMES

    def walk_bn(self, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], ConfigLayer]]:
        """Every BN layer below this one, with its path of names relative to this layer."""
        found: list[tuple[tuple[str, ...], ConfigLayer]] = []
        for child in self.children:
            path = (*prefix, child.name)
            if child.is_bn:
                found.append((path, child))
            found.extend(child.walk_bn(path))
        return found


def parse_config_json(text: str | bytes) -> dict[str, Any]:
    """Decode the stored JSON, turning any damage into a one-line file error."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ModelFileError(f"the model config is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ModelFileError("the model config is not a JSON object")
    return data


def build_tree(layer_dict: dict[str, Any]) -> ConfigLayer:
    """Turn one layer's config dict (a whole model at the top) into a :class:`ConfigLayer`."""
    class_name = str(layer_dict.get("class_name", "?"))
    raw = layer_dict.get("config")
    config: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name = str(layer_dict.get("name") or config.get("name") or class_name)
    module = layer_dict.get("module")
    node = ConfigLayer(name=name, class_name=class_name, config=config, module=module if isinstance(module, str) else None)
    node.inbound = _first_inbound(layer_dict.get("inbound_nodes"))
    node.call_training = call_training_from_config(layer_dict)
    members = raw if isinstance(raw, list) else config.get("layers")
    if isinstance(members, list):
        node.is_container = True
        previous: str | None = None
        for member in members:
            if not isinstance(member, dict):
                continue
            child = build_tree(member)
            if child.inbound is None and previous is not None:
                child.inbound = previous  # Sequential: each layer is fed by the one before
            previous = child.name
            node.children.append(child)
    wrapped = config.get("layer")
    if isinstance(wrapped, dict) and "class_name" in wrapped:
        node.children.append(build_tree(wrapped))
    return node


def call_training_from_config(layer_config: dict[str, Any]) -> bool | None:
    """The ``training`` argument hard-coded where the model calls the layer, from the layer's
    entry in the model config: tf.keras keeps call kwargs as the fourth item of each inbound
    tensor (``[[["dense", 0, 0, {"training": true}]]]``), Keras 3 in each node's ``kwargs``.
    None when the config records none, or when the layer's calls disagree."""
    found: set[bool] = set()
    nodes = layer_config.get("inbound_nodes")
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict):
            kwargs = node.get("kwargs")
            if isinstance(kwargs, dict) and isinstance(kwargs.get("training"), bool):
                found.add(kwargs["training"])
        elif isinstance(node, list):
            for tensor in node:
                if isinstance(tensor, list) and len(tensor) > 3 and isinstance(tensor[3], dict):
                    value = tensor[3].get("training")
                    if isinstance(value, bool):
                        found.add(value)
    return found.pop() if len(found) == 1 else None


def _first_inbound(nodes: Any) -> str | None:
    """The name of the first layer feeding this one, from either Keras' inbound format."""
    if isinstance(nodes, dict):
        history = nodes.get("keras_history")
        if isinstance(history, list) and history and isinstance(history[0], str):
            return history[0]
        for value in nodes.values():
            found = _first_inbound(value)
            if found:
                return found
        return None
    if isinstance(nodes, list):
        if len(nodes) >= 3 and isinstance(nodes[0], str) and isinstance(nodes[1], int):
            return nodes[0]
        for value in nodes:
            found = _first_inbound(value)
            if found:
                return found
    return None


def normalise_axis(raw: Any) -> int:
    """Keras stores ``axis`` as ``-1``, ``3`` or ``[3]``; return the single int it means."""
    if isinstance(raw, (list, tuple)):
        if len(raw) != 1:
            raise ModelFileError(f"BatchNormalization over several axes {list(raw)} is not supported")
        raw = raw[0]
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ModelFileError(f"BatchNormalization axis {raw!r} is not an integer")
    return raw


def bn_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The five BN settings from a layer config, and for each whether it came from the config."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, default in KERAS_DEFAULTS.items():
        if key in config and config[key] is not None:
            values[key] = config[key]
            sources[key] = "config"
        else:
            values[key] = default
            sources[key] = "default"
    values["axis"] = normalise_axis(values["axis"])
    try:
        values["epsilon"] = float(values["epsilon"])
        values["momentum"] = float(values["momentum"])
    except (TypeError, ValueError):
        raise ModelFileError("BatchNormalization epsilon or momentum is not a number") from None
    values["center"] = bool(values["center"])
    values["scale"] = bool(values["scale"])
    values["trainable"] = bool(values["trainable"])
    extra = variant_settings(config)
    values.update(extra)
    if extra["virtual_batch_size"] and values["axis"] > 0:
        # tf_keras shifts a built ghost-batch layer's axis by one for its extra virtual-batch
        # dimension, and saves the shifted axis: undo it to get the input's axis.
        values["axis"] -= 1
    return values, sources


def variant_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of BN's variants: renorm, ghost batches and the dtype policy."""
    renorm = bool(config.get("renorm", False))
    clipping = config.get("renorm_clipping") if renorm else None
    clip: dict[str, float] | None = None
    if isinstance(clipping, dict):
        clip = {key: float(value) for key, value in clipping.items() if key in ("rmin", "rmax", "dmax") and value is not None}
    virtual = config.get("virtual_batch_size")
    try:
        momentum = float(config.get("renorm_momentum", 0.99) or 0.99)
        virtual_batch = int(virtual) if virtual not in (None, False) else None
    except (TypeError, ValueError):
        raise ModelFileError("BatchNormalization renorm_momentum or virtual_batch_size is not a number") from None
    return {
        "renorm": renorm,
        "renorm_clipping": clip,
        "renorm_momentum": momentum,
        "virtual_batch_size": virtual_batch,
        "dtype_policy": dtype_name(config),
    }


def dtype_name(config: dict[str, Any]) -> str | None:
    """The layer's dtype policy name: a plain string in Keras 2, a DTypePolicy dict in Keras 3."""
    raw = config.get("dtype")
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict):
        inner = raw.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]
    return None


def snake_case(class_name: str) -> str:
    """Keras 3's ``naming.to_snake_case``, which names the groups of a ``.keras`` weights file."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name
