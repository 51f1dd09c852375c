"""Run the feeding layer + BN against the folded layer in Keras, and count the difference in ulps.

Both are built as standalone Keras layers from the file's settings and weights (like
:mod:`bntui.tf_bridge.verification`): the class is looked up among Keras' own layers from
a fixed list and given only its structural arguments, so nothing the file names is run.

A conv output is a small difference of large terms (each ``x · W'`` of the window, and the
bias). Float32 rounding is bounded by the size of those terms, not of the output, so the
distance is counted in ulps at the sum of their magnitudes: ``|x| * |W'| + |b'|``, computed
by the same layer in float64 on absolute values (:func:`bntui.core.numerics.term_scaled_ulp`).
Counted at the output's own size, a correct fold would look hundreds of ulps off.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from bntui.core.analysis.fold import LayerFold, scaled_role
from bntui.core.errors import InputValueError
from bntui.core.model import BNLayer, FeedingLayer
from bntui.core.numerics import term_scaled_ulp
from bntui.tf_bridge.keras_loader import import_keras

#: Structural arguments copied from the file's config; everything else (initializers,
#: regularizers, constraints) plays no part in a forward pass.
_STRUCTURE = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
              "depth_multiplier", "units", "output_padding")

#: Spatial size of a generated input, per spatial axis (grown to fit a large kernel).
_SPATIAL_SIZE = 8


@dataclass(frozen=True)
class FoldCheck:
    """Folded against unfolded, both float32, on one input."""

    input_shape: tuple[int, ...]
    max_ulp: float
    max_abs_diff: float


def _layer(keras: Any, feeding: FeedingLayer, weights: dict[str, np.ndarray], dtype: str) -> tuple[Any, list[np.ndarray]]:
    """A fresh, linear Keras layer of the feeding class, and the given weights in Keras' order."""
    cls = getattr(keras.layers, str(feeding.class_name))
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {key: feeding.config[key] for key in _STRUCTURE if feeding.config.get(key) is not None and key in accepted}
    if "data_format" in kwargs:
        kwargs["data_format"] = "channels_last"  # see _run
    for key in ("kernel_size", "strides", "dilation_rate", "output_padding"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    layer = cls(**kwargs, use_bias="bias" in weights, dtype=dtype)
    return layer, [weights[role] for role in _weight_order(feeding) if role in weights]


def _weight_order(feeding: FeedingLayer) -> tuple[str, ...]:
    from bntui.core.feeding_layers import KERNEL_ROLES

    return KERNEL_ROLES[str(feeding.class_name)]


def _run(keras: Any, feeding: FeedingLayer, weights: dict[str, np.ndarray], x: np.ndarray, dtype: str) -> np.ndarray:
    """The layer on ``x``. TensorFlow's CPU convolutions only take channels-last in float64,
    so a channels_first layer runs on the transposed input (the same sums, in another layout)."""
    layer, values = _layer(keras, feeding, weights, dtype)
    channels_first = feeding.config.get("data_format") == "channels_first"
    if channels_first:
        x = np.moveaxis(x, 1, -1)
    layer.build(x.shape)
    layer.set_weights([v.astype(dtype) for v in values])
    out = np.asarray(layer(x.astype(dtype)))
    return np.moveaxis(out, -1, 1) if channels_first else out


def make_input(feeding: FeedingLayer, spec: str) -> np.ndarray:
    """The feeding layer's input: ``random:SEED`` (standard normal) or a ``.npy`` file."""
    if spec.endswith(".npy"):
        from bntui.core.input_parse import load_npy

        return np.asarray(load_npy(spec), dtype=np.float32)
    kind, _, seed = spec.partition(":")
    if kind != "random" or not (seed.isdigit() or seed == ""):
        raise InputValueError(f"fold input {spec!r}: use random:SEED or a .npy file")
    return np.random.default_rng(int(seed or 0)).standard_normal(_input_shape(feeding)).astype(np.float32)


def _input_shape(feeding: FeedingLayer) -> tuple[int, ...]:
    """A batch of 2 with the feeding layer's input channels and room for its kernel."""
    config, class_name = feeding.config, str(feeding.class_name)
    first = feeding.weights[scaled_role(class_name) if not class_name.startswith("Separable") else "depthwise_kernel"]
    if class_name == "Dense":
        build = config.get("build_config") if isinstance(config.get("build_config"), dict) else {}
        shape = build.get("input_shape") if build else None
        if isinstance(shape, list) and all(isinstance(d, int) for d in shape[1:]):
            return (2, *shape[1:])
        return (2, first.shape[0])
    if class_name.endswith("Transpose"):
        channels = first.shape[-1]
    else:
        channels = first.shape[-2] * int(config.get("groups") or 1)
    dilation = config.get("dilation_rate") or 1
    dilations = dilation if isinstance(dilation, list) else [dilation] * (first.ndim - 2)
    spatial = [max(_SPATIAL_SIZE, (k - 1) * d + 2) for k, d in zip(first.shape[:-2], dilations)]
    if config.get("data_format") == "channels_first":
        return (2, channels, *spatial)
    return (2, *spatial, channels)


def check_fold(layer: BNLayer, feeding: FeedingLayer, fold: LayerFold, x: np.ndarray) -> FoldCheck:
    """Keras' ``BN(feeding(x))`` against ``folded(x)`` in float32, in term-scaled ulps."""
    if not fold.foldable or fold.folded is None:
        raise ValueError(f"{layer.path} is not foldable: {fold.reason}")
    keras = import_keras()
    try:
        features = _run(keras, feeding, feeding.weights, x, "float32")
    except ValueError as err:
        raise InputValueError(f"the fold input of shape {x.shape} does not fit {feeding.path}: {str(err)[:160]}") from None
    bn = keras.layers.BatchNormalization(axis=layer.axis, epsilon=layer.epsilon, momentum=layer.momentum,
                                         center=layer.center, scale=layer.scale, dtype="float32")
    bn.build(features.shape)
    bn.set_weights([w for w in (layer.gamma, layer.beta) if w is not None] + [layer.moving_mean, layer.moving_variance])
    unfolded = np.asarray(bn(features, training=False))
    folded = _run(keras, feeding, fold.folded, x, "float32")
    magnitudes = {role: np.abs(w.astype(np.float64)) for role, w in fold.folded.items()}
    terms = _run(keras, feeding, magnitudes, np.abs(x.astype(np.float64)), "float64")
    ulps = term_scaled_ulp(folded, unfolded, terms, np.float32)
    diff = np.abs(folded.astype(np.float64) - unfolded.astype(np.float64))
    return FoldCheck(tuple(x.shape), float(np.nanmax(ulps)), float(np.nanmax(diff)))
