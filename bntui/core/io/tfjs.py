"""TensorFlow.js layers models: ``model.json`` plus ``group*-shard*of*.bin`` weight files.

``modelTopology`` is the Keras config (wrapped as ``{"model_config": ...}`` by the Python
converter, bare when TF.js itself saved the model). ``weightsManifest`` lists groups of
weights; a group's shards, concatenated, hold its weights back to back, little-endian, in the
listed order, each as many bytes as its shape and stored dtype say. We compute every BN
weight's offset from the manifest and read only those bytes. Quantized weights (uint8/uint16
with ``min`` and ``scale``, or float16) are turned back into float32, with a note: their
values are not the trained ones to the last bit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.keras_config import ConfigLayer, bn_settings, build_tree
from bntui.core.layer_builder import ALL_ROLES, build_layer, build_unconfigured
from bntui.core.model import BNLayer, ModelInfo

MODEL_JSON = "model.json"
MAX_JSON_BYTES = 64 * 1024**2
_ITEM_SIZE = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2, "int8": 1, "int16": 2}
_NUMPY = {"float32": "<f4", "int32": "<i4", "bool": "u1", "uint8": "u1", "uint16": "<u2", "float16": "<f2",
          "int8": "i1", "int16": "<i2"}
GRAPH_MODEL_REFUSAL = (
    "a TensorFlow.js graph model (a frozen TF graph: no Keras layers, BN survives only as FusedBatchNorm "
    'ops or folded into convolutions); bntui reads TF.js layers models (format "layers-model")'

)


@dataclass(frozen=True)
class Weight:
    """One manifest entry, placed: which group, at which byte of the group, how stored."""

    name: str
    shape: tuple[int, ...]
    group: int
    offset: int
    size: int
    stored: str
    quantization: dict[str, Any] | None


def tfjs_json(path: Path) -> Path | None:
    """The model.json that ``path`` names (itself, or inside a directory), or None."""
    if path.is_dir():
        candidate = path / MODEL_JSON
        return candidate if candidate.is_file() else None
    return path if path.suffix == ".json" else None


def read_tfjs(json_path: Path, shown_path: str) -> ModelInfo:
    """Every BN layer of a TF.js layers model."""
    document = _load_json(json_path)
    model_format = document.get("format")
    if model_format == "graph-model" or _looks_like_graph(document.get("modelTopology")):
        raise ModelFileError(f"{json_path}: {GRAPH_MODEL_REFUSAL}")
    if "weightsManifest" not in document or (model_format not in (None, "layers-model")):
        raise ModelFileError(f"{json_path}: a JSON file, but not a TensorFlow.js layers model")
    topology = document.get("modelTopology")
    config = topology.get("model_config", topology) if isinstance(topology, dict) else None
    tree = build_tree(config) if isinstance(config, dict) and "class_name" in config else None
    version = topology.get("keras_version") if isinstance(topology, dict) else None
    weights, group_sizes = _place_weights(json_path, document["weightsManifest"])
    shards = _shards(json_path, document["weightsManifest"], group_sizes)
    quantized: set[str] = set()

    def read(weight: Weight) -> np.ndarray:
        if weight.quantization:
            quantized.add(str(weight.quantization.get("dtype")))
        return _read_weight(weight, shards[weight.group])

    layers = _match(tree, _bn_groups(weights), read, str(version) if version else None)
    notes: tuple[str, ...] = ()
    if quantized:
        note = (f"quantized weights ({', '.join(sorted(quantized))}) were dequantized to float32: they differ "
                "from the trained values by up to half a quantization step")
        notes = (note,)
        layers = [_with_note(layer, note) for layer in layers]
    return ModelInfo(path=shown_path, format="TensorFlow.js layers model", keras_version=str(version) if version else None,
                     layers=tuple(layers), model_name=tree.name if tree else None, notes=notes)


def _with_note(layer: BNLayer, note: str) -> BNLayer:
    return replace(layer, notes=(*layer.notes, note))


def _load_json(json_path: Path) -> dict[str, Any]:
    try:
        size = json_path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ModelFileError(f"{json_path}: {size} bytes of JSON; refusing more than {MAX_JSON_BYTES}")
        document = json.loads(json_path.read_bytes().decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as err:
        raise ModelFileError(f"{json_path}: not valid JSON ({str(err)[:120]})") from None
    except OSError as err:
        raise ModelFileError(f"{json_path}: cannot read ({err.strerror or err})") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{json_path}: a JSON file, but not a TensorFlow.js model")
    return document


def _looks_like_graph(topology: Any) -> bool:
    """A graph model's topology is a GraphDef (``node``, ``versions``), not a Keras config."""
    return isinstance(topology, dict) and "node" in topology and "class_name" not in topology


def _place_weights(json_path: Path, manifest: Any) -> tuple[list[Weight], list[int]]:
    """Every weight with its group and byte offset; and each group's total size."""
    if not isinstance(manifest, list):
        raise ModelFileError(f"{json_path}: weightsManifest is not a list")
    weights: list[Weight] = []
    sizes: list[int] = []
    for group_index, group in enumerate(manifest):
        entries = group.get("weights") if isinstance(group, dict) else None
        if not isinstance(entries, list):
            raise ModelFileError(f"{json_path}: weightsManifest group {group_index} has no weights list")
        offset = 0
        for entry in entries:
            weight = _weight(json_path, entry, group_index, offset)
            weights.append(weight)
            offset += weight.size
        sizes.append(offset)
    return weights, sizes


def _weight(json_path: Path, entry: Any, group: int, offset: int) -> Weight:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ModelFileError(f"{json_path}: a weightsManifest entry without a name")
    name = entry["name"]
    shape = entry.get("shape", [])
    if not isinstance(shape, list) or not all(isinstance(dim, int) and dim >= 0 for dim in shape):
        raise ModelFileError(f"{json_path}: weight {name!r} has shape {shape!r}")
    quantization = entry.get("quantization") if isinstance(entry.get("quantization"), dict) else None
    stored = str(quantization.get("dtype") if quantization else entry.get("dtype", "float32"))
    if stored not in _ITEM_SIZE:
        raise ModelFileError(f"{json_path}: weight {name!r} is stored as {stored}, which bntui cannot place in its shard")
    return Weight(name, tuple(shape), group, offset, math.prod(shape) * _ITEM_SIZE[stored], stored, quantization)


def _shards(json_path: Path, manifest: list[Any], sizes: list[int]) -> list[list[tuple[Path, int]]]:
    """Each group's shard files with their sizes, checked to add up to what the manifest says."""
    groups: list[list[tuple[Path, int]]] = []
    for index, (group, expected) in enumerate(zip(manifest, sizes)):
        paths = group.get("paths")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ModelFileError(f"{json_path}: weightsManifest group {index} has no list of paths")
        files = []
        for name in paths:
            shard = json_path.parent / name
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ModelFileError(f"{json_path}: shard path {name!r} leaves the model's folder")
            try:
                files.append((shard, shard.stat().st_size))
            except FileNotFoundError:
                raise ModelFileError(f"{json_path}: shard {name} is missing") from None
        total = sum(size for _, size in files)
        if total != expected:
            raise ModelFileError(
                f"{json_path}: the manifest does not match its shards: group {index} lists {expected} bytes of "
                f"weights but its {len(files)} shard file(s) hold {total}"
            )
        groups.append(files)
    return groups


def _read_weight(weight: Weight, shards: list[tuple[Path, int]]) -> np.ndarray:
    """The weight's bytes, gathered across shard boundaries, dequantized to float32 if needed."""
    chunks: list[bytes] = []
    start, remaining = weight.offset, weight.size
    for shard, size in shards:
        if remaining and start < size:
            with open(shard, "rb") as handle:
                handle.seek(start)
                chunk = handle.read(min(remaining, size - start))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
            start = 0
        else:
            start -= size
    data = b"".join(chunks)
    if len(data) != weight.size:
        raise ModelFileError(f"{shards[0][0].parent}: shard data ends inside weight {weight.name!r}")
    values = np.frombuffer(data, dtype=np.dtype(_NUMPY[weight.stored])).reshape(weight.shape)
    if not weight.quantization:
        return values.astype(values.dtype.newbyteorder("="))
    if weight.stored == "float16":
        return values.astype(np.float32)
    try:
        scale = float(weight.quantization["scale"])
        low = float(weight.quantization["min"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"quantized weight {weight.name!r} has no numeric min and scale") from None
    return (values.astype(np.float32) * np.float32(scale) + np.float32(low)).astype(np.float32)


def _bn_groups(weights: list[Weight]) -> dict[str, list[dict[str, Weight]]]:
    """Layer prefix -> its BN weight sets, in manifest order. Two nested models can each have
    a ``bn_1``: the same prefix then holds one set per layer, filled in turn."""
    groups: dict[str, list[dict[str, Weight]]] = {}
    for weight in weights:
        prefix, _, role = weight.name.removesuffix(":0").rpartition("/")
        if role not in ALL_ROLES or not prefix:
            continue
        sets = groups.setdefault(prefix, [])
        target = next((found for found in sets if role not in found), None)
        if target is None:
            target = {}
            sets.append(target)
        target[role] = weight
    return {prefix: [s for s in sets if {"moving_mean", "moving_variance"} <= s.keys()] for prefix, sets in groups.items()}


def _candidates(path: tuple[str, ...]) -> list[str]:
    """Weight prefixes a configured BN may be stored under, most specific first: its full path,
    its path inside the top-level layer, its name, and its wrapper's name (TimeDistributed's
    weights are named after the wrapper)."""
    keys = ["/".join(path), "/".join(path[1:]), path[-1]]
    if len(path) > 1:
        keys.append(path[-2])
    return [key for key in keys if key]


def _match(tree: ConfigLayer | None, groups: dict[str, list[dict[str, Weight]]], read: Callable[[Weight], np.ndarray],
           version: str | None) -> list[BNLayer]:
    layers: list[BNLayer] = []
    for path, node in tree.walk_bn() if tree else []:
        key = next((key for key in _candidates(path) if groups.get(key)), None)
        if key is None:
            raise ModelFileError(f"BN layer {'/'.join(path)!r} is in the config but its weights are not in the manifest")
        found = groups[key].pop(0)
        settings, sources = bn_settings(node.config)
        layers.append(build_layer(name=node.name, path="/".join(path), settings=settings, sources=sources,
                                  datasets={role: read(weight) for role, weight in found.items()},
                                  inbound=node.inbound, keras_version=version))
    for prefix, sets in groups.items():
        for found in sets:
            layers.append(build_unconfigured(prefix, {role: read(weight) for role, weight in found.items()}))
    return layers
