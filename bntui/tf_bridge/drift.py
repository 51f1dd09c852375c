"""Drift's forward pass: real data through the whole model once, every BN layer's input measured.

Every BatchNormalization instance in the loaded model (nested models, layers held by custom
blocks, shared layers at each of their calls) gets its ``call`` wrapped, inside one
``tf.function``, by a few reductions that return per-channel moments of the batch (count,
float64 mean and sum of squared deviations, minimum, maximum). The activations themselves
never leave the graph; only these small vectors do, and they are merged across batches in
float64 (:meth:`bntui.core.analysis.drift.Moments.merge`), so memory is flat in the sample
count. The model runs in inference mode, loaded by
:func:`bntui.tf_bridge.keras_loader.load_whole_model` (safe mode, checked tf_keras fallback).

Data comes from a ``.npy`` file (memory-mapped; pages already used are released, so files
larger than RAM pass), a generated spec (``normal:0:256x224x224x3``: sample count first), or
a folder of images decoded and resized by TensorFlow's own image ops.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bntui.core.analysis.drift import CallStatistics, DriftResult, Moments
from bntui.core.errors import BntuiError, InputValueError
from bntui.core.keras_config import BN_CLASS_NAMES
from bntui.core.model import BNLayer, ModelInfo
from bntui.tf_bridge.capturing import (
    model_input_dtype,
    model_input_shape,
    parse_generated,
    resolve_shape,
    run_failure,
    shape_text,
)
from bntui.tf_bridge.keras_loader import load_whole_model, one_line, quiet

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
#: Samples generated when a spec gives no shape and the model's batch is None.
DEFAULT_GENERATED_SAMPLES = 32


class DriftCancelled(BntuiError):
    """The user stopped the pass (Ctrl-C, Esc): nothing is reported."""


@dataclass(frozen=True, eq=False)
class LiveCall:
    """What one call of one BN layer of the loaded model received over all the data."""

    layer: Any
    #: Paths this layer may have in bntui's reading: by layer names, and by attribute names.
    candidate_paths: tuple[str, ...]
    call: int
    calls: int
    moments: Moments


@dataclass(frozen=True, eq=False)
class DriftPass:
    """The result of the forward pass: per-call moments, and how the data was fed."""

    samples: int
    batches: int
    calls: tuple[LiveCall, ...]
    notes: tuple[str, ...]


# -- data ------------------------------------------------------------------------------------


class DataSource(Protocol):
    """Samples in batches (first axis), float32, shaped for the model's input."""

    samples: int
    description: str
    notes: tuple[str, ...]

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """The samples in order, ``batch_size`` at a time (the last batch may be smaller)."""
        ...


class NpySource:
    """A ``.npy`` file, memory-mapped; each batch's pages are released once it is copied."""

    def __init__(self, path: str, model_shape: tuple[int | None, ...]) -> None:
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise InputValueError(f"{path}: no such file") from None
        except (OSError, ValueError, EOFError) as err:
            raise InputValueError(f"{path}: not a readable .npy file ({one_line(err)})") from None
        if self.array.dtype.kind not in "fiub":
            raise InputValueError(f"{path}: holds {self.array.dtype} values, not numbers")
        shape = tuple(int(dim) for dim in self.array.shape)
        if shape and shape[0] == 0:
            raise InputValueError(f"{path}: holds no samples (shape {shape})")
        resolve_shape(model_shape, shape)
        self.samples = shape[0]
        self.notes: tuple[str, ...] = ()
        self.description = f"{path} ({'x'.join(map(str, shape))}, {self.array.dtype})"

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        handle = getattr(self.array, "_mmap", None)
        for start in range(0, self.samples, batch_size):
            batch = np.array(self.array[start:start + batch_size], dtype=np.float32)
            if isinstance(handle, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
                handle.madvise(mmap.MADV_DONTNEED)  # keep resident memory flat for huge files
            yield batch


class GeneratedSource:
    """``zeros``, ``ones``, ``normal:SEED``, ``uniform:SEED``, with an optional whole shape."""

    def __init__(self, spec: str, model_shape: tuple[int | None, ...]) -> None:
        generated = parse_generated(spec)
        assert generated is not None
        self.generated = generated
        self.shape = resolve_shape(model_shape, generated.shape, DEFAULT_GENERATED_SAMPLES)
        self.samples = self.shape[0]
        self.notes: tuple[str, ...] = ()
        self.description = f"{spec} ({'x'.join(map(str, self.shape))})"

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        rng = self.generated.generator()
        for start in range(0, self.samples, batch_size):
            count = min(batch_size, self.samples - start)
            yield self.generated.draw(rng, (count, *self.shape[1:]))


class ImageFolderSource:
    """Images decoded by ``tf.io.decode_image`` and resized by ``tf.image.resize`` (bilinear)
    to the model's input height and width; pixels as they are (0 to 255) unless scaled."""

    def __init__(self, folder: Path, model_shape: tuple[int | None, ...]) -> None:
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise InputValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        if len(model_shape) != 4 or model_shape[3] not in (1, 3, 4):
            raise InputValueError(f"a folder of images needs a model input of (batch, height, width, 1, 3 or 4 "
                                  f"channels); this model's is {shape_text(model_shape)}")
        self.height, self.width, self.channels = model_shape[1], model_shape[2], int(model_shape[3])
        self.samples = len(self.files)
        self.description = f"{folder} ({self.samples} images)"
        size = "its own size (the model's is None)" if self.height is None or self.width is None else \
            f"{self.height}x{self.width}"
        self.notes: tuple[str, ...] = ((f"images are decoded by TensorFlow and resized to {size}; their pixels are used as they are "
                       "(0 to 255) unless --scale says otherwise: give the model's own preprocessing"),)

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        import tensorflow as tf

        for start in range(0, self.samples, batch_size):
            images = []
            for path in self.files[start:start + batch_size]:
                try:
                    image = tf.io.decode_image(path.read_bytes(), channels=self.channels, expand_animations=False)
                except (tf.errors.OpError, ValueError) as err:
                    raise InputValueError(f"{path}: cannot be decoded as an image ({one_line(err)})") from None
                image = tf.cast(image, tf.float32)
                if self.height is not None and self.width is not None:
                    image = tf.image.resize(image, (self.height, self.width))
                images.append(image.numpy())
            try:
                yield np.stack(images).astype(np.float32)
            except ValueError:
                raise InputValueError("images of different sizes cannot be batched for a model whose input size "
                                      "is None; resize them first") from None


def open_source(data: str, model_shape: tuple[int | None, ...]) -> DataSource:
    """The data source ``data`` names: a folder, a generated spec, or a ``.npy`` file."""
    if parse_generated(data) is not None:
        return GeneratedSource(data, model_shape)
    path = Path(data)
    if path.is_dir():
        return ImageFolderSource(path, model_shape)
    return NpySource(data, model_shape)


# -- the model's BN layers -------------------------------------------------------------------


def _is_bn(layer: Any) -> bool:
    return any(cls.__name__ in BN_CLASS_NAMES and cls.__module__.split(".")[0] in ("keras", "tf_keras")
               for cls in type(layer).__mro__)


def _children(layer: Any) -> list[tuple[str, Any]]:
    """Sub-layers with the name bntui's path uses: layer names inside models and wrappers,
    attribute names inside custom layers (Keras 3 stores them so)."""
    try:
        subs = list(layer._flatten_layers(include_self=False, recursive=False))
    except (AttributeError, TypeError):
        return []
    attributes = {id(value): key for key, value in vars(layer).items() if not key.startswith("_")}
    return [(attributes.get(id(sub), sub.name), sub) for sub in subs]


def bn_instances(model: Any) -> list[tuple[Any, tuple[str, ...]]]:
    """Every BN layer object of the model once, with its candidate paths (by layer names and
    by attribute names), found through every tracked sub-layer, not only ``model.layers``."""
    found: list[tuple[Any, tuple[str, ...]]] = []
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[str, ...], tuple[str, ...]]] = [(model, (), ())]
    while stack:
        layer, by_name, by_attr = stack.pop()
        for attr_name, sub in reversed(_children(layer)):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            names, attrs = (*by_name, sub.name), (*by_attr, attr_name)
            if _is_bn(sub):
                found.append((sub, tuple(dict.fromkeys(("/".join(names), "/".join(attrs))))))
            else:
                stack.append((sub, names, attrs))
    return found


def _channel_axis(layer: Any, rank: int) -> int:
    axis = layer.axis
    if isinstance(axis, (list, tuple)) or type(axis).__name__ == "ListWrapper":
        axis = next(iter(axis))
    axis = int(axis)
    if getattr(layer, "virtual_batch_size", None) and type(layer).__module__.startswith("tf_keras"):
        axis -= 1  # tf_keras shifts its stored axis by one for the ghost-batch reshape
    return axis % rank


# -- the pass --------------------------------------------------------------------------------


def _block(length: int) -> int:
    """The positions the minimum reduces first: a divisor of ``length`` near 50 to 112 (measured
    fastest on ResNet50's 12544, 3136 and 784 positions), else 1 (one stage, as ``reduce_min``)."""
    return next((size for size in (112, 56, 49, 28, 16, 14, 8, 7, 4, 2) if length % size == 0 and length > size), 1)


def _batch_moments(tf: Any, x: Any, layer: Any) -> tuple[Any, ...]:
    """In the graph: per sample (a group of ``length`` values per channel) the mean, the mean
    squared deviation from that mean, the maximum and the minimum, each holding ``batch *
    channels`` values (shaped as the kernels leave them: :func:`_groups` flattens them outside
    the graph), and ``length``. Only these small arrays leave the graph:
    :meth:`Moments.from_groups` combines them in float64.

    Why pooling kernels: reductions over (batch, height, width) made ResNet50's forward pass
    2.3x slower in float32 and 3.4x in float64 (measured), while oneDNN's average and max
    pooling over a whole sample's positions cost about a third of it. There is no min
    pooling, and ``reduce_min`` over a sample's positions runs at half the speed of max
    pooling; done in two stages (blocks of :func:`_block` positions, then the blocks) it takes
    a third less. Each sample's own mean is the shift of its squared deviations: a two-pass
    variance per group, well conditioned even where the mean is fifty deviations from zero (as
    conv outputs often are), and no batch-wide reduction waits in between. Each group sums at
    most a few ten thousand float32 values, then float64 takes over: relative error about 1e-6.
    The minimum and maximum are exact in any order. Measured costs are in ``docs/drift.md``.
    """
    rank = x.shape.rank
    axis = _channel_axis(layer, rank)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    if axis != rank - 1:
        x = tf.transpose(x, [i for i in range(rank) if i != axis] + [axis])
    channels = x.shape[-1]
    length = int(np.prod(x.shape[1:-1])) if all(dim is not None for dim in x.shape[1:-1]) else None
    if rank == 2:  # one value per sample and channel: the values leave as they are (spread unused)
        return (x, x, x, x, 1)
    if length is None:  # a None dimension (sequences of any length): plain reductions per sample
        grouped = tf.reshape(x, [tf.shape(x)[0], -1, channels])
        means = tf.reduce_mean(grouped, axis=1, keepdims=True)
        spread = tf.reduce_mean(tf.math.squared_difference(grouped, means), axis=1)
        return (means, spread, tf.reduce_max(grouped, axis=1), tf.reduce_min(grouped, axis=1),
                tf.shape(grouped)[1])
    grouped = tf.reshape(x, [-1, length, 1, channels])
    window = (length, 1)
    means = tf.nn.avg_pool2d(grouped, window, 1, "VALID")
    spread = tf.nn.avg_pool2d(tf.math.squared_difference(grouped, means), window, 1, "VALID")
    high = tf.nn.max_pool2d(grouped, window, 1, "VALID")
    block = _block(length)
    low = tf.reduce_min(tf.reduce_min(tf.reshape(x, [-1, length // block, block, channels]), axis=2), axis=1)
    return (means, spread, high, low, length)


def _groups(stats: list[Any]) -> Moments:
    """One batch's moments from what :func:`_batch_moments` returned, flattened to (groups,
    channels) here, outside the graph (four reshapes fewer per layer to trace and optimise)."""
    means, spread, high, low = (np.asarray(value) for value in stats[:4])
    length = int(np.asarray(stats[4]))
    channels = means.shape[-1]
    flat = [value.reshape(-1, channels) for value in (means, spread, high, low)]
    if length == 1:
        flat[1] = np.zeros_like(flat[0])
    return Moments.from_groups(flat[0], flat[1], flat[2], flat[3], length)


def run_pass(
    model: Any,
    source: DataSource,
    *,
    batch_size: int = 32,
    scale: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DriftPass:
    """Feed every batch once and merge each BN call's moments across batches."""
    import tensorflow as tf

    instances = bn_instances(model)
    if not instances:
        raise BntuiError("drift: Keras found no BatchNormalization layer in this model")
    by_id = {id(layer): (layer, paths) for layer, paths in instances}
    records: list[tuple[int, tuple[Any, ...]]] = []

    def wrap(layer: Any, original: Callable[..., Any]) -> Callable[..., Any]:
        def recording_call(inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
            records.append((id(layer), _batch_moments(tf, tf.convert_to_tensor(inputs), layer)))
            return original(inputs, *args, **kwargs)
        return recording_call

    dtype = model_input_dtype(model)
    shape = model_input_shape(model)

    @tf.function(input_signature=[tf.TensorSpec([None, *shape[1:]], dtype)])
    def step(x):  # type: ignore[no-untyped-def]
        records.clear()
        model(x, training=False)
        return [stats for _, stats in records]

    originals = {key: layer.call for key, (layer, _) in by_id.items()}
    own = {key for key, (layer, _) in by_id.items() if "call" in vars(layer)}
    for key, (layer, _) in by_id.items():
        layer.call = wrap(layer, originals[key])
    merged: list[Moments | None] = []
    order: list[int] = []
    done = batches = 0
    try:
        for batch in source.batches(batch_size):
            if stop is not None and stop():
                raise DriftCancelled(f"drift stopped after {done} of {source.samples} samples")
            if scale != 1.0:
                batch = batch * np.float32(scale)
            try:
                with quiet():
                    values = step(tf.constant(batch, dtype=dtype))
            except (BntuiError, KeyboardInterrupt):
                raise
            except Exception as err:  # noqa: BLE001 - whatever the model raises, one line
                raise run_failure(err, model) from None
            if not order:
                order = [key for key, _ in records]
                merged = [None] * len(order)
            for index, stats in enumerate(values):
                moments = _groups(stats)
                previous = merged[index]
                merged[index] = moments if previous is None else previous.merge(moments)
            done += batch.shape[0]
            batches += 1
            if progress is not None:
                progress(done, source.samples)
    finally:
        for key, (layer, _) in by_id.items():
            if key in own:
                layer.call = originals[key]
            else:
                del layer.call  # the class's own method shows through again
    calls_per_layer = {key: order.count(key) for key in set(order)}
    seen_calls: dict[int, int] = {}
    live: list[LiveCall] = []
    for key, total in zip(order, merged):
        assert total is not None  # every recorded call received every batch
        call = seen_calls.get(key, 0)
        seen_calls[key] = call + 1
        layer, paths = by_id[key]
        live.append(LiveCall(layer=layer, candidate_paths=paths, call=call, calls=calls_per_layer[key],
                             moments=total))
    unreached = [paths[0] for key, (_, paths) in by_id.items() if key not in calls_per_layer]
    notes = list(source.notes)
    if scale != 1.0:
        notes.append(f"every input value was multiplied by {scale:g} (--scale)")
    if unreached:
        notes.append(f"{len(unreached)} BN layer(s) never called by the model's forward pass: {', '.join(unreached[:5])}")
    return DriftPass(samples=done, batches=batches, calls=tuple(live), notes=tuple(notes))


# -- pairing with the file as bntui read it --------------------------------------------------


def _layer_from_keras(layer: Any, path: str) -> BNLayer:
    """A BNLayer from the live layer's own weights, for a layer bntui's reading did not list."""
    center, scale = bool(getattr(layer, "center", True)), bool(getattr(layer, "scale", True))
    weights = {w.path.split("/")[-1] if hasattr(w, "path") else w.name.split("/")[-1].split(":")[0]: np.asarray(w)
               for w in layer.weights}
    return BNLayer(
        name=layer.name, path=path, axis=-1, epsilon=float(layer.epsilon), momentum=float(layer.momentum),
        center=center, scale=scale, moving_mean=weights["moving_mean"], moving_variance=weights["moving_variance"],
        gamma=weights.get("gamma") if scale else None, beta=weights.get("beta") if center else None,
        notes=("taken from the layer Keras loaded: bntui's reading of the file did not list it",),
    )


def pair_with_file(info: ModelInfo, drift_pass: DriftPass) -> tuple[list[CallStatistics], list[str]]:
    """Each live BN call with the layer as bntui read it from the file (by path, else by its
    unique name); a layer the reading missed is described from Keras' own weights, with a note."""
    statistics: list[CallStatistics] = []
    missed: list[str] = []
    for item in drift_pass.calls:
        layer = next((found for found in info.layers if found.path in item.candidate_paths), None)
        if layer is None:
            named = [found for found in info.layers if found.name == item.layer.name]
            layer = named[0] if len(named) == 1 else None
        if layer is None:
            layer = _layer_from_keras(item.layer, item.candidate_paths[0])
            missed.append(layer.path)
        if layer.channels != item.moments.mean.shape[0]:
            raise BntuiError(f"drift: {layer.path} has {layer.channels} channels in the file but received "
                             f"{item.moments.mean.shape[0]} from the model")
        statistics.append(CallStatistics(layer=layer, moments=item.moments, call=item.call, calls=item.calls))
    notes = []
    if missed:
        notes.append(f"{len(missed)} layer(s) not listed by bntui's reading, measured with the weights Keras loaded: "
                     + ", ".join(dict.fromkeys(missed)))
    return statistics, notes


def measure_drift(
    info: ModelInfo,
    data: str,
    *,
    batch_size: int = 32,
    scale: float = 1.0,
    unsafe: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DriftResult:
    """The whole drift analysis of ``data`` through the model file ``info`` was read from:
    load (safe), one pass, pair with the file's layers, analyse. The one call the CLI and TUI make."""
    from bntui.core.analysis.drift import analyse

    model = load_whole_model(info.path, unsafe=unsafe)
    source = open_source(data, model_input_shape(model))
    drift_pass = run_pass(model, source, batch_size=batch_size, scale=scale, progress=progress, stop=stop)
    statistics, notes = pair_with_file(info, drift_pass)
    notes = [f"data: {source.description}", *drift_pass.notes, *notes,
             ("the model ran in inference mode; variances are biased (divided by the count), as Keras' batch "
              "statistics are")]
    return analyse(statistics, samples=drift_pass.samples, batches=drift_pass.batches, notes=tuple(notes))
