"""TF checkpoints: object-based (TF2 ``save_weights('w')``, ``tf.train.Checkpoint``) and
name-based (TF1 ``tf.compat.v1.train.Saver``).

Neither holds a Keras config. A TF2 checkpoint's object graph says which variables belong to
one layer; a TF1 checkpoint only has variable names (``batch_normalization_3/gamma``), and its
``.meta`` graph, where present, holds the FusedBatchNorm ops with their real ``epsilon`` and
``data_format``.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.io.object_graph import (
    bn_layers_by_name,
    bn_layers_from_graph,
    group_by_name,
    read_object_graph,
    read_roles,
)
from bntui.core.io.protobuf_wire import Message, WireError
from bntui.core.io.tensor_bundle import TensorBundle
from bntui.core.layer_builder import build_layer, build_unconfigured
from bntui.core.model import KERAS_DEFAULTS, BNLayer, ModelInfo

#: Largest ``.meta`` graph parsed for epsilons; a bigger one is skipped with a note.
MAX_META_BYTES = 256 * 1024**2

TF2_NOTE = "TF2 checkpoint: no Keras config is stored; names come from the variables, axis, epsilon and momentum are Keras defaults"
TF1_NOTE = "TF1 checkpoint: BN layers recognised by their variable names"

#: FusedBatchNorm op name -> (epsilon, axis) from a TF1 graph.
FusedOps = dict[str, tuple[float, int]]

_FUSED_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"})
_STATE_LINE = re.compile(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"\s*$', re.MULTILINE)


def checkpoint_prefix(path: Path) -> Path | None:
    """The checkpoint prefix a path names (``w``, ``w.index``, ``w.meta``, ``w.data-…``, or a
    directory with a ``checkpoint`` state file or one ``.index``), or None."""
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            match = _STATE_LINE.search(state.read_text(encoding="utf-8", errors="replace")[:65536])
            if match:
                # text-format escapes (\" and octal bytes of UTF-8 names) back to the name
                raw = codecs.escape_decode(match.group(1).encode("utf-8"))[0]
                named = Path(raw.decode("utf-8", errors="replace"))
                prefix = named if named.is_absolute() else path / named
                if _index(prefix).is_file():
                    return prefix
        indexes = sorted(path.glob("*.index"))
        return indexes[0].with_suffix("") if len(indexes) == 1 else None
    for suffix in (".index", ".meta"):
        if path.name.endswith(suffix):
            return path.with_name(path.name.removesuffix(suffix))
    data = re.match(r"^(.*)\.data-\d{5}-of-\d{5}$", path.name)
    if data:
        return path.with_name(data.group(1))
    return path if _index(path).is_file() else None


def _index(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def read_checkpoint(prefix: Path, shown_path: str) -> ModelInfo:
    """Every BN layer of the checkpoint at ``prefix``."""
    with TensorBundle(prefix) as bundle:
        graph = read_object_graph(bundle)
        if graph is not None:
            layers = bn_layers_from_graph(bundle, graph, TF2_NOTE)
            return ModelInfo(path=shown_path, format="TF2 checkpoint (object-based)", keras_version=None,
                             layers=tuple(layers), notes=(TF2_NOTE,))
        meta = prefix.with_name(prefix.name + ".meta")
        fused, note = _fused_settings(meta)
        layers = name_based_layers(bundle, fused, note)
    return ModelInfo(path=shown_path, format="TF1 checkpoint (name-based)", keras_version=None,
                     layers=tuple(layers), notes=(TF1_NOTE, note))


def name_based_layers(bundle: TensorBundle, fused: FusedOps, note: str) -> list[BNLayer]:
    """BN layers by variable name scope, with epsilon and axis from the scope's fused op."""
    names = {key: key for key in bundle}
    if not fused:
        return bn_layers_by_name(bundle, names, note)
    layers = []
    for prefix, roles in group_by_name(names).items():
        arrays = read_roles(bundle, roles)
        op = _owning_op(prefix, fused)
        if op is None:
            layers.append(build_unconfigured(prefix, arrays, notes=(note,)))
            continue
        epsilon, axis = op
        settings = dict(KERAS_DEFAULTS, epsilon=epsilon, axis=axis, scale="gamma" in arrays, center="beta" in arrays)
        sources = {"axis": "config", "epsilon": "config", "momentum": "default",
                   "trainable": "default", "center": "weights", "scale": "weights"}
        layers.append(build_layer(name=prefix.rsplit("/", 1)[-1], path=prefix, settings=settings, sources=sources,
                                  datasets=arrays, notes=(note,)))
    return layers


def _owning_op(prefix: str, fused: FusedOps) -> tuple[float, int] | None:
    """The settings of the FusedBatchNorm op in this variable scope (``bn/FusedBatchNormV3``,
    or deeper inside a ``cond``)."""
    for op_name, settings in fused.items():
        if op_name.startswith(prefix + "/"):
            return settings
    return None


def _fused_settings(meta: Path) -> tuple[FusedOps, str]:
    """FusedBatchNorm op name -> (epsilon, axis) from the ``.meta`` graph, and a note."""
    if not meta.is_file():
        return {}, "no .meta graph next to the checkpoint: axis, epsilon and momentum are Keras defaults"
    if meta.stat().st_size > MAX_META_BYTES:
        return {}, f".meta graph over {MAX_META_BYTES} bytes not read: axis, epsilon and momentum are Keras defaults"
    try:
        fused = fused_ops(Message(meta.read_bytes()))
    except (WireError, OSError) as err:
        raise ModelFileError(f"{meta}: damaged .meta graph ({err})") from None
    return fused, fused_note(fused, "the .meta graph")


def fused_note(fused: FusedOps, where: str) -> str:
    if not fused:
        return f"{where} has no FusedBatchNorm op: axis, epsilon and momentum are Keras defaults"
    return f"epsilon and axis from the FusedBatchNorm ops of {where}; momentum is Keras' default"


def fused_ops(meta_graph: Message) -> FusedOps:
    """Every FusedBatchNorm op of a MetaGraphDef's graph, with its epsilon and axis (raises
    WireError on damage). ``data_format`` NCHW means channels on axis 1."""
    fused: FusedOps = {}
    for node in meta_graph.message(2).raw(1):
        proto = Message(node)
        if proto.text(2) not in _FUSED_OPS:
            continue
        attrs = proto.map_entries(5)
        epsilon = attrs["epsilon"].float32(4) if "epsilon" in attrs else 1e-4  # the op's own default
        layout = attrs["data_format"].text(2) if "data_format" in attrs else "NHWC"
        fused[proto.text(1)] = (_float32_to_decimal(epsilon), 1 if layout.startswith("NC") else -1)
    return fused


def _float32_to_decimal(value: float) -> float:
    """The op stores epsilon as a float32 (0.001 becomes 0.0010000000474974513); Keras configs
    hold the decimal the user wrote. The shortest decimal that rounds to the same float32 is it."""
    return float(str(np.float32(value)))
